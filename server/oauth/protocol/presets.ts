/**
 * Known providers: where their endpoints are, what to ask for by default, which environment
 * variable a VM gets the access token in, and their quirks. `resolvePreset` validates the
 * operator's choice; `resolveEndpoints` turns it into endpoints (with discovery when the
 * provider has it).
 */
import { discover, isLoopbackHttp } from "./discovery.js";
import { OAuthError } from "./errors.js";
import type { HttpOptions, ProviderEndpoints, ProviderQuirks } from "./types.js";

/** The preset names. */
export type PresetName = "github" | "google" | "microsoft" | "gitlab" | "oidc";

/** Every preset name, for help texts and validation. */
export const PRESET_NAMES: readonly PresetName[] = [
  "github",
  "google",
  "microsoft",
  "gitlab",
  "oidc",
];

/** What a preset may be told; each option is accepted only by the presets that use it. */
export interface PresetOptions {
  /** microsoft: a tenant id or domain, or common/organizations/consumers. @default "common" */
  tenant?: string;
  /** oidc (required): the issuer identifier, exactly as the provider spells it. */
  issuer?: string;
  /** gitlab, github: a self-hosted instance. @default "https://gitlab.com", "https://github.com" */
  baseUrl?: string;
}

/** A validated preset. */
export interface ResolvedPreset {
  preset: PresetName;
  /** The issuer to discover from; absent for GitHub, which has no discovery. */
  issuer?: string;
  /** microsoft: the tenant the issuer was built from. */
  tenant?: string;
  /** Endpoints known without discovery; discovered ones win over these. */
  endpoints?: Partial<ProviderEndpoints>;
  /** Whether `resolveEndpoints` fetches the issuer's metadata. */
  discovery: boolean;
  quirks: ProviderQuirks;
  /** Scopes asked for when the operator names none. */
  defaultScopes: readonly string[];
  /** The environment variable a VM receives the access token in by default. */
  defaultEnv: string;
}

/**
 * Validates `name` and `opts` and returns the preset. Throws OAuthError `config` for an
 * unknown preset, an option the preset does not take, `oidc` without an issuer, a malformed
 * tenant, or a base URL or issuer that is not https (plain http only on loopback).
 *
 * Choices made here:
 * - github: no discovery and no RFC 7009 revocation endpoint (tokens are revoked in the
 *   GitHub UI or its REST API with basic auth), so `revoke` resolves false; the secret goes in
 *   the body as GitHub documents. Refresh tokens exist only for GitHub Apps with expiring
 *   user tokens.
 * - google: `access_type=offline` and `prompt=consent`, without which Google issues no
 *   refresh token (or only on the first consent).
 * - microsoft: `MS_ACCESS_TOKEN`, not `AZURE_ACCESS_TOKEN`: the default scope is Microsoft
 *   Graph, not Azure Resource Manager (ask for `https://management.azure.com/.default` for
 *   that). No revocation endpoint. Refreshes send `scope`.
 * - gitlab: discovery, plus the device and revocation endpoints in case the document omits
 *   them. `read_api` is the least scope that lets `glab` and the API read.
 * - oidc: `prompt=consent`, which OIDC Core §11 requires for `offline_access`.
 */
export function resolvePreset(name: string, opts: PresetOptions = {}): ResolvedPreset {
  const preset = PRESET_NAMES.find((p) => p === name);
  if (preset === undefined) {
    throw new OAuthError(
      "config",
      `unknown OAuth preset "${name}" (known: ${PRESET_NAMES.join(", ")})`,
    );
  }
  for (const key of Object.keys(opts) as (keyof PresetOptions)[]) {
    if (opts[key] !== undefined && !ACCEPTS[preset].includes(key)) {
      throw new OAuthError("config", `the ${preset} preset does not take a ${key}`);
    }
  }
  return BUILD[preset](opts);
}

/**
 * The quirks of preset `name`, which depend on nothing but the name (for a stored credential
 * that remembers only its preset). Any other name (explicit endpoints) gets none.
 */
export function presetQuirks(name: string): ProviderQuirks {
  const preset = PRESET_NAMES.find((p) => p === name);
  return preset === undefined ? PLAIN : QUIRKS[preset];
}

/**
 * The provider's endpoints: the preset's own when it has no discovery, else the discovered
 * ones over the preset's. Throws what `discover` throws.
 */
