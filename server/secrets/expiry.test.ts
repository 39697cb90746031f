/**
 * Expiry of static values: the pure state function, what create/update/rotate accept, and the
 * watcher's once-per-change reports, driven by an injected clock over the memory store.
 */
import { describe, expect, test } from "vitest";
import type { AuditEntry } from "../audit/audit.js";
import { createAuditBroker } from "../audit/audit.js";
import { createLogger } from "../logger.js";
import { createMemoryDriver } from "../store/drivers/memory.js";
import { openStore } from "../store/store.js";
import { emptyStore, type SecretRecord } from "../store/types.js";
import {
  checkExpiresAt,
  createExpiryWatcher,
  describeExpiry,
  expiryStates,
  nextExpiryChange,
} from "./expiry.js";
import { createSecretUseCases } from "./secrets.js";
import { testDeps } from "./test-deps.js";

const local = { caller: { kind: "local" } as const, requestId: "t" };
const DAY = 86_400_000;
const T0 = Date.parse("2030-01-10T00:00:00Z");

function rec(name: string, valueExpiresAt?: string): SecretRecord {
  return {
    name,
    env: name.toUpperCase(),
    scope: "global",
    kind: "static",
    provider: "",
    description: "",
    labels: {},
    ...(valueExpiresAt ? { valueExpiresAt } : {}),
    currentVersion: 1,
    versions: [],
    createdAt: "2030-01-01T00:00:00Z",
    updatedAt: "2030-01-01T00:00:00Z",
    modRevision: 1,
  };
}

function data(...secrets: SecretRecord[]) {
  return { ...emptyStore(), secrets: Object.fromEntries(secrets.map((s) => [s.name, s])) };
}

describe("expiryStates", () => {
  test("valid, expiring within the window, expired at the instant; none without an expiry", () => {
    const d = data(
      rec("never"),
      rec("later", "2030-02-01T00:00:00.000Z"),
      rec("soon", "2030-01-13T00:00:00.000Z"),
      rec("now", "2030-01-10T00:00:00.000Z"),
      rec("past", "2030-01-01T00:00:00.000Z"),
      rec("garbled", "not a time"),
    );
    const states = expiryStates(d, T0, 7 * DAY);
    expect(states.map((s) => [s.secret, s.state])).toEqual([
      ["past", "expired"],
      ["now", "expired"],
      ["soon", "expiring"],
      ["later", "valid"],
    ]);
    // The window's edge is expiring.
    expect(expiryStates(d, Date.parse("2030-01-25T00:00:00Z"), 7 * DAY).at(-1)?.state).toBe(
      "expiring",
    );
  });

  test("the next change: a window opening or an expiry, whichever comes first", () => {
    const d = data(rec("later", "2030-02-01T00:00:00.000Z"), rec("soon", "2030-01-13T00:00:00Z"));
    const states = expiryStates(d, T0, 7 * DAY);
    expect(nextExpiryChange(states, T0, 7 * DAY)).toBe(Date.parse("2030-01-13T00:00:00Z"));
    const late = expiryStates(d, Date.parse("2030-01-20T00:00:00Z"), 7 * DAY);
    expect(nextExpiryChange(late, Date.parse("2030-01-20T00:00:00Z"), 7 * DAY)).toBe(
      Date.parse("2030-01-25T00:00:00Z"),
    );
    expect(nextExpiryChange([], T0, DAY)).toBeUndefined();
  });

  test("described plainly, with the exact time", () => {
    const [past, soon] = expiryStates(
      data(rec("past", "2030-01-09T22:00:00Z"), rec("soon", "2030-01-13T05:00:00Z")),
      T0,
      7 * DAY,
    );
    expect(past && describeExpiry(past, T0)).toBe("expired 2h ago (2030-01-09T22:00:00.000Z)");
    expect(soon && describeExpiry(soon, T0)).toBe("expires in 3d (2030-01-13T05:00:00.000Z)");
  });
});

describe("checkExpiresAt", () => {
  test("a real time; past only where allowed; the field is named", () => {
    expect(checkExpiresAt("expires_at", new Date(T0 + DAY), T0, false)).toBe(
      "2030-01-11T00:00:00.000Z",
    );
    expect(() => checkExpiresAt("expires_at", new Date(T0 - 1), T0, false)).toThrow(
      /^expires_at: .* is in the past/,
    );
    expect(checkExpiresAt("expires_at", new Date(T0 - DAY), T0, true)).toBe(
      "2030-01-09T00:00:00.000Z",
    );
    for (const bad of [new Date(Number.NaN), new Date(-1), new Date(253_402_300_800_000)]) {
      expect(() => checkExpiresAt("expires_at", bad, T0, true)).toThrow(
        /^expires_at: must be a time between 1970 and 9999/,
      );
    }
  });
});

