/**
 * The shapes shared by the OAuth 2.0 / OpenID Connect client in this folder. Plain data: the
 * broker above stores and converts them; nothing here knows about gRPC, the store or secrets.
 */

/**
 * Where a provider's endpoints are, from a preset, from discovery (RFC 8414 / OIDC Discovery)
 * or both merged (`resolveEndpoints`).
 */
export interface ProviderEndpoints {
  /** The issuer identifier, exactly as the provider spells it; absent when it cannot be checked. */
  issuer?: string;
  /** Authorization endpoint (code flow). */
  authorization?: string;
  /** Token endpoint: every grant goes here. */
  token: string;
  /** RFC 8628 device authorization endpoint. */
  deviceAuthorization?: string;
  /** RFC 7009 revocation endpoint; GitHub and Microsoft have none. */
  revocation?: string;
  /** RFC 7662 introspection endpoint. */
  introspection?: string;
  /** RFC 9207: the provider promises an `iss` parameter on every authorization response. */
  issParameterSupported?: boolean;
  /** `token_endpoint_auth_methods_supported` from discovery, used to pick the client auth. */
  tokenAuthMethods?: string[];
}

/** An OAuth client registration. Without a secret the client is public (RFC 6749 §2.1). */
export interface ClientCredentials {
  clientId: string;
  /** The client secret; never logged, never in an error message. */
  clientSecret?: string;
}

/** A successful token response (RFC 6749 §5.1), validated. */
export interface TokenSet {
  accessToken: string;
  /** Always "Bearer" (normalised: GitHub answers "bearer"); other types are refused. */
  tokenType: string;
  /**
   * Absent on a refresh response means the provider did not rotate: the refresh token that was
   * sent stays valid (RFC 6749 §6).
   */
  refreshToken?: string;
  /** Lifetime of the access token in seconds, as sent; absent when the provider did not say. */
  expiresIn?: number;
  /** The granted scope when the provider reports it (RFC 6749 §5.1: when it differs). */
  scope?: string;
}

/** Transport options of every call that talks to a provider. */
export interface HttpOptions {
  /** Per-request limit, covering connect, headers and body. @default 15000 */
  timeoutMs?: number;
  /** The fetch implementation. @default globalThis.fetch */
  fetch?: typeof fetch;
  /** Aborts the request; the call then rejects with `signal.reason`, not an OAuthError. */
  signal?: AbortSignal;
}

/** How the client authenticates at the token endpoint (RFC 6749 §2.3.1). */
export type ClientAuthMethod = "client_secret_basic" | "client_secret_post" | "none";

/**
 * What one provider does differently from the RFCs. Two quirks need no flag because the client
 * always handles them: `Accept: application/json` is sent on every request (GitHub answers
 * form-encoded otherwise) and any response with an `error` field is an error whatever its HTTP
 * status (GitHub answers refresh and device-poll errors with 200).
 */
export interface ProviderQuirks {
  /** Extra authorization request parameters (Google: `access_type=offline`, `prompt=consent`). */
  authParams: Readonly<Record<string, string>>;
  /**
   * Do not compare the discovered `issuer` with the configured one, only its origin: Microsoft's
   * multi-tenant documents say `https://login.microsoftonline.com/{tenantid}/v2.0`.
   */
  skipIssuerCheck: boolean;
  /** Send `scope` with refresh requests (Microsoft issues a token for the scope asked for). */
  refreshScopeParam: boolean;
  /** Force a client auth method instead of choosing from discovery (GitHub: secret in body). */
  tokenAuthMethod?: ClientAuthMethod;
}
