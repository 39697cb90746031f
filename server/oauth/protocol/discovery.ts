/**
 * Provider metadata discovery: OpenID Connect Discovery 1.0 first, then RFC 8414
 * (OAuth 2.0 Authorization Server Metadata), validated and mapped to {@link ProviderEndpoints}.
 */
import { OAuthError } from "./errors.js";
import { errorFromResponse, getJson, type ParsedResponse } from "./http.js";
import type { HttpOptions, ProviderEndpoints } from "./types.js";

/** Options of {@link discover}. */
export interface DiscoveryOptions extends HttpOptions {
  /**
   * Check only that the document's `issuer` has the configured issuer's origin, not that it is
   * identical (RFC 8414 §3.3): for Microsoft's multi-tenant `{tenantid}` documents. The
   * result then has no `issuer`, so a callback's `iss` cannot be checked. @default false
   */
  skipIssuerCheck?: boolean;
  /**
   * Accept http:// endpoints anywhere. Without it http is accepted only when the issuer and
   * the endpoint are both on loopback (127.0.0.1, [::1], localhost): tests. @default false
   */
  allowInsecure?: boolean;
}

/**
 * Fetches and validates the issuer's metadata, trying {@link wellKnownUrls} in order and
 * moving on only on 404/410. Throws OAuthError: `config` for a non-https issuer or when no
 * document exists, `transient` on network errors and 5xx, `protocol` for a document without
 * `token_endpoint`, with another issuer, or with an insecure endpoint.
 */
export async function discover(
  issuer: string,
  opts: DiscoveryOptions = {},
): Promise<ProviderEndpoints> {
  const base = parseUrl(issuer, "config", "issuer");
  if (base.search !== "" || base.hash !== "") {
    throw new OAuthError("config", "issuer must not have a query or fragment (RFC 8414 §2)");
  }
  const insecureOk = opts.allowInsecure === true || isLoopbackHttp(base);
  if (base.protocol !== "https:" && !insecureOk) {
    throw new OAuthError("config", `issuer ${base.href} is not https`);
  }
  const res = await fetchFirst(wellKnownUrls(issuer), opts);
  const meta = res.body ?? {};
  if (typeof meta.issuer !== "string") throw bad("has no issuer");
  if (opts.skipIssuerCheck) {
    if (parseUrl(meta.issuer, "protocol", "issuer").origin !== base.origin) {
      throw bad(`names issuer ${meta.issuer}, on another origin than ${base.origin}`);
    }
  } else if (meta.issuer !== issuer) {
    throw bad(`names issuer ${meta.issuer}, not ${issuer} (they must be identical)`);
  }
  const endpoint = (field: string) => checkEndpoint(meta[field], field, base, opts.allowInsecure);
  const token = endpoint("token_endpoint");
  if (token === undefined) throw bad("has no token_endpoint");
  const methods = meta.token_endpoint_auth_methods_supported;
  const optional: Record<string, string | undefined> = {
    authorization: endpoint("authorization_endpoint"),
    deviceAuthorization: endpoint("device_authorization_endpoint"),
    revocation: endpoint("revocation_endpoint"),
    introspection: endpoint("introspection_endpoint"),
  };
  return {
    ...(opts.skipIssuerCheck ? {} : { issuer }),
    token,
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v !== undefined)),
    issParameterSupported: meta.authorization_response_iss_parameter_supported === true,
    ...(Array.isArray(methods) && methods.every((m) => typeof m === "string")
      ? { tokenAuthMethods: methods as string[] }
      : {}),
  };
}

/**
 * Where the metadata may be, in the order tried: OIDC Discovery (`<issuer>/.well-known/
 * openid-configuration`), RFC 8414 §3.1 (well-known segment inserted between host and path),
 * and for issuers with a path the RFC 8414 name appended OIDC-style, which some servers use.
 */
export function wellKnownUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/$/, "");
  const urls = [
    `${url.origin}${path}/.well-known/openid-configuration`,
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
  ];
  if (path !== "") urls.push(`${url.origin}${path}/.well-known/oauth-authorization-server`);
  return urls;
}

/** True for http:// URLs on a loopback host: the only place plain http is tolerated. */
export function isLoopbackHttp(url: URL): boolean {
  return url.protocol === "http:" && LOOPBACK.has(url.hostname);
}

// --- internal ---

const LOOPBACK = new Set(["127.0.0.1", "[::1]", "localhost"]);

async function fetchFirst(urls: string[], opts: HttpOptions): Promise<ParsedResponse> {
  for (const url of urls) {
    const res = await getJson(url, "discovery", opts);
    // 404/410 mean "not here": try the next well-known location; anything else is an answer.
    if (res.status === 404 || res.status === 410) continue;
    const err = errorFromResponse(res, "discovery");
    if (err) throw err;
    return res;
  }
  throw new OAuthError("config", `no metadata document found (tried ${urls.join(", ")})`);
}

function checkEndpoint(
  value: unknown,
  field: string,
  issuer: URL,
  allowInsecure: boolean | undefined,
): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== "string") throw bad(`has a non-string ${field}`);
  const url = parseUrl(value, "protocol", field);
  const ok =
    url.protocol === "https:" ||
    (url.protocol === "http:" &&
      (allowInsecure || (isLoopbackHttp(issuer) && isLoopbackHttp(url))));
  if (!ok) throw bad(`has an insecure ${field} (${url.protocol}//${url.host})`);
  return value;
}

function parseUrl(value: string, kind: "config" | "protocol", what: string): URL {
  try {
    return new URL(value);
  } catch {
    throw new OAuthError(kind, `${what} is not a URL`);
  }
}

function bad(problem: string): OAuthError {
  return new OAuthError("protocol", `discovery: the metadata document ${problem}`);
}
