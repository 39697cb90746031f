/**
 * The device authorization grant (RFC 8628): start a flow, show the user code, then poll the
 * token endpoint until the user approves, refuses or the code expires.
 */
import { setTimeout as delay } from "node:timers/promises";
import { isOAuthError, OAuthError } from "./errors.js";
import { errorFromResponse, expectOk, type ParsedResponse } from "./http.js";
import {
  parseTokenSet,
  postWithClientAuth,
  type TokenRequestOptions,
  tokenEndpoint,
} from "./token.js";
import type { ClientCredentials, ProviderEndpoints, TokenSet } from "./types.js";

/** The grant type of RFC 8628 §3.4. */
export const DEVICE_CODE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/** A started device flow (RFC 8628 §3.2). `deviceCode` is a credential: never log it. */
export interface DeviceAuthorization {
  deviceCode: string;
  /** What the user types at `verificationUri`; safe to show. */
  userCode: string;
  verificationUri: string;
  /** `verificationUri` with the user code in it, when the provider offers one. */
  verificationUriComplete?: string;
  /** Lifetime of the codes in seconds, as sent. */
  expiresIn: number;
  /** When the codes expire, ms since the epoch (`now()` at receipt + expiresIn). */
  expiresAt: number;
  /** Minimum wait between polls; 5 s when the provider does not say (RFC 8628 §3.2). */
  intervalMs: number;
}

/**
 * Starts a device flow for `scopes`. Throws OAuthError `config` when the provider has no
 * device authorization endpoint, `protocol` when the answer lacks a required field, and the
 * classified error when the provider refuses (`invalid_client`: device flow not enabled).
 */
export async function startDeviceAuthorization(
  endpoints: ProviderEndpoints,
  client: ClientCredentials,
  scopes: readonly string[],
  opts: TokenRequestOptions & { now?: () => number } = {},
): Promise<DeviceAuthorization> {
  if (endpoints.deviceAuthorization === undefined) {
    throw new OAuthError("config", "the provider has no device authorization endpoint");
  }
  const form = new URLSearchParams();
  if (scopes.length > 0) form.set("scope", scopes.join(" "));
  const what = "device authorization";
  const url = endpoints.deviceAuthorization;
  const res = await postWithClientAuth(url, endpoints, client, form, `${what} request`, opts);
  const body = expectOk(res, `${what} request`);
  const bad = (field: string) =>
    new OAuthError("protocol", `${what} response: invalid or missing ${field}`);
  // Google still answers `verification_url`, the name of an early draft of RFC 8628.
  const verificationUri = body.verification_uri ?? body.verification_url;
  const expiresIn = Number(body.expires_in);
  const interval = body.interval === undefined ? 5 : Number(body.interval);
  if (typeof body.device_code !== "string" || body.device_code === "") throw bad("device_code");
  if (typeof body.user_code !== "string" || body.user_code === "") throw bad("user_code");
  if (typeof verificationUri !== "string") throw bad("verification_uri");
  if (!Number.isFinite(expiresIn) || expiresIn <= 0) throw bad("expires_in");
  if (!Number.isFinite(interval) || interval < 0) throw bad("interval");
  const complete = body.verification_uri_complete;
  return {
    deviceCode: body.device_code,
    userCode: body.user_code,
    verificationUri,
    ...(typeof complete === "string" ? { verificationUriComplete: complete } : {}),
    expiresIn,
    expiresAt: (opts.now ?? Date.now)() + expiresIn * 1000,
    intervalMs: interval * 1000,
  };
}

/** One poll that did not end the flow, for progress reporting and tests. */
export interface DevicePollEvent {
  attempt: number;
  outcome: "authorization_pending" | "slow_down" | "transient";
  /** The wait before the next poll. */
  nextPollMs: number;
}

