/**
 * The OAuth refresh scheduler's simulated day (server/oauth/scheduler-sim.ts), in its own
 * process started with --expose-gc so that heap readings follow a forced collection. One
 * request per process: `run` with the design to measure:
 *   heap   the scheduler (one timer for the earliest due time, over a min-heap);
 *   naive  the same policy and state machine with one timer per credential and a FIFO queue,
 *          on the same fake clock: the baseline.
 */
import type { RefreshSchedulerOptions, SchedulerClock } from "../../server/oauth/scheduler.js";
import {
  applyOutcome,
  type Entry,
  isOutcome,
  newEntry,
  planEntry,
  reasonAt,
  resetBackoff,
  sameToken,
} from "../../server/oauth/scheduler-entry.js";
import { resolveRefreshPolicy } from "../../server/oauth/scheduler-policy.js";
import { type SchedulerLike, simulate } from "../../server/oauth/scheduler-sim.js";
import { serve } from "../lib/ipc.js";
import { nowMs } from "../lib/stats.js";

export interface SimRequest {
  design: "heap" | "naive";
  credentials: number;
  durationMs: number;
  seed: number;
}

export interface SimFigures {
  design: "heap" | "naive";
  /** CPU (user + system) and wall time of the simulated day, from start() to its end, ms. */
  cpuMs: number;
  wallMs: number;
  /** Heap after a forced gc: with the population only, then with the scheduler loaded, bytes. */
  heapPopulated: number;
  heapLoaded: number;
  /** RSS after the population was built, and the process's peak RSS, bytes. */
  rssPopulated: number;
  rssPeak: number;
  refreshes: number;
  attempts: number;
  timerSets: number;
  maxSchedulerTimers: number;
  maxInFlight: number;
  doubleFlights: number;
  expiredServed: number;
  expiredFirstViolations: number;
}

const gc = (globalThis as { gc?: () => void }).gc ?? (() => {});

async function run(r: SimRequest): Promise<SimFigures> {
  let heapPopulated = 0;
  let heapLoaded = 0;
  let rssPopulated = 0;
  let cpu0 = process.cpuUsage();
  let cpu = { user: 0, system: 0 };
  let wall0 = 0;
  let wallMs = 0;
  const res = await simulate({
    credentials: r.credentials,
    durationMs: r.durationMs,
    seed: r.seed,
    ...(r.design === "naive" ? { createScheduler: createNaiveScheduler } : {}),
    probe(phase) {
      if (phase === "populated") {
        gc();
        heapPopulated = process.memoryUsage().heapUsed;
        rssPopulated = process.memoryUsage.rss();
      } else if (phase === "started") {
        gc();
        heapLoaded = process.memoryUsage().heapUsed;
        cpu0 = process.cpuUsage();
        wall0 = nowMs();
      } else {
        cpu = process.cpuUsage(cpu0);
        wallMs = nowMs() - wall0;
      }
    },
  });
  return {
    design: r.design,
    cpuMs: (cpu.user + cpu.system) / 1000,
    wallMs,
    heapPopulated,
    heapLoaded,
    rssPopulated,
    rssPeak: process.resourceUsage().maxRSS * 1024,
    refreshes: res.refreshes,
    attempts: res.attempts,
    timerSets: res.schedulerTimerSets,
    maxSchedulerTimers: res.schedulerMaxTimers,
    maxInFlight: res.maxInFlight,
    doubleFlights: res.doubleFlights,
    expiredServed: res.expiredServed,
    expiredFirstViolations: res.expiredFirstViolations,
  };
}

/**
 * The baseline: the scheduler's own policy and per-credential state machine
 * (scheduler-entry.ts), but one clock timer per credential, re-set on every change, and a
 * FIFO queue for the concurrency limit.
 */
function createNaiveScheduler(o: RefreshSchedulerOptions): SchedulerLike {
  const clock = o.clock as SchedulerClock;
  const policy = resolveRefreshPolicy(o);
  const random = o.random ?? Math.random;
  const concurrency = o.concurrency ?? 8;
  const entries = new Map<string, Entry>();
  const timers = new Map<Entry, unknown>();
  const queue: Entry[] = [];
  let running = false;
  let inFlight = 0;
  let sets = 0;

  const arm = (e: Entry) => {
    sets++;
    const fire = () => {
      timers.delete(e);
      e.where = "ready";
      queue.push(e);
      pump();
    };
    timers.set(e, clock.setTimeout(fire, Math.max(0, e.due - clock.now())));
  };
  const schedule = (e: Entry) => {
    const t = timers.get(e);
    if (t !== undefined) clock.clearTimeout(t);
    timers.delete(e);
    if (e.where === "ready") queue.splice(queue.indexOf(e), 1);
    if (e.where === "flight") return;
    e.where = "idle";
    if (!planEntry(e, clock.now(), policy, random)) return;
    e.where = "waiting";
    if (running) arm(e);
  };
  const pump = () => {
    while (running && inFlight < concurrency && queue.length > 0) {
      const e = queue.shift() as Entry;
      const atStart = e.timing;
      e.where = "flight";
      inFlight++;
      void o.refresh(e.name, reasonAt(e, clock.now())).then(
        (out) => settle(e, atStart, isOutcome(out) ? out : { kind: "retry" }),
        () => settle(e, atStart, { kind: "retry" }),
      );
    }
  };
  const settle = (e: Entry, atStart: Entry["timing"], out: Parameters<typeof applyOutcome>[1]) => {
    inFlight--;
    e.where = "idle";
    applyOutcome(e, out, atStart, clock.now(), policy, random);
    schedule(e);
    pump();
  };

  return {
    upsert(t) {
      const timing = { ...t };
      let e = entries.get(t.name);
      if (e === undefined) {
        e = newEntry(timing);
        entries.set(t.name, e);
      } else {
        if (!sameToken(e.timing, timing)) resetBackoff(e);
        e.timing = timing;
      }
      if (timing.state === "ok") e.halted = false;
      schedule(e);
    },
    start() {
      running = true;
      for (const e of entries.values()) if (e.where === "waiting") arm(e);
    },
    stop() {
      running = false;
      for (const t of timers.values()) clock.clearTimeout(t);
      timers.clear();
    },
    dueAt(name) {
      const e = entries.get(name);
      return e?.where === "waiting" || e?.where === "ready" ? e.due : undefined;
    },
    stats() {
      const waiting = timers.size;
      return {
        tracked: entries.size,
        scheduled: waiting,
        queued: queue.length,
        inFlight,
        backingOff: 0,
        timerArms: sets,
      };
    },
  };
}

serve({ run: (m) => run(m as unknown as SimRequest) });
