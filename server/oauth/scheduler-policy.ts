/**
 * When to refresh an OAuth access token, as pure functions of its timing: at a jittered
 * fraction of its lifetime, at least every `idleMaxMs`, and with capped exponential backoff
 * (full jitter) after a failure (issue #10). The refresh scheduler (scheduler.ts) applies them.
 */
import { invalidArgument } from "../errors.js";

/** What the scheduler knows about one credential's current access token. */
export interface CredentialTiming {
  /** The credential's name; unique among the scheduler's credentials. */
  name: string;
  /** Only "ok" credentials are refreshed; the others wait for a login or a config change. */
  state: "ok" | "needs_login" | "disabled";
  /**
   * When the current access token was obtained, ms since the epoch; undefined together with
   * `expiresAt` when there is no token (it is then refreshed at once).
   */
  issuedAt?: number;
  /** When the current access token expires, ms since the epoch; undefined: no expiry given. */
  expiresAt?: number;
  /** When the credential was last refreshed successfully, ms since the epoch. */
  lastRefreshAt?: number;
}

/** Backoff after a failed refresh: the n-th retry waits random() × min(maxMs, baseMs × factor^(n-1)). */
export interface BackoffOptions {
  /** First step's cap, ms. @default 1000 */
  baseMs?: number;
  /** Largest cap of any step, ms. @default 300000 (5 min) */
  maxMs?: number;
  /** Growth of the cap per step. @default 2 */
  factor?: number;
}

/** The tunable part of the refresh policy. */
export interface RefreshPolicyOptions {
  /** Refresh at this fraction of the token's lifetime; within [0.5, 0.95]. @default 0.8 */
  fraction?: number;
  /**
   * Spread: the fraction is drawn uniformly from fraction ± jitter, then kept within
   * [0.5, 0.95] of the lifetime, so that tokens issued together are not all refreshed together.
   * @default 0.05
   */
  jitter?: number;
  /**
   * Refresh at least this often, ms, even when the token has no expiry or a longer one (a
   * refresh token unused for long may be revoked by the provider). Jittered downwards only.
   * @default 86400000 (24 h)
   */
  idleMaxMs?: number;
  /** Backoff after a refresh that asked to be retried. */
  backoff?: BackoffOptions;
}

/** The resolved, validated policy. */
export interface RefreshPolicy {
  readonly fraction: number;
  readonly jitter: number;
  readonly idleMaxMs: number;
  readonly baseMs: number;
  readonly maxMs: number;
  readonly factor: number;
}

/** Why a refresh is due: at its fraction of the lifetime, at the idle maximum, or expired (or no token). */
export type DueKind = "due" | "idle" | "expired";

/** Why a refresh was started: a {@link DueKind}, or a retry after a failed attempt. */
export type RefreshReason = DueKind | "retry";

/**
 * How a refresh ended. "ok": a new token was obtained (the caller then `upsert`s its timing);
 * "retry": try again after backoff, no earlier than `retryAfterMs`; "stop": do not try again
 * until the credential is upserted with state "ok" (e.g. the refresh token was revoked).
 */
export type RefreshOutcome =
  | { kind: "ok" }
  | { kind: "retry"; retryAfterMs?: number }
  | { kind: "stop" };

/** Lowest and highest fraction of a lifetime at which a refresh may be planned. */
const MIN_FRACTION = 0.5;
const MAX_FRACTION = 0.95;

/** Fills in the defaults and validates; throws `invalid_argument` naming the option. */
export function resolveRefreshPolicy(o: RefreshPolicyOptions = {}): RefreshPolicy {
  const p: RefreshPolicy = {
    fraction: o.fraction ?? 0.8,
    jitter: o.jitter ?? 0.05,
    idleMaxMs: o.idleMaxMs ?? 24 * 3_600_000,
    baseMs: o.backoff?.baseMs ?? 1000,
    maxMs: o.backoff?.maxMs ?? 300_000,
    factor: o.backoff?.factor ?? 2,
  };
  check("fraction", p.fraction >= MIN_FRACTION && p.fraction <= MAX_FRACTION, "within [0.5, 0.95]");
  check("jitter", p.jitter >= 0 && p.jitter <= 0.45, "within [0, 0.45]");
  check("idleMaxMs", p.idleMaxMs > 0 && Number.isFinite(p.idleMaxMs), "a positive number");
  check("backoff.baseMs", p.baseMs > 0 && Number.isFinite(p.baseMs), "a positive number");
  check("backoff.maxMs", p.maxMs >= p.baseMs && Number.isFinite(p.maxMs), "at least baseMs");
  check("backoff.factor", p.factor >= 1 && Number.isFinite(p.factor), "at least 1");
  return Object.freeze(p);
}

