/**
 * One credential's scheduling state and its transitions: when its next attempt is, why, and
 * what an outcome does to its backoff. Used only by the refresh scheduler (scheduler.ts).
 */
import {
  type CredentialTiming,
  holdDelay,
  planRefresh,
  type RefreshOutcome,
  type RefreshPolicy,
  type RefreshReason,
  retryDelay,
} from "./scheduler-policy.js";
import type { Timed } from "./scheduler-timer.js";

/** A credential as the scheduler tracks it. */
export interface Entry extends Timed {
  readonly name: string;
  timing: CredentialTiming;
  /** idle: not scheduled; waiting: for its due time; ready: due, queued; flight: running. */
  where: "idle" | "waiting" | "ready" | "flight";
  kind: RefreshReason;
  /** Consecutive "retry" outcomes; 0 when not backing off. */
  attempt: number;
  /** No attempt before this time (a backoff step, or the hold after an ok). */
  holdUntil: number;
  /** Consecutive ok outcomes that brought no new timing. */
  holds: number;
  lastOkAt: number | undefined;
  /** A refresh said "stop"; cleared by an upsert with state ok. */
  halted: boolean;
  /** Removed while its refresh was in flight; forgotten when it ends. */
  removed: boolean;
}

/** A credential not yet scheduled, with no backoff. */
export function newEntry(timing: CredentialTiming): Entry {
  return {
    heapPos: -1,
    due: 0,
    seq: 0,
    name: timing.name,
    timing,
    where: "idle",
    kind: "due",
    attempt: 0,
    holdUntil: Number.NEGATIVE_INFINITY,
    holds: 0,
    lastOkAt: undefined,
    halted: false,
    removed: false,
  };
}

/** Forgets backoff and holds: a new token (or a "stop") starts the count again. */
export function resetBackoff(e: Entry): void {
  e.attempt = 0;
  e.holds = 0;
  e.holdUntil = Number.NEGATIVE_INFINITY;
}

/** True when both timings describe the same token (not a new one obtained in between). */
export function sameToken(a: CredentialTiming, b: CredentialTiming): boolean {
  return a.issuedAt === b.issuedAt && a.expiresAt === b.expiresAt;
}

/** Sets `due` and `kind` of the next attempt; false when the entry must not be scheduled. */
export function planEntry(e: Entry, now: number, p: RefreshPolicy, random: () => number): boolean {
  if (e.removed || e.halted || e.timing.state !== "ok") return false;
  if (e.attempt > 0) {
    e.kind = "retry";
    e.due = e.holdUntil;
  } else {
    const plan = planRefresh(e.timing, e.lastOkAt, now, p, random);
    e.kind = plan.kind;
    e.due = Math.max(plan.at, e.holdUntil);
  }
  return true;
}

/** The reason a refresh of `e` starting at `now` is given: a late "due" may have expired. */
export function reasonAt(e: Entry, now: number): RefreshReason {
  if (e.kind === "retry") return "retry";
  const { issuedAt, expiresAt } = e.timing;
  if (issuedAt === undefined && expiresAt === undefined) return "expired";
  return expiresAt !== undefined && expiresAt <= now ? "expired" : e.kind;
}

/**
 * Updates backoff after a refresh started with timing `atStart` ended at `now` with `o`.
 * A thrown refresh is passed as "retry".
 */
export function applyOutcome(
  e: Entry,
  o: RefreshOutcome,
  atStart: CredentialTiming,
  now: number,
  p: RefreshPolicy,
  random: () => number,
): void {
  if (o.kind === "ok") {
    e.attempt = 0;
    e.lastOkAt = now;
    // The coordinator upserts the new timing after an ok; until it does (or if it never
    // does), the old timing says "due now", so hold off rather than loop.
    e.holds = sameToken(e.timing, atStart) ? e.holds + 1 : 0;
    e.holdUntil = e.holds > 0 ? now + holdDelay(e.holds, p) : Number.NEGATIVE_INFINITY;
  } else if (o.kind === "retry") {
    // One attempt per backoff step: the next one is planned only now that this one ended.
    e.attempt++;
    e.holdUntil = now + retryDelay(e.attempt, o.retryAfterMs, p, random);
  } else {
    e.halted = true;
    resetBackoff(e);
  }
}

/** Ready-queue order: no token first, then earliest expiry, then no expiry; then due time. */
export function byUrgency(a: Entry, b: Entry): boolean {
  const ua = urgency(a);
  const ub = urgency(b);
  if (ua !== ub) return ua < ub;
  return a.due < b.due || (a.due === b.due && a.seq < b.seq);
}

/** True when `o` is one of the three outcomes (a caller's bug may return anything). */
export function isOutcome(o: unknown): o is RefreshOutcome {
  const k = (o as { kind?: unknown } | null | undefined)?.kind;
  return k === "ok" || k === "retry" || k === "stop";
}

// --- internal ---

function urgency(e: Entry): number {
  const { issuedAt, expiresAt } = e.timing;
  if (expiresAt !== undefined) return expiresAt;
  return issuedAt === undefined ? Number.NEGATIVE_INFINITY : Number.POSITIVE_INFINITY;
}
