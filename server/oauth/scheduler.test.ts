import { describe, expect, it } from "vitest";
import { isSecretsError } from "../errors.js";
import {
  type CredentialTiming,
  createRefreshScheduler,
  type RefreshOutcome,
  type RefreshReason,
  type RefreshSchedulerOptions,
  type SchedulerClock,
} from "./scheduler.js";
import { createFakeClock } from "./scheduler-fake-clock.js";
import { planRefresh, resolveRefreshPolicy, retryDelay } from "./scheduler-policy.js";

const T0 = Date.UTC(2026, 0, 1);
const S = 1000;
const MIN = 60 * S;
const HOUR = 60 * MIN;

/** A scheduler on a fake clock whose refreshes wait until the test settles them. */
function setup(o: Partial<RefreshSchedulerOptions> = {}) {
  const clock = createFakeClock(T0);
  const view = clock.view();
  const calls: { name: string; reason: RefreshReason; at: number }[] = [];
  const pending = new Map<string, (o: RefreshOutcome) => void>();
  let inFlight = 0;
  let maxInFlight = 0;
  const s = createRefreshScheduler({
    clock: view,
    random: () => 0.5,
    refresh(name, reason) {
      calls.push({ name, reason, at: clock.now() });
      if (pending.has(name)) throw new Error(`two refreshes in flight for ${name}`);
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      return new Promise((resolve) => pending.set(name, resolve));
    },
    ...o,
  });
  /** Ends `name`'s refresh with `outcome`, upserting `next` first as the coordinator does. */
  const settle = async (name: string, outcome: RefreshOutcome, next?: CredentialTiming) => {
    const r = pending.get(name);
    if (r === undefined) throw new Error(`no refresh in flight for ${name}`);
    pending.delete(name);
    inFlight--;
    if (next) s.upsert(next);
    r(outcome);
    await clock.runUntil(clock.now());
  };
  return { clock, view, calls, pending, s, settle, maxInFlight: () => maxInFlight };
}

/** A token issued at `issuedAt` (relative to T0) that lives `life` ms. */
const token = (name: string, issuedAt: number, life?: number): CredentialTiming => ({
  name,
  state: "ok",
  issuedAt: T0 + issuedAt,
  ...(life === undefined ? {} : { expiresAt: T0 + issuedAt + life }),
});

describe("due time", () => {
  const p = resolveRefreshPolicy({});
  const at = (t: CredentialTiming, r: number, lastOk?: number) =>
    planRefresh(t, lastOk, T0, p, () => r);

  it("is 80% of the lifetime, ±5% of it by jitter", () => {
    const t = token("a", 0, HOUR);
    expect(at(t, 0.5)).toEqual({ at: T0 + 0.8 * HOUR, kind: "due" });
    expect(at(t, 0).at).toBe(T0 + 0.75 * HOUR);
    expect(at(t, 0.999999).at).toBeCloseTo(T0 + 0.85 * HOUR, -1);
  });

  it("stays within 50%–95% of the lifetime whatever the jitter", () => {
    const wide = resolveRefreshPolicy({ fraction: 0.9, jitter: 0.4 });
    const t = token("a", 0, HOUR);
    expect(planRefresh(t, undefined, T0, wide, () => 0.999999).at).toBe(T0 + 0.95 * HOUR);
    expect(planRefresh(t, undefined, T0, wide, () => 0).at).toBe(T0 + 0.5 * HOUR);
  });

  it("is at most idleMaxMs after the last activity, jittered downwards only", () => {
    const long = token("a", 0, 48 * HOUR);
    expect(at(long, 0)).toEqual({ at: T0 + 24 * HOUR, kind: "idle" });
    expect(at(long, 0.999999).at).toBeGreaterThan(T0 + 0.95 * 24 * HOUR - 1);
    // A later refresh (the scheduler's own, or lastRefreshAt) moves the idle anchor.
    expect(at(long, 0, T0 + HOUR)).toEqual({ at: T0 + 25 * HOUR, kind: "idle" });
  });

  it("refreshes a token without expiry every idleMaxMs", () => {
    const t = { ...token("a", -HOUR), lastRefreshAt: T0 - 30 * MIN };
    expect(at(t, 0)).toEqual({ at: T0 - 30 * MIN + 24 * HOUR, kind: "idle" });
  });

  it("is now, as expired, with no token or an expired one", () => {
    expect(at({ name: "a", state: "ok" }, 0.5)).toEqual({ at: T0, kind: "expired" });
    expect(at(token("a", -2 * HOUR, HOUR), 0.5)).toEqual({ at: T0, kind: "expired" });
  });

  it("counts an expiry without issuedAt from now: still before the expiry", () => {
    const t: CredentialTiming = { name: "a", state: "ok", expiresAt: T0 + 10 * MIN };
    expect(at(t, 0.5)).toEqual({ at: T0 + 8 * MIN, kind: "due" });
  });

  it("rejects out-of-range options with invalid_argument", () => {
    for (const o of [{ fraction: 0.3 }, { jitter: -1 }, { backoff: { baseMs: 10, maxMs: 5 } }]) {
      expect(() => resolveRefreshPolicy(o)).toThrow(/must be/);
    }
    try {
      createRefreshScheduler({ refresh: async () => ({ kind: "ok" }), concurrency: 0 });
      expect.unreachable();
    } catch (err) {
      expect(isSecretsError(err) && err.code).toBe("invalid_argument");
    }
    const s = createRefreshScheduler({ refresh: async () => ({ kind: "ok" }) });
    expect(() => s.upsert({ name: "a", state: "ok", expiresAt: Number.NaN })).toThrow(/expiresAt/);
    expect(() => s.upsert({ name: "", state: "ok" })).toThrow(/name/);
  });
});

