/**
 * From a stored credential to what the protocol client (server/oauth/protocol) needs: its
 * endpoints, its client (the secret opened only for the call), its preset's quirks and the
 * HTTP options. And from a protocol failure to the error a caller is answered with.
 */
import { failedPrecondition, SecretsError, unavailable } from "../../errors.js";
import type {
  ClientCredentials,
  HttpOptions,
  ProviderEndpoints,
  ProviderQuirks,
} from "../../oauth/protocol/index.js";
import { isOAuthError, presetQuirks } from "../../oauth/protocol/index.js";
import type { OAuthEndpointsRecord, OAuthRecord } from "../../store/types.js";
import type { OAuthDeps } from "./deps.js";
import { openClientSecret } from "./host-only.js";

/** The endpoints of a stored credential, as the protocol client takes them. */
export function endpointsOf(o: OAuthRecord): ProviderEndpoints {
  return { ...(o.issuer === undefined ? {} : { issuer: o.issuer }), ...o.endpoints };
}

/** The stored form of endpoints the protocol client resolved. */
export function endpointsRecord(e: ProviderEndpoints): OAuthEndpointsRecord {
  return {
    token: e.token,
    ...(e.authorization ? { authorization: e.authorization } : {}),
    ...(e.deviceAuthorization ? { deviceAuthorization: e.deviceAuthorization } : {}),
    ...(e.revocation ? { revocation: e.revocation } : {}),
    ...(e.introspection ? { introspection: e.introspection } : {}),
    ...(e.issParameterSupported ? { issParameterSupported: true } : {}),
  };
}

/** The client of credential `name`, its secret opened for this call only. */
export function clientOf(deps: OAuthDeps, name: string, o: OAuthRecord): ClientCredentials {
  const secret = openClientSecret(deps, name, o);
  return { clientId: o.clientId, ...(secret === undefined ? {} : { clientSecret: secret }) };
}

export function quirksOf(o: OAuthRecord): ProviderQuirks {
  return presetQuirks(o.preset);
}

export function httpOf(deps: OAuthDeps, signal?: AbortSignal): HttpOptions {
  return { timeoutMs: deps.oauth.httpTimeoutMs, ...(signal ? { signal } : {}) };
}

/**
 * What a caller hears when a provider call failed: UNAVAILABLE for what may pass (network,
 * 5xx, 429), FAILED_PRECONDITION for what needs a person. The message says which credential
 * and what to do; it never holds a token (OAuthError messages never do).
 */
export function toSecretsError(name: string, err: unknown, doing: string): SecretsError {
  if (err instanceof SecretsError) return err;
  if (!isOAuthError(err)) {
    return new SecretsError("internal", `oauth credential '${name}': ${doing} failed`, {
      cause: err,
    });
  }
  const msg = `oauth credential '${name}': ${doing} failed: ${err.message}`;
  if (err.kind === "transient") return unavailable(msg);
  return failedPrecondition(msg, "name");
}
