/**
 * The authorization code flow's two pure steps: the URL the user's browser opens, and the
 * checks on what comes back to the redirect URI (state, RFC 9207 `iss`, provider errors).
 * The loopback listener is loopback.ts; the code exchange is token.ts.
 */
import { timingSafeEqual } from "node:crypto";
import { cleanDescription, kindOfErrorCode, OAuthError } from "./errors.js";
import type { ClientCredentials, ProviderEndpoints } from "./types.js";

/** Parameters of {@link buildAuthorizationUrl}. */
export interface AuthorizationRequest {
  /** The loopback listener's URI, e.g. http://127.0.0.1:PORT/callback. */
  redirectUri: string;
  scopes: readonly string[];
  /** From `randomState()`. */
  state: string;
  /** The S256 challenge from `createPkce()`. */
  challenge: string;
  /** Extra parameters, e.g. a preset's `quirks.authParams`; cannot override the above. */
  extraParams?: Readonly<Record<string, string>>;
}

/**
 * The authorization URL: `response_type=code` with PKCE S256 (RFC 6749 §4.1.1, RFC 7636
 * §4.3). Throws OAuthError `config` when the provider has no authorization endpoint.
 */
export function buildAuthorizationUrl(
  endpoints: ProviderEndpoints,
  client: ClientCredentials,
  request: AuthorizationRequest,
): string {
  if (endpoints.authorization === undefined) {
    throw new OAuthError("config", "the provider has no authorization endpoint");
  }
  const url = new URL(endpoints.authorization);
  for (const [key, value] of Object.entries(request.extraParams ?? {})) {
    url.searchParams.set(key, value);
  }
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", client.clientId);
  url.searchParams.set("redirect_uri", request.redirectUri);
  if (request.scopes.length > 0) url.searchParams.set("scope", request.scopes.join(" "));
  url.searchParams.set("state", request.state);
  url.searchParams.set("code_challenge", request.challenge);
  url.searchParams.set("code_challenge_method", "S256");
  return url.href;
}

/** The query of a request to the redirect URI, as the loopback listener received it. */
export interface CallbackParams {
  code?: string;
  state?: string;
  /** RFC 9207 issuer identifier. */
  iss?: string;
  error?: string;
  errorDescription?: string;
}

/** What {@link checkCallback} compares against. */
export interface CallbackExpectations {
  /** The state sent in the authorization request. */
  state: string;
  /** The provider's issuer; `iss` must equal it when present (unchecked when unknown). */
  issuer?: string;
  /** `iss` must be present: `endpoints.issParameterSupported` (RFC 9207 §2.4). */
  issRequired?: boolean;
}

/**
 * Checks a redirect to the callback and returns its code. In this order: `state` must match
 * (constant-time; RFC 6749 §10.12), then `iss` must equal the issuer when present and be
 * present when required (RFC 9207 §2.4: checked before the error, to stop mix-up attacks),
 * then a provider `error` becomes its OAuthError (`access_denied` when the user refused).
 * Mismatches throw OAuthError `protocol`; messages never contain the values.
 */
export function checkCallback(
  params: CallbackParams,
  expected: CallbackExpectations,
): { code: string; iss?: string } {
  if (params.state === undefined || !sameString(params.state, expected.state)) {
    throw new OAuthError("protocol", "authorization response: state does not match the request");
  }
  if (params.iss !== undefined && expected.issuer !== undefined) {
    if (!sameString(params.iss, expected.issuer)) {
      throw new OAuthError("protocol", "authorization response: iss is not the provider's issuer");
    }
  } else if (params.iss === undefined && expected.issRequired) {
    throw new OAuthError("protocol", "authorization response: iss is missing (RFC 9207)");
  }
  if (params.error !== undefined) {
    const description = cleanDescription(params.errorDescription);
    const code = /^[\w.-]{1,64}$/.test(params.error) ? params.error : "(malformed error code)";
    const message = `authorization refused: ${code}${description ? ` (${description})` : ""}`;
    throw new OAuthError(kindOfErrorCode(params.error), message, { oauthError: params.error });
  }
  if (params.code === undefined || params.code === "") {
    throw new OAuthError("protocol", "authorization response: no code");
  }
  return { code: params.code, ...(params.iss === undefined ? {} : { iss: params.iss }) };
}

// --- internal ---

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
