/**
 * Adding an oauth credential: its input checked field by field, its provider resolved (a
 * preset, discovery against an issuer, or explicit endpoints), and an imported refresh token
 * proven by one refresh before anything is stored, so that a bad one is refused and changes
 * nothing. And logging out: revoke at the provider, then forget the tokens.
 */
import { alreadyExists, invalidArgument } from "../../errors.js";
import type { ProviderEndpoints, ResolvedPreset, TokenSet } from "../../oauth/protocol/index.js";
import {
  discover,
  isLoopbackHttp,
  isOAuthError,
  presetQuirks,
  refreshGrant,
  resolvePreset,
  revoke,
} from "../../oauth/protocol/index.js";
import type { OAuthRecord, SecretRecord } from "../../store/types.js";
import type { Actor } from "../context.js";
import { checkEnvPolicy } from "../env-policy.js";
import { checkEnvFree, checkScopeExists, sealVersion } from "../records.js";
import {
  checkDescription,
  checkEnvName,
  checkLabels,
  checkSecretName,
  formatScope,
  parseScope,
} from "../validate.js";
import type { OAuthDeps } from "./deps.js";
import { sealClientSecret, sealRefreshToken } from "./host-only.js";
import { endpointsRecord, httpOf, toSecretsError } from "./provider.js";

export interface AddOAuthInput {
  name: string;
  preset: string;
  issuer?: string;
  tenant?: string;
  clientId: string;
  clientSecret?: string;
  scopes?: string[];
  env?: string;
  expiresEnv?: string;
  scope?: string;
  description?: string;
  labels?: Record<string, string>;
  refreshToken?: string;
  endpoints?: Partial<ProviderEndpoints>;
  allowSensitiveEnv?: boolean;
}

const MAX_TOKEN_BYTES = 16 * 1024;
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]{1,256}$/;

/** Checks everything that needs no network; throws INVALID_ARGUMENT naming the field. */
export function checkAddInput(input: AddOAuthInput) {
  const name = checkSecretName("name", input.name);
  const preset = checkPreset(input);
  const clientId = input.clientId;
  if (!clientId) throw invalidArgument("client_id", "is required");
  if (clientId.length > 512 || /[\s\0]/.test(clientId)) {
    throw invalidArgument("client_id", "must be at most 512 characters without spaces");
  }
  const clientSecret = checkToken("client_secret", input.clientSecret ?? "");
  const refreshToken = checkToken("refresh_token", input.refreshToken ?? "");
  const scopes = input.scopes?.length ? input.scopes : preset.defaultScopes;
  if (scopes.length > 64) throw invalidArgument("scopes", "at most 64");
  for (const s of scopes) {
    if (!SCOPE_TOKEN.test(s)) throw invalidArgument("scopes", `'${s.slice(0, 40)}' is not a scope`);
  }
  const env = checkEnvName("env", input.env || preset.defaultEnv);
  const allow = input.allowSensitiveEnv === true;
  checkEnvPolicy("env", env, allow);
  const expiresEnv = input.expiresEnv ? checkEnvName("expires_env", input.expiresEnv) : undefined;
  if (expiresEnv) checkEnvPolicy("expires_env", expiresEnv, allow);
  if (expiresEnv === env) throw invalidArgument("expires_env", "must differ from env");
  const endpoints = checkEndpoints(input.endpoints ?? {});
  return {
    name,
    preset,
    clientId,
    clientSecret,
    refreshToken,
    scopes: [...scopes],
    env,
    expiresEnv,
    allowSensitiveEnv: allow,
    scope: parseScope("scope", input.scope ?? ""),
    description: checkDescription("description", input.description ?? ""),
    labels: checkLabels("labels", input.labels ?? {}),
    endpoints,
  };
}

