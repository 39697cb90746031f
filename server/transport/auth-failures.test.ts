/**
 * The per-peer throttle and its bounded reports, on a fake clock: a burst of `limit`
 * failures, then refusals until the bucket refills; the first failure reported alone, then
 * one summary per peer per interval; peers beyond the named ones share one line.
 */
import { afterEach, beforeEach, describe, expect, test, vi } from "vitest";
import type { AuthFailureReport } from "./auth-failures.js";
import { createAuthFailures } from "./auth-failures.js";

let reports: AuthFailureReport[];
beforeEach(() => {
  vi.useFakeTimers();
  reports = [];
});
afterEach(() => {
  vi.useRealTimers();
});

const info = (n: number) => ({
  requestId: `r${n}`,
  method: "GetEnv",
  reason: "authorization: unknown or revoked token",
});

describe("throttle", () => {
  test("limit failures pass, then the peer waits windowMs/limit per failure; others never wait", () => {
    const f = createAuthFailures({ limit: 5, windowMs: 1000 }, (r) => reports.push(r));
    for (let i = 0; i < 5; i++) {
      expect(f.throttled("10.0.0.5")).toBe(0);
      f.failed("10.0.0.5", info(i));
    }
    expect(f.throttled("10.0.0.5")).toBe(200);
    expect(f.throttled("10.0.0.6")).toBe(0);
    vi.advanceTimersByTime(199);
    expect(f.throttled("10.0.0.5")).toBe(1);
    vi.advanceTimersByTime(1);
    expect(f.throttled("10.0.0.5")).toBe(0);
    f.close();
  });
});

describe("reports", () => {
  test("2,000 failures from one peer: the first alone, then one summary per interval", () => {
    const f = createAuthFailures({ limit: 5, windowMs: 1000 }, (r) => reports.push(r));
    for (let i = 0; i < 2000; i++) {
      if (f.throttled("10.0.0.5") > 0) f.refusedWhileThrottled("10.0.0.5");
      else f.failed("10.0.0.5", info(i));
      vi.advanceTimersByTime(1); // 2 s in all
    }
    f.close();
    expect(reports[0]).toEqual({ kind: "first", peer: "10.0.0.5", ...info(0) });
    const summaries = reports.slice(1);
    expect(summaries.length).toBeLessThanOrEqual(3);
    expect(summaries.every((r) => r.kind === "summary" && r.peer === "10.0.0.5")).toBe(true);
    const total = summaries.reduce((n, r) => n + (r.kind === "summary" ? r.count : 0), 0);
    expect(total).toBe(1999);
    // About 5 + 2 s × 5/s failures got through; the rest were refused by the throttle.
    const throttled = summaries.reduce((n, r) => n + (r.kind === "summary" ? r.throttled : 0), 0);
    expect(throttled).toBeGreaterThan(1980);
  });

  test("beyond maxNamedPeers, failures of other peers share one line per interval", () => {
    const f = createAuthFailures({ limit: 5, windowMs: 1000, maxNamedPeers: 3 }, (r) =>
      reports.push(r),
    );
    for (let p = 0; p < 50; p++) f.failed(`10.0.1.${p}`, info(p));
    vi.advanceTimersByTime(1000);
    expect(reports.filter((r) => r.kind === "first")).toHaveLength(3);
    expect(reports.filter((r) => r.kind === "others")).toEqual([
      { kind: "others", peers: 47, count: 47, throttled: 0, sinceMs: 1000 },
    ]);
    f.close();
  });

  test("a peer whose bucket refilled is forgotten, and reported alone again later", () => {
    const f = createAuthFailures({ limit: 5, windowMs: 1000 }, (r) => reports.push(r));
    f.failed("10.0.0.5", info(1));
    vi.advanceTimersByTime(2000);
    f.failed("10.0.0.5", info(2));
    expect(reports.map((r) => r.kind)).toEqual(["first", "first"]);
    f.close();
  });
});

describe("peerOf", () => {
  const f = createAuthFailures({ limit: 1, windowMs: 1000 }, () => {});
  afterEach(() => f.flush());
  test.each([
    ["127.0.0.1:5000", "127.0.0.1"],
    ["::ffff:10.1.2.3:443", "10.1.2.3"],
    ["::1:5000", "0:0:0:0::/64"],
    ["2001:db8:1:2:aaaa:bbbb:cccc:dddd:5000", "2001:db8:1:2::/64"],
    ["2001:db8:1:2::7:5000", "2001:db8:1:2::/64"],
    ["[2001:db8::1]:5000", "2001:db8:0:0::/64"],
    ["/run/secretsd.sock", "/run/secretsd.sock"],
  ])("%s → %s", (peer, key) => {
    expect(f.peerOf(peer)).toBe(key);
  });
});
