import { describe, expect, it } from "vitest";
import { isSecretsError } from "../../errors.js";
import { createFakeClock } from "../../oauth/scheduler-fake-clock.js";
import {
  type CronClock,
  type CronSchedulerOptions,
  createCronScheduler,
} from "./cron-scheduler.js";

const T0 = Date.parse("2026-01-01T00:00:30Z");
const S = 1000;
const MIN = 60 * S;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;
const iso = (t: number) => new Date(t).toISOString();

/** A scheduler on a fake clock, recording each fire (name, slot, instant) and each log line. */
function setup(o: Partial<CronSchedulerOptions> = {}, start = T0) {
  const clock = createFakeClock(start);
  const view = clock.view();
  const fires: { name: string; slot: string; at: string }[] = [];
  const logs: { level: "warn" | "error"; msg: string }[] = [];
  const s = createCronScheduler({
    clock: view,
    onFire(name, scheduledAt) {
      fires.push({ name, slot: iso(scheduledAt), at: iso(clock.now()) });
    },
    log: {
      warn: (msg) => logs.push({ level: "warn", msg }),
      error: (msg) => logs.push({ level: "error", msg }),
    },
    ...o,
  });
  return { clock, view, fires, logs, s };
}

describe("createCronScheduler", () => {
  it("fires an every-minute schedule at each minute boundary", async () => {
    const { clock, fires, s } = setup();
    s.set("a", "* * * * *");
    s.start();
    await clock.runUntil(T0 + 3 * MIN);
    expect(fires).toEqual(
      ["00:01", "00:02", "00:03"].map((m) => {
        const t = `2026-01-01T${m}:00.000Z`;
        return { name: "a", slot: t, at: t };
      }),
    );
  });

  it("fires `0 3 * * *` once per simulated day at 03:00 UTC", async () => {
    const { clock, fires, s } = setup();
    s.set("daily", "0 3 * * *");
    s.start();
    await clock.runUntil(T0 + 3 * DAY);
    expect(fires.map((f) => f.at)).toEqual([
      "2026-01-01T03:00:00.000Z",
      "2026-01-02T03:00:00.000Z",
      "2026-01-03T03:00:00.000Z",
    ]);
  });

  it("fires a 6-field `*/15 * * * * *` every 15 s", async () => {
    const { clock, fires, s } = setup();
    s.set("q", "*/15 * * * * *");
    s.start();
    await clock.runUntil(T0 + MIN);
    expect(fires.map((f) => f.at.slice(14, 19))).toEqual(["00:45", "01:00", "01:15", "01:30"]);
  });

  it("fires once after a long jump (host asleep) and then at the next slot after now", async () => {
    const { clock, fires, logs, s } = setup();
    s.set("a", "* * * * *");
    s.start();
    clock.jump(T0 + 10 * HOUR);
    await clock.runUntil(clock.now());
    expect(fires).toEqual([
      { name: "a", slot: "2026-01-01T00:01:00.000Z", at: "2026-01-01T10:00:30.000Z" },
    ]);
    expect(logs).toEqual([
      { level: "warn", msg: "cron: 'a' fired late; its missed slots run once" },
    ]);
    expect(iso(s.nextAt("a") ?? 0)).toBe("2026-01-01T10:01:00.000Z");
    await clock.runUntil(T0 + 10 * HOUR + MIN);
    expect(fires).toHaveLength(2);
  });

  it("never waits on one timer longer than a minute (monotonic timers stand still in a suspend)", () => {
    const delays: number[] = [];
    const clock = createFakeClock(T0);
    const spy: CronClock = {
      now: () => clock.now(),
      setTimeout(fn, ms) {
        delays.push(ms);
        return clock.setTimeout(fn, ms);
      },
      clearTimeout: (h) => clock.clearTimeout(h),
    };
    const s = createCronScheduler({ clock: spy, onFire() {} });
    s.set("yearly", "@yearly");
    s.start();
    expect(delays).toEqual([MIN]);
  });

  it("skips a slot while the same name's previous run is still going, and logs it", async () => {
    let finish: () => void = () => {};
    const { clock, fires, logs, s } = setup({
      onFire: (name, at) => {
        fires.push({ name, slot: iso(at), at: iso(clock.now()) });
        return new Promise<void>((resolve) => {
          finish = resolve;
        });
      },
    });
    s.set("slow", "* * * * *");
    s.start();
    await clock.runUntil(T0 + 3 * MIN);
    expect(fires.map((f) => f.slot.slice(11, 16))).toEqual(["00:01"]);
    expect(logs.map((l) => l.msg)).toEqual([
      "cron: 'slow' skipped a slot: its previous run is still going",
      "cron: 'slow' skipped a slot: its previous run is still going",
    ]);
    finish();
    await clock.runUntil(T0 + 4 * MIN);
    expect(fires.map((f) => f.slot.slice(11, 16))).toEqual(["00:01", "00:04"]);
  });

  it("logs a failed run and keeps the schedule", async () => {
    let n = 0;
    const { clock, logs, s } = setup({
      onFire: async () => {
        n++;
        throw new Error("boom");
      },
    });
    s.set("bad", "* * * * *");
    s.start();
    await clock.runUntil(T0 + 2 * MIN);
    expect(n).toBe(2);
    expect(logs.map((l) => `${l.level} ${l.msg}`)).toEqual([
      "error cron: 'bad' failed",
      "error cron: 'bad' failed",
    ]);
  });

  it("stops firing a removed schedule and drops its timer", async () => {
    const { clock, view, fires, s } = setup();
    s.set("a", "* * * * *");
    s.start();
    await clock.runUntil(T0 + MIN);
    s.remove("a");
    s.remove("unknown");
    await clock.runUntil(T0 + 5 * MIN);
    expect(fires).toHaveLength(1);
    expect(s.nextAt("a")).toBeUndefined();
    expect(s.size).toBe(0);
    expect(view.live).toBe(0);
  });

  it("re-arms when an expression is replaced, and keeps the old one when the new is bad", async () => {
    const { clock, fires, s } = setup();
    s.set("a", "0 3 * * *");
    s.start();
    expect(iso(s.nextAt("a") ?? 0)).toBe("2026-01-01T03:00:00.000Z");
    s.set("a", "*/15 * * * * *");
    expect(iso(s.nextAt("a") ?? 0)).toBe("2026-01-01T00:00:45.000Z");
    await clock.runUntil(T0 + 15 * S);
    expect(fires.map((f) => f.at)).toEqual(["2026-01-01T00:00:45.000Z"]);

    let err: unknown;
    try {
      s.set("a", "61 * * * *");
    } catch (e) {
      err = e;
    }
    expect(isSecretsError(err) && err.code).toBe("invalid_argument");
    expect(iso(s.nextAt("a") ?? 0)).toBe("2026-01-01T00:01:00.000Z");
  });

  it("serves 1,000 schedules with one timer", async () => {
    const { clock, view, fires, s } = setup();
    for (let i = 0; i < 1000; i++) s.set(`s${i}`, `${i % 60} * * * * *`);
    s.start();
    await clock.runUntil(T0 + MIN);
    expect(fires).toHaveLength(1000);
    expect(new Set(fires.map((f) => f.name)).size).toBe(1000);
    expect(fires.every((f) => f.at === f.slot)).toBe(true);
    expect(view.maxLive).toBe(1);
    expect(view.live).toBe(1);
  });

  it("does nothing while stopped and resumes from now (no catch-up) on start", async () => {
    const { clock, view, fires, s } = setup();
    s.set("a", "* * * * *");
    await clock.runUntil(T0 + 2 * MIN);
    expect(fires).toHaveLength(0);
    s.start();
    await clock.runUntil(T0 + 3 * MIN);
    expect(fires.map((f) => f.slot.slice(11, 16))).toEqual(["00:03"]);
    s.stop();
    expect(view.live).toBe(0);
    await clock.runUntil(T0 + 10 * MIN);
    expect(fires).toHaveLength(1);
  });

  it("reads an expression in a time zone", () => {
    const { s } = setup();
    s.set("berlin", "0 3 * * *", "Europe/Berlin");
    expect(iso(s.nextAt("berlin") ?? 0)).toBe("2026-01-01T02:00:00.000Z");
  });
});
