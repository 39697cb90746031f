/**
 * Token endpoint grants (RFC 6749 §4.1.3 code exchange with RFC 7636 PKCE, §6 refresh),
 * RFC 7662 introspection and RFC 7009 revocation. Each call is one POST; retrying is the
 * caller's decision, guided by the error's kind.
 */
import { OAuthError } from "./errors.js";
import {
  chooseAuthMethod,
  clientAuth,
  errorFromResponse,
  expectOk,
  type ParsedResponse,
  postForm,
} from "./http.js";
import type {
  ClientCredentials,
  HttpOptions,
  ProviderEndpoints,
  ProviderQuirks,
  TokenSet,
} from "./types.js";

/** Options of the token endpoint calls. */
export interface TokenRequestOptions extends HttpOptions {
  /** Provider quirks; only `tokenAuthMethod` matters here. @default {} */
  quirks?: Partial<ProviderQuirks>;
}

/** What an introspection answered (RFC 7662 §2.2), reduced to what diagnostics need. */
export interface Introspection {
  active: boolean;
  scope?: string;
  clientId?: string;
  /** Expiry, seconds since the epoch. */
  exp?: number;
  tokenType?: string;
}

/**
 * Exchanges a refresh token (RFC 6749 §6). Send `scope` only for providers that need it
 * (`quirks.refreshScopeParam`). Throws OAuthError: `invalid_grant` when the refresh token is
 * dead (revoked, expired or reused: providers do not say which), `transient` when a retry may
 * work. A provider that rotates answers a new refresh token; the old one is then dead.
 */
export async function refreshGrant(
  endpoints: ProviderEndpoints,
  client: ClientCredentials,
  refreshToken: string,
  opts: TokenRequestOptions & { scope?: string } = {},
): Promise<TokenSet> {
  const form = new URLSearchParams({ grant_type: "refresh_token", refresh_token: refreshToken });
  if (opts.scope !== undefined) form.set("scope", opts.scope);
  return parseTokenSet(await tokenEndpoint(endpoints, client, form, "refresh", opts), "refresh");
}

/** The result of an authorization request, as `checkCallback` returns it. */
export interface CodeExchange {
  code: string;
  /** The exact redirect URI sent in the authorization request. */
  redirectUri: string;
  /** The PKCE verifier whose challenge was sent. */
  verifier: string;
}

/**
 * Exchanges an authorization code with its PKCE verifier (RFC 6749 §4.1.3, RFC 7636 §4.5).
 * Throws OAuthError `invalid_grant` for a used, expired or mismatched code.
 */
export async function exchangeCode(
  endpoints: ProviderEndpoints,
  client: ClientCredentials,
  exchange: CodeExchange,
  opts: TokenRequestOptions = {},
): Promise<TokenSet> {
  const form = new URLSearchParams({
    grant_type: "authorization_code",
    code: exchange.code,
    redirect_uri: exchange.redirectUri,
    code_verifier: exchange.verifier,
  });
  const what = "code exchange";
  return parseTokenSet(await tokenEndpoint(endpoints, client, form, what, opts), what);
}

/**
 * Asks the introspection endpoint whether `token` is active (RFC 7662), without using it.
 * Throws OAuthError `config` when the provider has no introspection endpoint.
 */
export async function introspect(
  endpoints: ProviderEndpoints,
  client: ClientCredentials,
  token: string,
  opts: TokenRequestOptions & { hint?: "refresh_token" | "access_token" } = {},
): Promise<Introspection> {
  if (endpoints.introspection === undefined) {
    throw new OAuthError("config", "the provider has no introspection endpoint");
  }
  const form = new URLSearchParams({ token });
  if (opts.hint) form.set("token_type_hint", opts.hint);
  const res = await postWithClientAuth(
    endpoints.introspection,
    endpoints,
    client,
    form,
    "introspection",
    opts,
  );
  const body = expectOk(res, "introspection");
  if (typeof body.active !== "boolean") {
    throw new OAuthError("protocol", "introspection: `active` is not a boolean");
  }
  return {
    active: body.active,
    ...stringField("scope", body.scope),
    ...stringField("clientId", body.client_id),
    ...stringField("tokenType", body.token_type),
    ...(typeof body.exp === "number" ? { exp: body.exp } : {}),
  };
}