describe("backoff", () => {
  it("doubles from baseMs up to maxMs with full jitter; Retry-After is a floor", () => {
    const p = resolveRefreshPolicy({});
    const caps = Array.from({ length: 12 }, (_, i) => retryDelay(i + 1, undefined, p, () => 1));
    expect(caps).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300].map((x) => x * S));
    expect(retryDelay(1, undefined, p, () => 0)).toBe(0);
    expect(retryDelay(1, 45 * S, p, () => 0.5)).toBe(45 * S);
    expect(retryDelay(3, 100, p, () => 0.5)).toBe(2 * S);
  });

  it("makes one attempt per step, capped, and resets on ok", async () => {
    const h = setup();
    h.s.upsert(token("a", 0, HOUR));
    h.s.start();
    await h.clock.runUntil(T0 + 0.8 * HOUR);
    for (let i = 0; i < 12; i++) {
      expect(h.s.stats().backingOff).toBe(i === 0 ? 0 : 1);
      await h.settle("a", { kind: "retry" });
      await h.clock.runUntil(h.s.dueAt("a") as number);
    }
    const gaps = h.calls.slice(1).map((c, i) => c.at - (h.calls[i] as { at: number }).at);
    // random() = 0.5: half of each step's cap.
    expect(gaps).toEqual([0.5, 1, 2, 4, 8, 16, 32, 64, 128, 150, 150, 150].map((x) => x * S));
    expect(h.calls.slice(1).every((c) => c.reason === "retry")).toBe(true);
    const now = h.clock.now();
    await h.settle("a", { kind: "ok" }, token("a", now - T0, HOUR));
    expect(h.s.stats().backingOff).toBe(0);
    expect(h.s.dueAt("a")).toBe(now + 0.8 * HOUR);
    await h.clock.runUntil(now + 0.8 * HOUR);
    await h.settle("a", { kind: "retry" });
    expect(h.s.dueAt("a")).toBe(now + 0.8 * HOUR + 0.5 * S);
  });

  it("waits at least Retry-After", async () => {
    const h = setup();
    h.s.upsert(token("a", 0, HOUR));
    h.s.start();
    await h.clock.runUntil(T0 + 0.8 * HOUR);
    await h.settle("a", { kind: "retry", retryAfterMs: 90 * S });
    expect(h.s.dueAt("a")).toBe(T0 + 0.8 * HOUR + 90 * S);
  });

  it("treats a throwing refresh as a retry and tells onError", async () => {
    const errors: string[] = [];
    const clock = createFakeClock(T0);
    let calls = 0;
    const s = createRefreshScheduler({
      clock,
      random: () => 0.5,
      onError: (name, err) => errors.push(`${name}: ${(err as Error).message}`),
      refresh: () => {
        calls++;
        if (calls === 1) throw new Error("sync");
        return Promise.reject(new Error("async"));
      },
    });
    s.upsert({ name: "a", state: "ok" });
    s.start();
    await clock.runUntil(T0 + 10 * S);
    expect(errors.slice(0, 2)).toEqual(["a: sync", "a: async"]);
    expect(s.stats().backingOff).toBe(1);
  });
});