/** The provider's endpoints: explicit ones, the preset's, or discovery's (network). */
export async function resolveEndpoints(
  deps: OAuthDeps,
  cfg: ReturnType<typeof checkAddInput>,
): Promise<ProviderEndpoints> {
  const { preset } = cfg;
  if (cfg.endpoints.token) {
    for (const [k, v] of Object.entries(cfg.endpoints)) {
      const url = new URL(v as string);
      if (url.protocol === "http:" && !isLoopbackHttp(url) && !deps.oauth.allowInsecureProviders) {
        throw invalidArgument(`endpoints.${k}`, "must be https (plain http only on loopback)");
      }
    }
    return { ...preset.endpoints, ...cfg.endpoints } as ProviderEndpoints;
  }
  if (!preset.discovery || !preset.issuer) {
    if (!preset.endpoints?.token) throw invalidArgument("endpoints", "token endpoint is required");
    return {
      ...(preset.issuer ? { issuer: preset.issuer } : {}),
      ...preset.endpoints,
    } as ProviderEndpoints;
  }
  try {
    const found = await discover(preset.issuer, {
      ...httpOf(deps),
      skipIssuerCheck: preset.quirks.skipIssuerCheck,
      allowInsecure: deps.oauth.allowInsecureProviders,
    });
    // The preset's endpoints fill what discovery leaves out (Google's device endpoint).
    return { ...preset.endpoints, ...found, issuer: preset.issuer };
  } catch (err) {
    const e = toSecretsError(cfg.name, err, `discovery at ${preset.issuer}`);
    if (isOAuthError(err) && err.kind !== "transient") {
      throw invalidArgument("issuer", e.message);
    }
    throw e;
  }
}

/** Proves an imported refresh token with one refresh; INVALID_ARGUMENT when refused. */
export async function proveRefreshToken(
  deps: OAuthDeps,
  cfg: ReturnType<typeof checkAddInput>,
  endpoints: ProviderEndpoints,
): Promise<TokenSet> {
  try {
    return await refreshGrant(
      endpoints,
      { clientId: cfg.clientId, ...(cfg.clientSecret ? { clientSecret: cfg.clientSecret } : {}) },
      cfg.refreshToken,
      {
        ...httpOf(deps),
        quirks: cfg.preset.quirks,
        ...(cfg.preset.quirks.refreshScopeParam ? { scope: cfg.scopes.join(" ") } : {}),
      },
    );
  } catch (err) {
    const e = toSecretsError(cfg.name, err, "the first refresh with the imported token");
    if (isOAuthError(err) && (err.kind === "invalid_grant" || err.kind === "invalid_client")) {
      const field = err.kind === "invalid_grant" ? "refresh_token" : "client_id";
      throw invalidArgument(field, `the provider refused it (${err.kind}); nothing was stored`);
    }
    throw e;
  }
}

/** Stores the new credential (with its first access token when one was proven). */
export async function storeNewCredential(
  deps: OAuthDeps,
  actor: Actor,
  cfg: ReturnType<typeof checkAddInput>,
  endpoints: ProviderEndpoints,
  tokens: TokenSet | undefined,
): Promise<SecretRecord> {
  const { name } = cfg;
  const scope = formatScope(cfg.scope);
  return deps.store.mutate((head, tx) => {
    if (head.secrets[name]) throw alreadyExists("name", `secret '${name}' already exists`);
    checkScopeExists(head, cfg.scope);
    const envs = [{ field: "env", env: cfg.env }];
    if (cfg.expiresEnv) envs.push({ field: "expires_env", env: cfg.expiresEnv });
    checkEnvFree(head, envs, scope, name);
    const now = new Date();
    const at = now.toISOString();
    const grant = 1;
    const refresh = tokens?.refreshToken ?? (tokens ? cfg.refreshToken : undefined);
    const oauth: OAuthRecord = {
      preset: cfg.preset.preset,
      ...(endpoints.issuer ? { issuer: endpoints.issuer } : {}),
      ...(cfg.preset.tenant ? { tenant: cfg.preset.tenant } : {}),
      endpoints: endpointsRecord(endpoints),
      clientId: cfg.clientId,
      ...(cfg.clientSecret ? { clientSecret: sealClientSecret(deps, name, cfg.clientSecret) } : {}),
      scopes: cfg.scopes,
      ...(refresh ? { refreshToken: sealRefreshToken(deps, name, grant, refresh) } : {}),
      grant,
      ...(cfg.expiresEnv ? { expiresEnv: cfg.expiresEnv } : {}),
      state: refresh ? "ok" : "needs_login",
      ...(tokens ? { lastRefreshAt: at } : {}),
    };
    const expiresAt =
      tokens?.expiresIn === undefined
        ? undefined
        : new Date(now.getTime() + tokens.expiresIn * 1000).toISOString();
    return tx.put("secrets", {
      name,
      env: cfg.env,
      scope,
      kind: "oauth",
      provider: cfg.preset.preset,
      description: cfg.description,
      labels: cfg.labels,
      ...(cfg.allowSensitiveEnv ? { allowSensitiveEnv: true } : {}),
      oauth,
      currentVersion: tokens ? 1 : 0,
      versions: tokens
        ? [
            sealVersion(deps.barrier, name, 1, tokens.accessToken, actor, at, {
              ...(expiresAt ? { expiresAt } : {}),
            }),
          ]
        : [],
      createdAt: at,
      updatedAt: at,
    });
  });
}