describe("create, update, rotate", () => {
  test("set on create, changed and removed by update, replaced by rotate, kept by rollback", async () => {
    const deps = await testDeps(await openStore(createMemoryDriver()));
    const secrets = createSecretUseCases(deps);
    const in30d = new Date(Date.now() + 30 * DAY);
    const created = await secrets.create(local, { name: "k", value: "v-123456", expiresAt: in30d });
    expect(created.record.valueExpiresAt).toBe(in30d.toISOString());
    await expect(
      secrets.create(local, { name: "k2", value: "v-123456", expiresAt: new Date(1000) }),
    ).rejects.toMatchObject({ code: "invalid_argument", field: "expires_at" });

    const past = new Date(Date.now() - DAY);
    const updated = await secrets.update(local, { name: "k", expiresAt: past });
    expect(updated.record.valueExpiresAt).toBe(past.toISOString());
    const kept = await secrets.update(local, { name: "k", description: "d" });
    expect(kept.record.valueExpiresAt).toBe(past.toISOString());
    const cleared = await secrets.update(local, { name: "k", expiresAt: null });
    expect(cleared.record.valueExpiresAt).toBeUndefined();

    await secrets.update(local, { name: "k", expiresAt: in30d });
    const rotated = await secrets.rotate(local, "k", "v-abcdefgh");
    expect(rotated.record.valueExpiresAt).toBeUndefined();
    const in90d = new Date(Date.now() + 90 * DAY);
    const again = await secrets.rotate(local, "k", "v-ijklmnop", in90d);
    expect(again.record.valueExpiresAt).toBe(in90d.toISOString());
    await expect(secrets.rotate(local, "k", "v-qrstuvwx", past)).rejects.toMatchObject({
      field: "expires_at",
    });
    const back = await secrets.rollback(local, "k", 1);
    expect(back.record.valueExpiresAt).toBe(in90d.toISOString());
  });
});

describe("the watcher", () => {
  test("one log line and one audit entry per secret per state change, at the due instant", async () => {
    const entries: AuditEntry[] = [];
    const lines: string[] = [];
    const store = await openStore(createMemoryDriver());
    const base = await testDeps(store);
    const log = createLogger({ level: "debug", write: (l) => lines.push(l) });
    const audit = createAuditBroker(
      [{ log: async (e) => void entries.push(e), close: async () => {} }],
      log,
    );
    const deps = { ...base, audit, log };
    const secrets = createSecretUseCases(deps);
    let now = Date.now();
    const watcher = createExpiryWatcher(deps, { warningMs: 200, now: () => now, maxWaitMs: 50 });
    watcher.start();
    await secrets.create(local, { name: "a", value: "v-123456", expiresAt: new Date(now + 100) });
    await secrets.create(local, { name: "b", value: "v-123456", expiresAt: new Date(now + DAY) });
    const reports = () => entries.filter((e) => e.action.startsWith("secret.exp"));
    await expect
      .poll(() => reports().map((e) => [e.action, e.secret]))
      .toEqual([["secret.expiring", "a"]]);
    // Time passes: nothing new until `a` expires; then exactly one more.
    now += 50;
    await new Promise((r) => setTimeout(r, 120));
    expect(reports()).toHaveLength(1);
    now += 60;
    await expect
      .poll(() => reports().map((e) => e.action))
      .toEqual(["secret.expiring", "secret.expired"]);
    await new Promise((r) => setTimeout(r, 120));
    expect(reports()).toHaveLength(2);
    expect(reports()[1]).toMatchObject({ actor: "system:expiry", result: "ok", secret: "a" });
    expect(reports()[1]?.detail).toMatch(/^expired \d+s ago \(/);
    expect(lines.filter((l) => l.includes('"secret expiring"'))).toHaveLength(1);
    expect(lines.filter((l) => l.includes('"secret expired"'))).toHaveLength(1);
    // A new expiry is a new state: reported again.
    await secrets.update(local, { name: "a", expiresAt: new Date(now - 5) });
    await expect.poll(() => reports()).toHaveLength(3);
    await watcher.close();
  });
});