describe("scheduling", () => {
  it("does not schedule needs_login or disabled credentials, nor after a stop outcome", async () => {
    const h = setup();
    h.s.upsert({ ...token("a", 0, HOUR), state: "needs_login" });
    h.s.upsert({ ...token("b", 0, HOUR), state: "disabled" });
    h.s.upsert(token("c", 0, HOUR));
    h.s.start();
    expect([h.s.dueAt("a"), h.s.dueAt("b")]).toEqual([undefined, undefined]);
    await h.clock.runUntil(T0 + 0.8 * HOUR);
    await h.settle("c", { kind: "stop" });
    await h.clock.runUntil(T0 + 48 * HOUR);
    expect(h.calls.map((c) => c.name)).toEqual(["c"]);
    expect(h.s.stats()).toMatchObject({ tracked: 3, scheduled: 0, queued: 0, inFlight: 0 });
    // A login (upsert with state ok) schedules it again.
    h.s.upsert(token("c", 48 * HOUR, HOUR));
    expect(h.s.dueAt("c")).toBe(T0 + 48.8 * HOUR);
    h.s.upsert({ ...token("a", 48 * HOUR, HOUR), state: "ok" });
    expect(h.s.dueAt("a")).toBe(T0 + 48.8 * HOUR);
  });

  it("reschedules on upsert; an upsert during a refresh waits for it to end", async () => {
    const h = setup();
    h.s.upsert(token("a", 0, HOUR));
    expect(h.s.dueAt("a")).toBe(T0 + 0.8 * HOUR);
    h.s.upsert(token("a", 0, 2 * HOUR));
    expect(h.s.dueAt("a")).toBe(T0 + 1.6 * HOUR);
    h.s.start();
    await h.clock.runUntil(T0 + 1.6 * HOUR);
    expect(h.s.dueAt("a")).toBeUndefined();
    h.s.upsert(token("a", 1.6 * HOUR, HOUR));
    await h.clock.runUntil(T0 + 2 * HOUR);
    expect(h.calls).toHaveLength(1);
    await h.settle("a", { kind: "ok" });
    expect(h.s.dueAt("a")).toBe(T0 + 2.4 * HOUR);
    await h.clock.runUntil(T0 + 2.4 * HOUR);
    expect(h.calls).toHaveLength(2);
  });

  it("never calls refresh from inside upsert", () => {
    const h = setup();
    h.s.start();
    h.s.upsert({ name: "a", state: "ok" });
    expect(h.calls).toHaveLength(0);
  });

  it("forgets removed credentials, also while their refresh is in flight", async () => {
    const h = setup();
    h.s.upsert(token("a", 0, HOUR));
    h.s.upsert(token("b", 0, HOUR));
    h.s.remove("a");
    h.s.start();
    await h.clock.runUntil(T0 + 0.8 * HOUR);
    expect(h.calls.map((c) => c.name)).toEqual(["b"]);
    h.s.remove("b");
    expect(h.s.stats().tracked).toBe(0);
    await h.settle("b", { kind: "retry" });
    await h.clock.runUntil(T0 + 10 * HOUR);
    expect(h.calls).toHaveLength(1);
    expect(h.s.dueAt("b")).toBeUndefined();
  });

  it("re-added while its old refresh is in flight: still one refresh at a time", async () => {
    const h = setup();
    h.s.upsert({ name: "a", state: "ok" });
    h.s.start();
    await h.clock.runUntil(T0);
    h.s.remove("a");
    h.s.upsert({ name: "a", state: "ok" });
    await h.clock.runUntil(T0 + MIN);
    expect(h.calls).toHaveLength(1);
    await h.settle("a", { kind: "retry" });
    await h.clock.runUntil(T0 + 2 * MIN);
    expect(h.calls).toHaveLength(2);
  });

  it("holds off when an ok brings no new timing instead of looping", async () => {
    const h = setup();
    h.s.upsert(token("a", 0, HOUR));
    h.s.start();
    await h.clock.runUntil(T0 + 0.8 * HOUR);
    for (let i = 0; i < 12; i++) {
      await h.settle("a", { kind: "ok" });
      await h.clock.runUntil(h.s.dueAt("a") as number);
    }
    const gaps = h.calls.slice(1).map((c, i) => c.at - (h.calls[i] as { at: number }).at);
    expect(gaps).toEqual([1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300, 300].map((x) => x * S));
  });
});