export async function resolveEndpoints(
  resolved: ResolvedPreset,
  opts: HttpOptions & { allowInsecure?: boolean } = {},
): Promise<ProviderEndpoints> {
  const known = resolved.endpoints ?? {};
  if (!resolved.discovery || resolved.issuer === undefined) {
    if (known.token === undefined)
      throw new OAuthError("config", "the preset has no token endpoint");
    return { ...known, token: known.token };
  }
  const found = await discover(resolved.issuer, {
    ...opts,
    skipIssuerCheck: resolved.quirks.skipIssuerCheck,
  });
  return { ...known, ...found };
}

// --- internal ---

const ACCEPTS: Record<PresetName, readonly (keyof PresetOptions)[]> = {
  github: ["baseUrl"],
  google: [],
  microsoft: ["tenant"],
  gitlab: ["baseUrl"],
  oidc: ["issuer"],
};

const PLAIN: ProviderQuirks = { authParams: {}, skipIssuerCheck: false, refreshScopeParam: false };

const QUIRKS: Record<PresetName, ProviderQuirks> = {
  github: { ...PLAIN, tokenAuthMethod: "client_secret_post" },
  google: { ...PLAIN, authParams: { access_type: "offline", prompt: "consent" } },
  microsoft: { ...PLAIN, skipIssuerCheck: true, refreshScopeParam: true },
  gitlab: PLAIN,
  oidc: { ...PLAIN, authParams: { prompt: "consent" } },
};

const BUILD: Record<PresetName, (opts: PresetOptions) => ResolvedPreset> = {
  github: (opts) => {
    const base = baseUrl(opts.baseUrl ?? "https://github.com");
    return {
      preset: "github",
      endpoints: {
        authorization: `${base}/login/oauth/authorize`,
        token: `${base}/login/oauth/access_token`,
        deviceAuthorization: `${base}/login/device/code`,
      },
      discovery: false,
      quirks: QUIRKS.github,
      defaultScopes: ["repo", "read:org"],
      defaultEnv: "GITHUB_TOKEN",
    };
  },
  google: () => ({
    preset: "google",
    issuer: "https://accounts.google.com",
    discovery: true,
    quirks: QUIRKS.google,
    defaultScopes: ["openid", "email", "https://www.googleapis.com/auth/cloud-platform"],
    defaultEnv: "GOOGLE_ACCESS_TOKEN",
  }),
  microsoft: (opts) => {
    const tenant = opts.tenant ?? "common";
    if (!/^[A-Za-z0-9][A-Za-z0-9.-]{0,99}$/.test(tenant)) {
      throw new OAuthError("config", "microsoft tenant must be a tenant id, a domain or common");
    }
    return {
      preset: "microsoft",
      issuer: `https://login.microsoftonline.com/${tenant}/v2.0`,
      tenant,
      discovery: true,
      quirks: QUIRKS.microsoft,
      defaultScopes: ["openid", "offline_access", "https://graph.microsoft.com/User.Read"],
      defaultEnv: "MS_ACCESS_TOKEN",
    };
  },
  gitlab: (opts) => {
    const base = baseUrl(opts.baseUrl ?? "https://gitlab.com");
    return {
      preset: "gitlab",
      issuer: base,
      endpoints: {
        deviceAuthorization: `${base}/oauth/authorize_device`,
        revocation: `${base}/oauth/revoke`,
      },
      discovery: true,
      quirks: QUIRKS.gitlab,
      defaultScopes: ["read_api"],
      defaultEnv: "GITLAB_TOKEN",
    };
  },
  oidc: (opts) => {
    if (opts.issuer === undefined || opts.issuer === "") {
      throw new OAuthError("config", "the oidc preset needs an issuer URL");
    }
    baseUrl(opts.issuer);
    return {
      preset: "oidc",
      issuer: opts.issuer,
      discovery: true,
      quirks: QUIRKS.oidc,
      defaultScopes: ["openid", "offline_access"],
      defaultEnv: "OAUTH_ACCESS_TOKEN",
    };
  },
};

/** A validated https base URL (http only on loopback), without a trailing slash. */
function baseUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new OAuthError("config", "the base URL or issuer is not a URL");
  }
  if (url.protocol !== "https:" && !isLoopbackHttp(url)) {
    throw new OAuthError("config", `${url.origin} is not https`);
  }
  if (url.search !== "" || url.hash !== "" || url.username !== "" || url.password !== "") {
    throw new OAuthError("config", `${url.origin}: no query, fragment or credentials allowed`);
  }
  return url.href.replace(/\/$/, "");
}
