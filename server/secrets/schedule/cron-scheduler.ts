/**
 * Rotation schedules (issue #11): named cron expressions, each firing `onFire(name,
 * scheduledAt)` at its slots. Generated secrets are regenerated and fetched ones re-fetched by
 * the caller; this module only keeps time.
 *
 * Pure: time comes from an injected clock, so the integration tests drive a schedule with a
 * fake one. One timer serves every schedule: entries wait in a min-heap keyed by their next
 * slot (the OAuth scheduler's due-time heap, scheduler-timer.ts) and the timer is armed for
 * the head only, and waits at most a minute before it looks at the clock again.
 *
 * A slot whose previous run for the same name is still going is skipped (and logged), so runs
 * never overlap. A timer that fires late (the host slept, the clock stepped) fires each late
 * schedule once, not once per missed slot, and moves it to its next slot after now.
 */
import type { Logger } from "../../logger.js";
import { systemClock } from "../../oauth/scheduler.js";
import { createDueTimer, type SchedulerClock, type Timed } from "../../oauth/scheduler-timer.js";
import { type CronExpression, parseCronExpression } from "./cron-expression.js";

export {
  type CronExpression,
  type CronParseOptions,
  nextCronTime,
  parseCronExpression,
} from "./cron-expression.js";

/**
 * Time and timers: `now()` in ms since the epoch, and one-shot timers. The same shape as the
 * OAuth scheduler's clock, so `createFakeClock` (server/oauth/scheduler-fake-clock.ts) drives
 * both.
 */
export type CronClock = SchedulerClock;

/** Inputs of {@link createCronScheduler}. */
export interface CronSchedulerOptions {
  /** @default the real clock: Date.now and unref'd setTimeout */
  clock?: CronClock;
  /**
   * Runs one slot of schedule `name`; `scheduledAt` is the slot (ms since the epoch), which is
   * earlier than now when the timer fired late. A throw or rejection is logged and the
   * schedule carries on.
   */
  onFire: (name: string, scheduledAt: number) => Promise<void> | void;
  /** Told about skipped and late slots and failed runs (names and times only). @default none */
  log?: Pick<Logger, "warn" | "error">;
}

/** A set of named cron schedules over one timer. */
export interface CronScheduler {
  /** Schedules set, started or not. */
  readonly size: number;
  /**
   * Adds schedule `name`, or replaces its expression, and arms it for its next slot after
   * now. Throws `invalid_argument` (changing nothing) for a bad expression or time zone.
   * A run of the old expression still going makes the new one's slots skip until it ends.
   */
  set(name: string, expr: string, tz?: string): void;
  /** Removes schedule `name`; a run still going is not interrupted. No-op when unknown. */
  remove(name: string): void;
  /** Arms the timer; each schedule's next slot is recomputed from now (no catch-up). */
  start(): void;
  /** Disarms the timer; schedules are kept and runs still going are not interrupted. */
  stop(): void;
  /** The next slot of schedule `name` (ms since the epoch), or `undefined` when unknown. */
  nextAt(name: string): number | undefined;
}

/** Creates a stopped scheduler with no schedules. */
export function createCronScheduler(opts: CronSchedulerOptions): CronScheduler {
  const clock = opts.clock ?? systemClock;
  const log = opts.log;
  const entries = new Map<string, Entry>();
  /** Names whose onFire has not settled yet; by name, so a replaced expression waits too. */
  const running = new Set<string>();
  let started = false;
  let seq = 0;

  const tick = () => {
    const now = clock.now();
    for (let e = timer.popDue(now); e !== undefined; e = timer.popDue(now)) fire(e, now);
    if (started) timer.arm();
  };
  // Node's timers run on the monotonic clock, which stands still while the host sleeps: a
  // timer waits at most a minute, so a slot missed in a suspend fires soon after resume.
  const timerClock: CronClock = {
    now: () => clock.now(),
    setTimeout: (fn, ms) => clock.setTimeout(fn, Math.min(ms, MAX_WAIT_MS)),
    clearTimeout: (h) => clock.clearTimeout(h),
  };
  const timer = createDueTimer<Entry>(timerClock, tick);

  /** Puts `e` back in the heap at its first slot after `now`. */
  const requeue = (e: Entry, now: number) => {
    e.due = e.expr.next(now);
    e.seq = ++seq;
    timer.push(e);
  };

  const fire = (e: Entry, now: number) => {
    const { name } = e;
    const scheduledAt = e.due;
    // Requeue before calling out: onFire may set or remove this very schedule.
    requeue(e, now);
    if (e.expr.next(scheduledAt) <= now) {
      log?.warn(`cron: '${name}' fired late; its missed slots run once`, {
        scheduledAt: iso(scheduledAt),
        now: iso(now),
      });
    }
    if (running.has(name)) {
      log?.warn(`cron: '${name}' skipped a slot: its previous run is still going`, {
        scheduledAt: iso(scheduledAt),
      });
      return;
    }
    running.add(name);
    void settle(() => opts.onFire(name, scheduledAt)).then((err) => {
      running.delete(name);
      if (err !== undefined) log?.error(`cron: '${name}' failed`, { error: describe(err) });
    });
  };

  return {
    get size() {
      return entries.size;
    },
    set(name, source, tz) {
      const expr = parseCronExpression(source, tz === undefined ? {} : { tz });
      const old = entries.get(name);
      if (old !== undefined) timer.remove(old);
      const e: Entry = old ?? { name, expr, due: 0, seq: 0, heapPos: -1 };
      e.expr = expr;
      entries.set(name, e);
      requeue(e, clock.now());
      if (started) timer.arm();
    },
    remove(name) {
      const e = entries.get(name);
      if (e === undefined) return;
      entries.delete(name);
      timer.remove(e);
      if (started) timer.arm();
    },
    start() {
      if (started) return;
      started = true;
      const now = clock.now();
      for (const e of entries.values()) {
        timer.remove(e);
        requeue(e, now);
      }
      timer.arm();
    },
    stop() {
      started = false;
      timer.disarm();
    },
    nextAt: (name) => entries.get(name)?.due,
  };
}

// --- internal ---

const MAX_WAIT_MS = 60_000;

interface Entry extends Timed {
  name: string;
  expr: CronExpression;
}

/** Runs `fn` and resolves with what it threw or rejected with (`undefined` on success). */
async function settle(fn: () => Promise<void> | void): Promise<unknown> {
  try {
    await fn();
    return undefined;
  } catch (err) {
    return err ?? new Error("rejected without a reason");
  }
}

/** An error's name, code and message: SecretsError messages never carry values (STYLE §6). */
function describe(err: unknown): string {
  if (!(err instanceof Error)) return typeof err;
  const code = (err as { code?: unknown }).code;
  return `${err.name}${typeof code === "string" ? ` (${code})` : ""}: ${err.message}`;
}

function iso(t: number): string {
  return new Date(t).toISOString();
}
