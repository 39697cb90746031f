import { describe, expect, it } from "vitest";
import { backoffCap, backoffDelay, sleep } from "./backoff.js";

const cfg = { initialMs: 500, maxMs: 30_000 };

describe("backoff", () => {
  it("doubles from initial and caps at max", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7, 100].map((a) => backoffCap(a, cfg))).toEqual([
      500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000,
    ]);
  });

  it("full jitter: uniformly in [0, cap)", () => {
    expect(backoffDelay(3, cfg, () => 0)).toBe(0);
    expect(backoffDelay(3, cfg, () => 0.5)).toBe(2000);
    expect(backoffDelay(3, cfg, () => 0.999_999)).toBe(3999);
    expect(backoffDelay(50, cfg, () => 0.999_999)).toBe(29_999);
    for (let i = 0; i < 1000; i++) {
      const d = backoffDelay(i % 10, cfg);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d).toBeLessThan(backoffCap(i % 10, cfg));
    }
  });

  it("never overflows or goes negative", () => {
    expect(backoffCap(10_000, cfg)).toBe(30_000);
    expect(backoffCap(-3, cfg)).toBe(500);
    expect(backoffCap(2000, { initialMs: 1, maxMs: Number.MAX_SAFE_INTEGER })).toBe(2 ** 52);
  });

  it("sleep ends early on abort and never rejects", async () => {
    const ac = new AbortController();
    const t0 = Date.now();
    const p = sleep(10_000, ac.signal);
    setTimeout(() => ac.abort(), 20);
    await p;
    expect(Date.now() - t0).toBeLessThan(1000);
    await sleep(10_000, ac.signal); // already aborted: at once
  });
});