/**
 * Throws `invalid_argument` naming the field when `t` has no name or a time that is not a
 * finite number: one NaN would break the order of the scheduler's heaps for every credential.
 */
export function checkTiming(t: CredentialTiming): void {
  check("name", typeof t.name === "string" && t.name !== "", "a non-empty string");
  check(
    "state",
    t.state === "ok" || t.state === "needs_login" || t.state === "disabled",
    "ok, needs_login or disabled",
  );
  for (const k of ["issuedAt", "expiresAt", "lastRefreshAt"] as const) {
    const v = t[k];
    check(k, v === undefined || Number.isFinite(v), "a finite number of ms since the epoch");
  }
}

/**
 * The planned refresh time of a token, ms since the epoch (may be in the past), and why.
 * `lastOkAt` is the scheduler's own record of its last successful refresh, which counts as
 * activity for `idleMaxMs` even before the new timing arrives. One `random()` draw.
 *
 * A token with an expiry but no `issuedAt` has an unknown lifetime: it is counted from
 * `lastRefreshAt`, else `lastOkAt`, else `now`, which still plans the refresh before expiry.
 */
export function planRefresh(
  t: CredentialTiming,
  lastOkAt: number | undefined,
  now: number,
  p: RefreshPolicy,
  random: () => number,
): { at: number; kind: DueKind } {
  if (t.issuedAt === undefined && t.expiresAt === undefined) return { at: now, kind: "expired" };
  const r = random();
  const anchor = latest(t.issuedAt, t.lastRefreshAt, lastOkAt) ?? now;
  const idleAt = anchor + p.idleMaxMs * (1 - p.jitter * r);
  if (t.expiresAt === undefined) return { at: idleAt, kind: "idle" };
  if (t.expiresAt <= now) return { at: now, kind: "expired" };
  const start = Math.min(t.issuedAt ?? t.lastRefreshAt ?? lastOkAt ?? now, t.expiresAt);
  const f = clamp(p.fraction + p.jitter * (2 * r - 1), MIN_FRACTION, MAX_FRACTION);
  const at = start + f * (t.expiresAt - start);
  return idleAt < at ? { at: idleAt, kind: "idle" } : { at, kind: "due" };
}

/**
 * How long to wait before retry number `attempt` (1, 2, …): full jitter under a cap that
 * doubles per step up to `maxMs`; the provider's Retry-After is a floor.
 */
export function retryDelay(
  attempt: number,
  retryAfterMs: number | undefined,
  p: RefreshPolicy,
  random: () => number,
): number {
  const floor = retryAfterMs !== undefined && retryAfterMs > 0 ? retryAfterMs : 0;
  return Math.max(random() * stepCap(attempt, p), floor);
}

/**
 * How long to hold off after the `step`-th successful refresh in a row that brought no new
 * timing while the old one says the token is already due: baseMs, doubling up to maxMs, so a
 * coordinator that never calls `upsert` cannot make the scheduler loop.
 */
export function holdDelay(step: number, p: RefreshPolicy): number {
  return stepCap(step, p);
}

// --- internal ---

function stepCap(step: number, p: RefreshPolicy): number {
  // Past ~60 steps factor^n overflows to Infinity; min() still gives maxMs.
  return Math.min(p.maxMs, p.baseMs * p.factor ** Math.max(0, step - 1));
}

function latest(...xs: (number | undefined)[]): number | undefined {
  let m: number | undefined;
  for (const x of xs) if (x !== undefined && (m === undefined || x > m)) m = x;
  return m;
}

function clamp(x: number, lo: number, hi: number): number {
  return Math.min(hi, Math.max(lo, x));
}

function check(field: string, ok: boolean, what: string): void {
  if (!ok) throw invalidArgument(field, `must be ${what}`);
}