/**
 * Revokes `token` (RFC 7009). Resolves `false` when the provider has no revocation endpoint
 * (GitHub, Microsoft: revoke in their web UI instead), `true` when the provider answered 200,
 * which it also does for unknown tokens (RFC 7009 §2.2). Revoking a refresh token usually
 * kills its access tokens too. Throws OAuthError (`transient` on 5xx/503).
 */
export async function revoke(
  endpoints: ProviderEndpoints,
  client: ClientCredentials,
  token: string,
  hint: "refresh_token" | "access_token",
  opts: TokenRequestOptions = {},
): Promise<boolean> {
  if (endpoints.revocation === undefined) return false;
  const form = new URLSearchParams({ token, token_type_hint: hint });
  const res = await postWithClientAuth(
    endpoints.revocation,
    endpoints,
    client,
    form,
    "revocation",
    opts,
  );
  // RFC 7009 §2.2: a success has no body to parse; only the status and an `error` field count.
  const ok = res.status >= 200 && res.status < 300 && typeof res.body?.error !== "string";
  if (ok) return true;
  throw errorFromResponse(res, "revocation") ?? new OAuthError("protocol", "revocation failed");
}

/**
 * POSTs a grant to the token endpoint with the client's auth; the response is returned
 * unchecked. For the device flow, which reads error fields before classifying them.
 */
export async function tokenEndpoint(
  endpoints: ProviderEndpoints,
  client: ClientCredentials,
  form: URLSearchParams,
  what: string,
  opts: TokenRequestOptions,
): Promise<ParsedResponse> {
  return postWithClientAuth(endpoints.token, endpoints, client, form, `${what} request`, opts);
}

/**
 * POSTs `form` to `url` (an endpoint of `endpoints`' provider) authenticated as `client`:
 * Basic, secret in the body or public, see `chooseAuthMethod`. The response is unchecked.
 */
export async function postWithClientAuth(
  url: string,
  endpoints: ProviderEndpoints,
  client: ClientCredentials,
  form: URLSearchParams,
  what: string,
  opts: TokenRequestOptions,
): Promise<ParsedResponse> {
  const method = chooseAuthMethod(client, endpoints, opts.quirks?.tokenAuthMethod);
  const headers = clientAuth(form, client, method);
  return postForm(url, form, what, opts, headers);
}

/**
 * Validates a token endpoint response (RFC 6749 §5.1): throws its OAuthError when it is an
 * error, `protocol` when `access_token` is missing, the type is not Bearer or `expires_in` is
 * not a number.
 */
export function parseTokenSet(res: ParsedResponse, what: string): TokenSet {
  const body = expectOk(res, `${what} request`);
  const bad = (field: string) =>
    new OAuthError("protocol", `${what} response: invalid or missing ${field}`, {
      status: res.status,
    });
  if (typeof body.access_token !== "string" || body.access_token === "") throw bad("access_token");
  // Bearer only (RFC 6750); GitHub spells it "bearer". A DPoP or MAC token would fail later.
  if (typeof body.token_type !== "string" || body.token_type.toLowerCase() !== "bearer") {
    throw bad("token_type");
  }
  const expiresIn = toSeconds(body.expires_in);
  if (expiresIn === null) throw bad("expires_in");
  if (body.refresh_token !== undefined && typeof body.refresh_token !== "string") {
    throw bad("refresh_token");
  }
  return {
    accessToken: body.access_token,
    tokenType: "Bearer",
    // GitHub sends refresh_token="" when the app has no expiring tokens: treat as absent.
    ...(body.refresh_token ? { refreshToken: body.refresh_token } : {}),
    ...(expiresIn === undefined ? {} : { expiresIn }),
    ...stringField("scope", body.scope),
  };
}

// --- internal ---

/** `expires_in` as seconds: a number or numeric string (some providers quote it). */
function toSeconds(value: unknown): number | undefined | null {
  if (value === undefined || value === null || value === "") return undefined;
  const n = typeof value === "string" && /^\d+(\.\d+)?$/.test(value.trim()) ? Number(value) : value;
  return typeof n === "number" && Number.isFinite(n) && n >= 0 ? n : null;
}

function stringField<K extends string>(key: K, value: unknown): { [P in K]?: string } {
  return typeof value === "string" && value !== ""
    ? ({ [key]: value } as { [P in K]?: string })
    : {};
}
