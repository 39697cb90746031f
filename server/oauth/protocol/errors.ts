/**
 * The one error type of the OAuth client. Its message names the endpoint, the provider's
 * `error` code and a cleaned `error_description`: never a token, code, verifier, client secret
 * or a raw response body (STYLE.md §6), so it may be logged and shown as is.
 */

/**
 * What went wrong, as the broker has to react to it:
 * - `invalid_grant`: the refresh token, code or device code is dead: log in again;
 * - `invalid_client`: the client id or secret is wrong or not allowed this grant: fix config;
 * - `access_denied`: the user refused;
 * - `expired_token`: the device code (or the wait for a browser login) ran out of time;
 * - `authorization_pending` / `slow_down`: device-flow states, handled inside `pollDeviceToken`;
 * - `transient`: network error, timeout, HTTP 5xx or 429: retry later (see `retryAfterMs`);
 * - `protocol`: the provider answered something we cannot use, or an unknown error code;
 * - `config`: our own configuration is wrong (unknown preset, missing issuer, insecure URL).
 */
export type OAuthErrorKind =
  | "invalid_grant"
  | "invalid_client"
  | "access_denied"
  | "expired_token"
  | "authorization_pending"
  | "slow_down"
  | "transient"
  | "protocol"
  | "config";

/** Optional details of an {@link OAuthError}. */
export interface OAuthErrorOptions {
  /** The HTTP status of the response, when there was one. */
  status?: number;
  /** The provider's `error` code, verbatim. */
  oauthError?: string;
  /** From `Retry-After` (seconds or HTTP date), on transient errors only. */
  retryAfterMs?: number;
  /** The underlying error (network failure); it never holds response bodies. */
  cause?: unknown;
}

/** An OAuth failure classified by {@link OAuthErrorKind}. */
export class OAuthError extends Error {
  override readonly name = "OAuthError";
  readonly kind: OAuthErrorKind;
  readonly status?: number;
  readonly oauthError?: string;
  readonly retryAfterMs?: number;

  constructor(kind: OAuthErrorKind, message: string, options: OAuthErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.kind = kind;
    if (options.status !== undefined) this.status = options.status;
    if (options.oauthError !== undefined) this.oauthError = options.oauthError;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

/** True when `err` is an {@link OAuthError}, and of `kind` when one is given. */
export function isOAuthError(err: unknown, kind?: OAuthErrorKind): err is OAuthError {
  return err instanceof OAuthError && (kind === undefined || err.kind === kind);
}

/**
 * The kind for a provider `error` code; unknown codes are `protocol`. Includes GitHub's own
 * spellings, which it answers with HTTP 200 instead of the RFC codes.
 */
export function kindOfErrorCode(code: string): OAuthErrorKind {
  return KIND_BY_CODE.get(code) ?? "protocol";
}

/**
 * An `error_description` made safe for a message: control characters removed, anything long
 * enough to be a token or code replaced, at most 200 characters.
 */
export function cleanDescription(description: unknown): string | undefined {
  if (typeof description !== "string") return undefined;
  const cleaned = description
    .replace(/[\p{Cc}\p{Cf}]+/gu, " ")
    .replace(TOKEN_LIKE, "[redacted]")
    .trim();
  if (cleaned === "") return undefined;
  return cleaned.length > 200 ? `${cleaned.slice(0, 199)}…` : cleaned;
}

// --- internal ---

/** 20+ characters of a token alphabet (base64url, base64, hex, JWT dots): no English word is. */
const TOKEN_LIKE = /[A-Za-z0-9_~+/=.-]{20,}/g;

const KIND_BY_CODE = new Map<string, OAuthErrorKind>([
  ["invalid_grant", "invalid_grant"],
  ["invalid_client", "invalid_client"],
  ["unauthorized_client", "invalid_client"],
  ["access_denied", "access_denied"],
  ["expired_token", "expired_token"],
  ["authorization_pending", "authorization_pending"],
  ["slow_down", "slow_down"],
  // RFC 6749 §4.1.2.1: the provider says itself that a retry may work.
  ["server_error", "transient"],
  ["temporarily_unavailable", "transient"],
  // GitHub (docs.github.com "Troubleshooting OAuth app access token request errors").
  ["bad_refresh_token", "invalid_grant"],
  ["bad_verification_code", "invalid_grant"],
  ["incorrect_device_code", "invalid_grant"],
  ["incorrect_client_credentials", "invalid_client"],
  // Microsoft's device flow (v1 spelling of access_denied).
  ["authorization_declined", "access_denied"],
]);
