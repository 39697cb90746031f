/**
 * The OAuth refresh scheduler (issue #10): decides when each credential's access token is
 * refreshed and calls the injected `refresh(name, reason)`. Pure: time comes from an injected
 * clock and randomness from an injected `random`, so a simulated day runs in seconds
 * (scheduler.sim.test.ts).
 *
 * One precise timer serves every credential (scheduler-timer.ts): credentials wait in a
 * min-heap keyed by due time and the timer is armed for the head only. Due credentials move to
 * a ready queue ordered by expiry (tokenless and expired first) and are started up to
 * `concurrency` at a time. A credential is never started again while a refresh this scheduler
 * started for it is in flight: it sits in neither heap until that refresh ends.
 *
 *   scheduler-policy.ts  due time, jitter, backoff (pure functions)
 *   scheduler-entry.ts   one credential's state and its transitions
 *   scheduler-timer.ts   the due-time heap and its one timer
 *   scheduler-heap.ts    the indexed binary heap under both queues
 */
import { invalidArgument } from "../errors.js";
import {
  applyOutcome,
  byUrgency,
  type Entry,
  isOutcome,
  newEntry,
  planEntry,
  reasonAt,
  resetBackoff,
  sameToken,
} from "./scheduler-entry.js";
import { createIndexedHeap } from "./scheduler-heap.js";
import {
  type CredentialTiming,
  checkTiming,
  type RefreshOutcome,
  type RefreshPolicyOptions,
  type RefreshReason,
  resolveRefreshPolicy,
} from "./scheduler-policy.js";
import { createDueTimer, type SchedulerClock } from "./scheduler-timer.js";

export type {
  BackoffOptions,
  CredentialTiming,
  RefreshOutcome,
  RefreshPolicyOptions,
  RefreshReason,
} from "./scheduler-policy.js";
export type { SchedulerClock } from "./scheduler-timer.js";

/** Inputs of {@link createRefreshScheduler}. */
export interface RefreshSchedulerOptions extends RefreshPolicyOptions {
  /**
   * Refreshes one credential. Should not throw; a throw or rejection is reported to `onError`
   * and treated as "retry".
   */
  refresh(name: string, reason: RefreshReason): Promise<RefreshOutcome>;
  /** @default the real clock: Date.now and unref'd setTimeout ({@link systemClock}) */
  clock?: SchedulerClock;
  /**
   * Most refreshes in flight across all credentials, so that a start with 10,000 tokens due
   * does not storm the provider.
   * @default 8
   */
  concurrency?: number;
  /**
   * Periodic resync: called at `start()` with a function to run periodically; returns a
   * function that stops it. The daemon passes a node-cron schedule (every minute), which runs
   * on wall-clock time and so catches up after a host suspend delayed the timer.
   * @default none
   */
  sweep?: (tick: () => void) => () => void;
  /** Uniform [0, 1) source for jitter and backoff. @default Math.random */
  random?: () => number;
  /** Told when `refresh` threw or rejected, or returned no outcome (a bug). @default ignore */
  onError?: (name: string, err: unknown) => void;
}

/** Counters for status and tests. */
export interface SchedulerStats {
  /** Credentials known, scheduled or not. */
  tracked: number;
  /** Waiting for their due time. */
  scheduled: number;
  /** Due, waiting for a slot under `concurrency`. */
  queued: number;
  inFlight: number;
  /** Whose last refresh asked to be retried. */
  backingOff: number;
  /** Times the one timer was (re)armed since creation. */
  timerArms: number;
}

/** The scheduler; see {@link createRefreshScheduler}. */
export interface RefreshScheduler {
  /**
   * Adds or updates a credential (after a refresh, a login, a config change) and reschedules
   * it; a new token (issuedAt or expiresAt changed) resets its backoff. Never calls `refresh`
   * synchronously. While a refresh for it is in flight the timing is kept and used when that
   * refresh ends. Throws `invalid_argument` for a missing name or a non-finite time.
   */
  upsert(t: CredentialTiming): void;
  /** Forgets a credential; a refresh in flight for it may finish but schedules nothing. */
  remove(name: string): void;
  /**
   * Arms the timer and the sweep, and starts everything already due, tokenless and expired
   * first, up to `concurrency`; the rest follow as slots free up.
   */
  start(): void;
  /** Clears the timer and the sweep; refreshes in flight finish but nothing new starts. */
  stop(): void;
  /** Planned start of the next refresh (ms since the epoch; may be past); undefined if none. */
  dueAt(name: string): number | undefined;
  /** Counters; O(credentials). */
  stats(): SchedulerStats;
}