/** Options of {@link pollDeviceToken}. */
export interface PollDeviceOptions extends TokenRequestOptions {
  /** Wait between polls; `DeviceAuthorization.intervalMs`. */
  intervalMs: number;
  /** Give up with `expired_token` at this time (ms since the epoch). */
  expiresAt: number;
  /** Added to the interval on each `slow_down`, for the rest of the flow. @default 5000 */
  slowDownStepMs?: number;
  /** Waits `ms`; rejects when `signal` aborts. @default node:timers/promises setTimeout */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
  /** The clock. @default Date.now */
  now?: () => number;
  /** Called after each poll that did not end the flow. */
  onPoll?: (event: DevicePollEvent) => void;
}

/**
 * Polls until the user decides (RFC 8628 §3.4-3.5), waiting the interval before every poll:
 * `authorization_pending` polls again, `slow_down` adds `slowDownStepMs` (or the provider's
 * new `interval`, GitHub sends one) for good, transient errors are retried at the current
 * interval or the Retry-After if longer. Throws OAuthError `access_denied`, `expired_token`
 * (from the provider, or when `expiresAt` passes) or any other error the provider answers;
 * rejects with `signal.reason` when aborted.
 */
export async function pollDeviceToken(
  endpoints: ProviderEndpoints,
  client: ClientCredentials,
  deviceCode: string,
  opts: PollDeviceOptions,
): Promise<TokenSet> {
  const now = opts.now ?? Date.now;
  const step = opts.slowDownStepMs ?? 5000;
  const form = new URLSearchParams({ grant_type: DEVICE_CODE_GRANT, device_code: deviceCode });
  let interval = opts.intervalMs;
  let wait = interval;
  for (let attempt = 1; ; attempt++) {
    const remaining = opts.expiresAt - now();
    if (remaining <= 0) throw expired();
    await pause(Math.min(wait, remaining), opts);
    if (now() >= opts.expiresAt) throw expired();
    const outcome = await pollOnce(endpoints, client, form, opts);
    if ("tokens" in outcome) return outcome.tokens;
    const { err } = outcome;
    if (err.kind === "slow_down") {
      interval = Math.max(interval + step, outcome.askedMs ?? 0);
      wait = interval;
    } else if (err.kind === "transient") {
      wait = Math.max(interval, err.retryAfterMs ?? 0);
    } else if (err.kind === "authorization_pending") {
      wait = interval;
    } else {
      throw err;
    }
    opts.onPoll?.({ attempt, outcome: err.kind, nextPollMs: wait });
  }
}

// --- internal ---

type PollOutcome = { tokens: TokenSet } | { err: OAuthError; askedMs?: number };

/** One poll: tokens, or the error that the loop decides on (transport errors included). */
async function pollOnce(
  endpoints: ProviderEndpoints,
  client: ClientCredentials,
  form: URLSearchParams,
  opts: PollDeviceOptions,
): Promise<PollOutcome> {
  let res: ParsedResponse;
  try {
    res = await tokenEndpoint(endpoints, client, new URLSearchParams(form), "device token", opts);
  } catch (err) {
    if (isOAuthError(err, "transient")) return { err };
    throw err;
  }
  const err = errorFromResponse(res, "device token request");
  if (err === undefined) return { tokens: parseTokenSet(res, "device token") };
  // GitHub's slow_down carries the new minimum interval in seconds.
  const asked = Number(res.body?.interval) * 1000;
  return { err, ...(Number.isFinite(asked) ? { askedMs: asked } : {}) };
}

function expired(): OAuthError {
  return new OAuthError("expired_token", "the device code expired before the user approved it");
}

async function pause(ms: number, opts: PollDeviceOptions): Promise<void> {
  const { signal } = opts;
  signal?.throwIfAborted();
  try {
    await (opts.sleep ?? defaultSleep)(ms, signal);
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw err;
  }
}

function defaultSleep(ms: number, signal?: AbortSignal): Promise<void> {
  return delay(ms, undefined, signal ? { signal } : {});
}
