/**
 * A simulated day of OAuth refreshes on the fake clock (issue #10's acceptance test and the
 * bench's oauth-scheduler part; not used by the daemon). A population of credentials with
 * mixed lifetimes is handed to a scheduler; a simulated provider answers each refresh after a
 * random latency with a new token (or a failure) and upserts the new timing, as the coordinator
 * does. The simulation records what a test must check: tokens served past expiry, two
 * refreshes in flight for one credential, the most in flight, when each was refreshed.
 */

import {
  type CredentialTiming,
  createRefreshScheduler,
  type RefreshOutcome,
  type RefreshScheduler,
  type RefreshSchedulerOptions,
} from "./scheduler.js";
import { createFakeClock, seededRandom } from "./scheduler-fake-clock.js";

const MIN = 60_000;
const HOUR = 60 * MIN;

/** Lifetime classes, one per 20 credentials: 5 min 1, 1 h 6, 8 h 6, 24 h 4, no expiry 3. */
export const LIFETIMES: readonly (number | undefined)[] = [
  5 * MIN,
  ...Array<number>(6).fill(HOUR),
  ...Array<number>(6).fill(8 * HOUR),
  ...Array<number>(4).fill(24 * HOUR),
  undefined,
  undefined,
  undefined,
];

/** What a simulation needs from a scheduler (the real one, or the bench's naive baseline). */
export type SchedulerLike = Pick<RefreshScheduler, "upsert" | "start" | "stop" | "dueAt" | "stats">;

/** Inputs of {@link simulate}. */
export interface SimOptions {
  /** @default 10000 */
  credentials?: number;
  /** Simulated time, ms. @default 86400000 (a day) */
  durationMs?: number;
  /** Seeds the population, the provider and the scheduler's `random`. @default 1 */
  seed?: number;
  /** @default 8 */
  concurrency?: number;
  /** The scheduler under test. @default createRefreshScheduler */
  createScheduler?: (o: RefreshSchedulerOptions) => SchedulerLike;
  /** Provider latency, log-uniform between the two, ms. @default [20, 2000] */
  latencyMs?: readonly [number, number];
  /** Share of credentials whose refreshes fail now and then. @default 0.03 */
  flakyShare?: number;
  /** Chance that a flaky credential's refresh asks for a retry. @default 0.3 */
  failureRate?: number;
  /** Most failures in a row for a flaky credential (outside an outage). @default 3 */
  maxFailStreak?: number;
  /** Every refresh in [from, to) fails with "retry" (a provider outage). */
  outage?: { from: number; to: number };
  /** Grid on which every current token is checked, ms. @default 30000 */
  checkEveryMs?: number;
  /** Called at phases, for the bench's memory readings. */
  probe?: (phase: "populated" | "started" | "ended") => void;
}

/** One simulated credential, and what happened to it. */
export interface SimCredential {
  name: string;
  /** undefined: tokens without expiry. */
  lifetimeMs: number | undefined;
  /** Issued at t=0 together with every other cohort member of its lifetime. */
  cohort: boolean;
  flaky: boolean;
  /** Had no valid token at t=0 (none, or expired). */
  expiredAtStart: boolean;
  issuedAt: number | undefined;
  expiresAt: number | undefined;
  /** The scheduler's planned first refresh, read before start(). */
  firstDue: number | undefined;
  /** When its first refresh started. */
  firstStart: number | undefined;
  oks: number;
  attempts: number;
  /** Attempts started during the outage. */
  outageAttempts: number;
  /** Tokens found or replaced past their expiry (outside an outage's fallout: see result). */
  expiredServed: number;
  inFlight: boolean;
  failStreak: number;
}

/** What a simulation observed. */
export interface SimResult {
  credentials: SimCredential[];
  durationMs: number;
  refreshes: number;
  attempts: number;
  failures: number;
  byReason: Record<string, number>;
  maxInFlight: number;
  /** Refreshes started for a credential that already had one in flight (must be 0). */
  doubleFlights: number;
  /** Tokens served past their expiry (checked at every replacement, on the grid and at the end). */
  expiredServed: number;
  /** First and last time a token was seen past its expiry; ±Infinity if never. */
  firstExpiredAt: number;
  lastExpiredAt: number;
  /** Of the first refreshes after start, how many were not for a credential expired at start. */
  expiredFirstViolations: number;
  /** Scheduler timers: most live at once, and setTimeout calls. */
  schedulerMaxTimers: number;
  schedulerTimerSets: number;
  wallMs: number;
}