/**
 * Revokes the refresh token at the provider when it offers revocation (RFC 7009). Returns
 * whether it did. A provider that cannot be reached fails the logout (UNAVAILABLE) unless
 * `force`: forgetting a token that still works at the provider should be a decision.
 */
export async function revokeAtProvider(
  deps: OAuthDeps,
  name: string,
  endpoints: ProviderEndpoints,
  client: { clientId: string; clientSecret?: string },
  refreshToken: string | undefined,
  force: boolean,
): Promise<boolean> {
  if (!refreshToken || !endpoints.revocation) return false;
  try {
    return await revoke(endpoints, client, refreshToken, "refresh_token", httpOf(deps));
  } catch (err) {
    if (force) {
      deps.log.warn("oauth logout: revocation failed; forgetting the tokens anyway (--force)", {
        secret: name,
        reason: (err as Error).message,
      });
      return false;
    }
    const e = toSecretsError(name, err, "revocation");
    e.message = `${e.message}; nothing was forgotten: retry, or pass --force to forget the tokens without revoking them`;
    throw e;
  }
}

// --- internal ---

/**
 * The preset the input names: GitLab's and GitHub's `issuer` is their base URL (self-hosted);
 * explicit endpoints without an issuer need no preset (generic, no discovery).
 */
function checkPreset(input: AddOAuthInput): ResolvedPreset {
  const name = input.preset || "oidc";
  if (name === "oidc" && !input.issuer && input.endpoints?.token) {
    return {
      preset: "oidc",
      discovery: false,
      quirks: presetQuirks("oidc"),
      defaultScopes: [],
      defaultEnv: "OAUTH_ACCESS_TOKEN",
    };
  }
  const base = name === "gitlab" || name === "github";
  try {
    return resolvePreset(name, {
      ...(input.issuer ? (base ? { baseUrl: input.issuer } : { issuer: input.issuer }) : {}),
      ...(input.tenant ? { tenant: input.tenant } : {}),
    });
  } catch (err) {
    const field = /issuer|base/i.test((err as Error).message)
      ? "issuer"
      : input.tenant && /tenant/.test((err as Error).message)
        ? "tenant"
        : "preset";
    throw invalidArgument(field, (err as Error).message);
  }
}

function checkToken(field: string, value: string): string {
  if (value === "") return value;
  if (Buffer.byteLength(value) > MAX_TOKEN_BYTES || /[\s\0]/.test(value)) {
    throw invalidArgument(field, `must be at most ${MAX_TOKEN_BYTES} bytes without whitespace`);
  }
  return value;
}

function checkEndpoints(e: Partial<ProviderEndpoints>): Partial<ProviderEndpoints> {
  const out: Partial<ProviderEndpoints> = {};
  const keys = ["token", "authorization", "deviceAuthorization", "revocation"] as const;
  const fields = {
    token: "endpoints.token",
    authorization: "endpoints.authorization",
    deviceAuthorization: "endpoints.device_authorization",
    revocation: "endpoints.revocation",
  };
  for (const k of keys) {
    const v = e[k];
    if (!v) continue;
    let url: URL;
    try {
      url = new URL(v);
    } catch {
      throw invalidArgument(fields[k], "must be an absolute URL");
    }
    if (url.protocol !== "https:" && url.protocol !== "http:") {
      throw invalidArgument(fields[k], "must be an https URL");
    }
    out[k] = url.href;
  }
  if (Object.keys(out).length > 0 && !out.token) {
    throw invalidArgument("endpoints.token", "is required with explicit endpoints");
  }
  return out;
}
