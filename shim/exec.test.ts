import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { silentLogger } from "../common/logger.js";
import type { UnitSpec } from "./config.js";
import { createExec, diffNames, type RunCommand, selectUnits } from "./exec.js";

const units: UnitSpec[] = [
  { name: "app-a.service", keys: ["OPENAI_API_KEY"], action: "restart" },
  { name: "app-b.service", keys: ["OTHER", "THIRD"], action: "restart" },
  { name: "web.service", keys: ["OTHER"], action: "reload" },
  { name: "all.service", keys: ["*"], action: "restart" },
];

describe("diffNames", () => {
  it("added, removed and changed names; equal entries are not", () => {
    const prev = new Map([
      ["A", "s@1"],
      ["B", "s@1"],
      ["C", "c@3"],
    ]);
    const next = new Map([
      ["A", "s@1"],
      ["C", "c@4"],
      ["D", "d@1"],
    ]);
    expect([...diffNames(prev, next)].sort()).toEqual(["B", "C", "D"]);
    expect(diffNames(next, next).size).toBe(0);
  });
});

describe("selectUnits", () => {
  it("units whose keys intersect the change, by action; * takes any change", () => {
    expect(selectUnits(units, new Set(["OPENAI_API_KEY"]))).toEqual({
      restart: ["all.service", "app-a.service"],
      reload: [],
    });
    expect(selectUnits(units, new Set(["OTHER"]))).toEqual({
      restart: ["all.service", "app-b.service"],
      reload: ["web.service"],
    });
    expect(selectUnits(units, new Set(["UNRELATED"]))).toEqual({
      restart: ["all.service"],
      reload: [],
    });
  });

  it("nothing changed → no unit, not even *", () => {
    expect(selectUnits(units, new Set())).toEqual({ restart: [], reload: [] });
  });

  it("include adds named units (new to the config) with their own action", () => {
    expect(selectUnits(units, new Set(), ["web.service", "unknown.service"])).toEqual({
      restart: [],
      reload: ["web.service"],
    });
  });
});

describe("createExec", () => {
  let calls: string[][];
  let run: RunCommand;
  beforeEach(() => {
    vi.useFakeTimers();
    calls = [];
    run = async (bin, args) => {
      calls.push([bin, ...args]);
      return { code: 0, stderr: "" };
    };
  });
  afterEach(() => {
    vi.useRealTimers();
  });
  const make = (over: Partial<Parameters<typeof createExec>[0]> = {}) =>
    createExec({
      units: units.slice(0, 3),
      debounceMs: 500,
      systemctl: "/bin/fake-systemctl",
      log: silentLogger,
      run,
      ...over,
    });

  it("collects changes for debounceMs, then ONE call per action for all of them", async () => {
    const exec = make();
    const p1 = exec.act(new Set(["OPENAI_API_KEY"]));
    await vi.advanceTimersByTimeAsync(300);
    expect(calls).toEqual([]);
    const p2 = exec.act(new Set(["OTHER"]));
    expect(exec.busy).toBe(true);
    await vi.advanceTimersByTimeAsync(199);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    const [r1, r2] = await Promise.all([p1, p2]);
    expect(calls).toEqual([
      ["/bin/fake-systemctl", "try-restart", "app-a.service", "app-b.service"],
      ["/bin/fake-systemctl", "try-reload-or-restart", "web.service"],
    ]);
    expect(r1).toEqual({
      units: ["app-a.service", "app-b.service", "web.service"],
      error: undefined,
      cancelled: false,
    });
    expect(r2).toBe(r1);
    expect(exec.busy).toBe(false);
  });

  it("a change no unit reads resolves at once and calls nothing", async () => {
    const exec = make();
    const r = await exec.act(new Set(["UNRELATED"]));
    expect(r).toEqual({ units: [], error: undefined, cancelled: false });
    expect(await exec.act(new Set())).toEqual(r);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toEqual([]);
  });

  it("while a round is open, an unrelated change joins it (callers finish in order)", async () => {
    const exec = make();
    const p1 = exec.act(new Set(["THIRD"]));
    let done2 = false;
    const p2 = exec.act(new Set(["UNRELATED"])).then((r) => {
      done2 = true;
      return r;
    });
    await vi.advanceTimersByTimeAsync(100);
    expect(done2).toBe(false);
    await vi.advanceTimersByTimeAsync(400);
    expect((await p2).units).toEqual(["app-b.service"]);
    expect(await p1).toBe(await p2);
    expect(calls).toEqual([["/bin/fake-systemctl", "try-restart", "app-b.service"]]);
  });

  it("the next change after a round opens a new round", async () => {
    const exec = make();
    const p1 = exec.act(new Set(["OPENAI_API_KEY"]));
    await vi.advanceTimersByTimeAsync(500);
    await p1;
    const p2 = exec.act(new Set(["OPENAI_API_KEY"]));
    await vi.advanceTimersByTimeAsync(500);
    await p2;
    expect(calls).toHaveLength(2);
  });

  it("a failing systemctl is reported (exit code and first stderr line), never thrown", async () => {
    const exec = make({
      run: async (bin, args) => {
        calls.push([bin, ...args]);
        return { code: 1, stderr: "Job for app-a.service failed.\nSee journalctl.\n" };
      },
    });
    const p = exec.act(new Set(["OPENAI_API_KEY"]));
    await vi.advanceTimersByTimeAsync(500);
    expect(await p).toEqual({
      units: ["app-a.service"],
      error: "systemctl try-restart exited 1: Job for app-a.service failed.",
      cancelled: false,
    });
    const thrower = make({ run: () => Promise.reject(new Error("spawn ENOENT")) });
    const q = thrower.act(new Set(["OPENAI_API_KEY"]));
    await vi.advanceTimersByTimeAsync(500);
    expect((await q).error).toMatch(/exited -1: spawn ENOENT/);
  });

  it("close() drops a waiting round as cancelled without calling systemctl", async () => {
    const exec = make();
    const p = exec.act(new Set(["OPENAI_API_KEY"]));
    exec.close();
    expect(await p).toEqual({ units: [], error: undefined, cancelled: true });
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toEqual([]);
  });

  it("debounceMs 0 still batches changes made in the same tick", async () => {
    const exec = make({ debounceMs: 0 });
    const p = Promise.all([exec.act(new Set(["OPENAI_API_KEY"])), exec.act(new Set(["OTHER"]))]);
    await vi.advanceTimersByTimeAsync(0);
    await p;
    expect(calls.map((c) => c[1])).toEqual(["try-restart", "try-reload-or-restart"]);
  });
});