/** Runs the simulation; resolves once the simulated time is over and the scheduler stopped. */
export async function simulate(o: SimOptions = {}): Promise<SimResult> {
  const n = o.credentials ?? 10_000;
  const durationMs = o.durationMs ?? 24 * HOUR;
  const seed = o.seed ?? 1;
  const [latMin, latMax] = o.latencyMs ?? [20, 2000];
  const failureRate = o.failureRate ?? 0.3;
  const maxFailStreak = o.maxFailStreak ?? 3;
  const rnd = seededRandom(seed);
  const clock = createFakeClock(0);
  const creds = population(n, o.flakyShare ?? 0.03, rnd);
  const byName = new Map(creds.map((c) => [c.name, c]));
  const expiredAtStart = creds.filter((c) => c.expiredAtStart).length;
  let attempts = 0;
  const byReason: Record<string, number> = {};
  let inFlight = 0;
  let maxInFlight = 0;
  let doubleFlights = 0;
  let expiredFirstViolations = 0;
  let failures = 0;
  let firstExpiredAt = Number.POSITIVE_INFINITY;
  let lastExpiredAt = Number.NEGATIVE_INFINITY;
  o.probe?.("populated");

  const view = clock.view();
  const inOutage = (t: number) => o.outage !== undefined && t >= o.outage.from && t < o.outage.to;
  const latency = () => latMin * (latMax / latMin) ** rnd();
  const expired = (c: SimCredential, t: number) => {
    if (c.expiresAt === undefined || c.expiresAt > t || (c.expiredAtStart && c.oks === 0)) {
      return false;
    }
    firstExpiredAt = Math.min(firstExpiredAt, t);
    lastExpiredAt = t;
    return true;
  };

  const refresh = (name: string, reason: string): Promise<RefreshOutcome> => {
    const c = byName.get(name) as SimCredential;
    if (c.inFlight) doubleFlights++;
    if (attempts++ < expiredAtStart && !c.expiredAtStart) expiredFirstViolations++;
    c.inFlight = true;
    maxInFlight = Math.max(maxInFlight, ++inFlight);
    c.attempts++;
    c.firstStart ??= clock.now();
    if (inOutage(clock.now())) c.outageAttempts++;
    byReason[reason] = (byReason[reason] ?? 0) + 1;
    return new Promise((resolve) => {
      clock.setTimeout(() => {
        c.inFlight = false;
        inFlight--;
        const t = clock.now();
        if (inOutage(t) || (c.flaky && c.failStreak < maxFailStreak && rnd() < failureRate)) {
          c.failStreak++;
          failures++;
          resolve({ kind: "retry", ...(rnd() < 0.5 ? { retryAfterMs: 1000 + rnd() * 9000 } : {}) });
          return;
        }
        c.failStreak = 0;
        if (expired(c, t)) c.expiredServed++;
        c.issuedAt = t;
        c.expiresAt = c.lifetimeMs === undefined ? undefined : t + c.lifetimeMs;
        c.oks++;
        scheduler.upsert(timing(c));
        resolve({ kind: "ok" });
      }, latency());
    });
  };

  const scheduler = (o.createScheduler ?? createRefreshScheduler)({
    refresh,
    clock: view,
    concurrency: o.concurrency ?? 8,
    random: seededRandom(seed + 1),
  });
  for (const c of creds) scheduler.upsert(timing(c));
  for (const c of creds) c.firstDue = scheduler.dueAt(c.name);

  const t0 = performance.now();
  const check = () => {
    const t = clock.now();
    for (const c of creds) {
      // Inline test first: this runs for every credential every 30 simulated seconds.
      if (c.expiresAt !== undefined && c.expiresAt <= t && expired(c, t)) c.expiredServed++;
    }
  };
  const every = o.checkEveryMs ?? 30_000;
  const grid = () => {
    check();
    clock.setTimeout(grid, every);
  };
  clock.setTimeout(grid, every);
  scheduler.start();
  o.probe?.("started");
  await clock.runUntil(durationMs);
  scheduler.stop();
  check();
  o.probe?.("ended");
  const wallMs = performance.now() - t0;

  return {
    credentials: creds,
    durationMs,
    refreshes: creds.reduce((a, c) => a + c.oks, 0),
    attempts,
    failures,
    byReason,
    maxInFlight,
    doubleFlights,
    expiredServed: creds.reduce((a, c) => a + c.expiredServed, 0),
    firstExpiredAt,
    lastExpiredAt,
    expiredFirstViolations,
    schedulerMaxTimers: view.maxLive,
    schedulerTimerSets: view.sets,
    wallMs,
  };
}

// --- internal ---

/**
 * Even blocks of 20 are a cohort issued at t=0; odd blocks are staggered: issued up to 70% of
 * a lifetime ago, or (1 in 50) expired or without a token at t=0.
 */
function population(n: number, flakyShare: number, rnd: () => number): SimCredential[] {
  const creds: SimCredential[] = [];
  for (let i = 0; i < n; i++) {
    const lifetimeMs = LIFETIMES[i % LIFETIMES.length];
    const cohort = Math.floor(i / LIFETIMES.length) % 2 === 0;
    const span = lifetimeMs ?? 24 * HOUR;
    let issuedAt: number | undefined = cohort ? 0 : -rnd() * 0.7 * span;
    const lost = !cohort && rnd() < 0.02;
    if (lost) issuedAt = rnd() < 0.5 ? undefined : -1.5 * span;
    creds.push({
      name: `cred-${i}`,
      lifetimeMs,
      cohort,
      flaky: rnd() < flakyShare,
      expiredAtStart: lost && (issuedAt === undefined || lifetimeMs !== undefined),
      issuedAt,
      expiresAt:
        issuedAt === undefined || lifetimeMs === undefined ? undefined : issuedAt + lifetimeMs,
      firstDue: undefined,
      firstStart: undefined,
      oks: 0,
      attempts: 0,
      outageAttempts: 0,
      expiredServed: 0,
      inFlight: false,
      failStreak: 0,
    });
  }
  return creds;
}

function timing(c: SimCredential): CredentialTiming {
  const t: CredentialTiming = { name: c.name, state: "ok" };
  if (c.issuedAt !== undefined) t.issuedAt = c.issuedAt;
  if (c.expiresAt !== undefined) t.expiresAt = c.expiresAt;
  return t;
}