/** The real clock; its timers do not keep the process alive. */
export const systemClock: SchedulerClock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
};

/** Creates a stopped scheduler; throws `invalid_argument` for an out-of-range option. */
export function createRefreshScheduler(opts: RefreshSchedulerOptions): RefreshScheduler {
  const policy = resolveRefreshPolicy(opts);
  const clock = opts.clock ?? systemClock;
  const random = opts.random ?? Math.random;
  const concurrency = opts.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw invalidArgument("concurrency", "must be a positive integer");
  }
  const entries = new Map<string, Entry>();
  const ready = createIndexedHeap<Entry>(byUrgency);
  const timer = createDueTimer<Entry>(clock, () => tick());
  let running = false;
  let inFlight = 0;
  let seq = 0;
  let stopSweep: (() => void) | undefined;

  /** Puts `e` where its state says: waiting for its next due time, or nowhere. */
  const schedule = (e: Entry) => {
    if (e.where === "waiting") timer.remove(e);
    else if (e.where === "ready") ready.remove(e);
    if (e.where === "flight") return;
    e.where = "idle";
    if (!planEntry(e, clock.now(), policy, random)) return;
    e.seq = ++seq;
    e.where = "waiting";
    timer.push(e);
  };

  /** Moves everything due to the ready queue, starts what fits, re-arms. Late is fine. */
  const tick = () => {
    if (!running) return;
    const now = clock.now();
    for (let e = timer.popDue(now); e !== undefined; e = timer.popDue(now)) {
      e.where = "ready";
      ready.push(e);
    }
    pump();
  };

  /** Starts ready refreshes while slots are free, then keeps the timer armed. */
  const pump = () => {
    while (running && inFlight < concurrency) {
      const e = ready.pop();
      if (e === undefined) break;
      dispatch(e);
    }
    if (running) timer.arm();
  };

  const dispatch = (e: Entry) => {
    const reason = reasonAt(e, clock.now());
    const atStart = e.timing;
    e.where = "flight";
    inFlight++;
    let p: Promise<RefreshOutcome>;
    try {
      p = Promise.resolve(opts.refresh(e.name, reason));
    } catch (err) {
      p = Promise.reject(err);
    }
    void p.then(
      (o) =>
        settle(e, atStart, isOutcome(o) ? o : failed(e.name, new Error(`refresh returned ${o}`))),
      (err: unknown) => settle(e, atStart, failed(e.name, err)),
    );
  };

  const failed = (name: string, err: unknown): RefreshOutcome => {
    try {
      opts.onError?.(name, err);
    } catch {
      // onError is a logger; its failure must not stop the scheduling.
    }
    return { kind: "retry" };
  };

  const settle = (e: Entry, atStart: CredentialTiming, o: RefreshOutcome) => {
    inFlight--;
    e.where = "idle";
    if (e.removed) {
      if (entries.get(e.name) === e) entries.delete(e.name);
    } else {
      applyOutcome(e, o, atStart, clock.now(), policy, random);
      schedule(e);
    }
    pump();
  };

  return {
    upsert(t) {
      checkTiming(t);
      const timing = { ...t };
      let e = entries.get(t.name);
      if (e === undefined) {
        e = newEntry(timing);
        entries.set(t.name, e);
      } else {
        if (!sameToken(e.timing, timing)) resetBackoff(e);
        e.timing = timing;
        e.removed = false;
      }
      if (timing.state === "ok") e.halted = false;
      schedule(e);
      // Arm rather than tick: a credential due now starts from the timer, not inside upsert.
      if (running) timer.arm();
    },
    remove(name) {
      const e = entries.get(name);
      if (e === undefined) return;
      e.removed = true;
      schedule(e);
      if (e.where !== "flight") entries.delete(name);
      if (running) timer.arm();
    },
    start() {
      if (running) return;
      running = true;
      stopSweep = opts.sweep?.(tick);
      tick();
    },
    stop() {
      running = false;
      timer.disarm();
      stopSweep?.();
      stopSweep = undefined;
    },
    dueAt(name) {
      const e = entries.get(name);
      return e?.where === "waiting" || e?.where === "ready" ? e.due : undefined;
    },
    stats() {
      let tracked = 0;
      let backingOff = 0;
      for (const e of entries.values()) {
        if (e.removed) continue;
        tracked++;
        if (e.attempt > 0) backingOff++;
      }
      const scheduled = timer.size;
      return {
        tracked,
        scheduled,
        queued: ready.size,
        inFlight,
        backingOff,
        timerArms: timer.arms,
      };
    },
  };
}