describe("start, concurrency and the timer", () => {
  it("starts tokenless and expired credentials first, then by expiry, up to concurrency", async () => {
    const h = setup({ concurrency: 1 });
    h.s.upsert(token("due-late", -50 * MIN, HOUR)); // due, expires in 10 min
    h.s.upsert(token("expired", -2 * HOUR, HOUR));
    h.s.upsert(token("due-soon", -55 * MIN, HOUR)); // due, expires in 5 min
    h.s.upsert({ name: "none", state: "ok" });
    h.s.upsert(token("idle", -30 * HOUR)); // no expiry, idle for 30 h
    h.s.upsert(token("later", 0, HOUR));
    h.s.start();
    for (let i = 0; i < 5; i++) {
      const name = [...h.pending.keys()][0] as string;
      await h.settle(name, { kind: "ok" }, token(name, h.clock.now() - T0, HOUR));
    }
    expect(h.calls.map((c) => `${c.name}:${c.reason}`)).toEqual([
      "none:expired",
      "expired:expired",
      "due-soon:due",
      "due-late:due",
      "idle:idle",
    ]);
  });

  it("keeps at most `concurrency` refreshes in flight", async () => {
    const h = setup({ concurrency: 3 });
    for (let i = 0; i < 50; i++) h.s.upsert({ name: `c${i}`, state: "ok" });
    h.s.start();
    expect(h.s.stats()).toMatchObject({ inFlight: 3, queued: 47 });
    while (h.pending.size > 0) {
      const name = [...h.pending.keys()][0] as string;
      await h.settle(name, { kind: "ok" }, token(name, h.clock.now() - T0, HOUR));
    }
    expect(h.calls).toHaveLength(50);
    expect(h.maxInFlight()).toBe(3);
  });

  it("uses one timer for many credentials, re-armed only when the head changes", async () => {
    const h = setup();
    for (let i = 0; i < 1000; i++) h.s.upsert(token(`c${i}`, i * S, HOUR));
    expect(h.view.live).toBe(0);
    h.s.start();
    expect(h.view.live).toBe(1);
    expect(h.s.stats().timerArms).toBe(1);
    h.s.upsert(token("c5", 0, 2 * HOUR)); // not the head: no re-arm
    expect(h.s.stats().timerArms).toBe(1);
    h.s.upsert(token("new", -HOUR, 1.5 * HOUR)); // the new head
    expect(h.s.stats().timerArms).toBe(2);
    await h.clock.runUntil(T0 + 0.8 * HOUR + 100 * S);
    expect(h.view.maxLive).toBe(1);
    h.s.stop();
    expect(h.view.live).toBe(0);
  });

  it("clamps the timer to Node's 2^31-1 ms and re-arms when it fires early", async () => {
    const delays: number[] = [];
    const fake = createFakeClock(T0);
    const clock: SchedulerClock = {
      now: fake.now,
      setTimeout: (fn, ms) => {
        delays.push(ms);
        return fake.setTimeout(fn, ms);
      },
      clearTimeout: fake.clearTimeout,
    };
    const calls: number[] = [];
    const s = createRefreshScheduler({
      clock,
      random: () => 0.5,
      idleMaxMs: 100 * 24 * HOUR,
      refresh: async () => {
        calls.push(fake.now());
        s.upsert(token("a", fake.now() - T0, 100 * 24 * HOUR));
        return { kind: "ok" };
      },
    });
    s.upsert(token("a", 0, 100 * 24 * HOUR));
    s.start();
    await fake.runUntil(T0 + 81 * 24 * HOUR);
    expect(Math.max(...delays)).toBe(2 ** 31 - 1);
    expect(calls).toEqual([T0 + 80 * 24 * HOUR]);
  });

  it("runs what is due when the clock jumps: from the sweep, or the timer firing late", async () => {
    let sweep: (() => void) | undefined;
    let swept = 0;
    const h = setup({
      sweep: (tick) => {
        sweep = tick;
        return () => {
          swept++;
        };
      },
    });
    for (const n of ["a", "b", "c"]) h.s.upsert(token(n, 0, HOUR));
    h.s.upsert(token("d", 0, 10 * HOUR));
    h.s.start();
    h.clock.jump(T0 + 2 * HOUR); // suspended: the timer has not fired
    sweep?.();
    expect(h.calls.map((c) => `${c.name}:${c.reason}`)).toEqual([
      "a:expired",
      "b:expired",
      "c:expired",
    ]);
    h.clock.jump(T0 + 9 * HOUR);
    await h.clock.runUntil(T0 + 9 * HOUR); // the timer fires late
    expect(h.calls.at(-1)).toMatchObject({ name: "d", reason: "due" });
    h.s.stop();
    expect(swept).toBe(1);
  });

  it("after stop, refreshes in flight end but nothing new starts", async () => {
    const h = setup({ concurrency: 1 });
    h.s.upsert({ name: "a", state: "ok" });
    h.s.upsert({ name: "b", state: "ok" });
    h.s.start();
    h.s.stop();
    await h.settle("a", { kind: "retry" });
    await h.clock.runUntil(T0 + HOUR);
    expect(h.calls.map((c) => c.name)).toEqual(["a"]);
    expect(h.view.live).toBe(0);
    h.s.start();
    expect(h.calls.map((c) => c.name)).toEqual(["a", "b"]);
  });

  it("is deterministic given random", () => {
    const dues = () => {
      let x = 1;
      const random = () => {
        x = (x * 16807) % 2147483647;
        return x / 2147483647;
      };
      const clock = createFakeClock(T0);
      const s = createRefreshScheduler({ refresh: async () => ({ kind: "ok" }), clock, random });
      for (let i = 0; i < 100; i++) s.upsert(token(`c${i}`, 0, HOUR));
      return Array.from({ length: 100 }, (_, i) => s.dueAt(`c${i}`));
    };
    const a = dues();
    expect(new Set(a).size).toBe(100);
    expect(dues()).toEqual(a);
  });
});
