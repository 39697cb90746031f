/**
 * Every ack carries the shim's unit map (for `secretsctl rotate --plan`), within the bounds
 * secretsd accepts: `*` is sent as no keys, a unit with too many keys as every key, and too
 * many units not at all (the map then stays unknown rather than wrong).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { silentLogger } from "../common/logger.js";
import { createApplier } from "./apply.js";
import type { UnitSpec } from "./config.js";
import { createExec } from "./exec.js";
import type { AckRequest, EnvSnapshot } from "./source.js";
import { EMPTY_STATE } from "./state.js";

const root = mkdtempSync(join(tmpdir(), "shim-unit-map-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

let n = 0;

/** Applies one snapshot with `unitMap` configured; resolves with the acks sent. */
async function ackedWith(unitMap: readonly UnitSpec[] | undefined, failWrite = false) {
  const dir = join(root, String(++n));
  const acks: AckRequest[] = [];
  const exec = createExec({
    units: unitMap ?? [],
    debounceMs: 0,
    systemctl: "systemctl",
    log: silentLogger,
    run: async () => ({ code: 0, stderr: "" }),
  });
  const a = createApplier({
    files: {
      // A directory where a file should be makes the write fail.
      environmentDFile: failWrite ? root : join(dir, "env.d"),
      unitEnvFile: join(dir, "env"),
      lastKnownGoodFile: join(dir, "lkg"),
      stateFile: join(dir, "state.json"),
    },
    units: (unitMap ?? []).map((u) => u.name),
    ...(unitMap ? { unitMap } : {}),
    exec,
    log: silentLogger,
    ack: async (r) => {
      acks.push(r);
      return true;
    },
    clientVersion: "t",
    initial: EMPTY_STATE,
  });
  const snap = {
    vm: "",
    revision: 3n,
    digest: "d",
    vars: [{ name: "API_KEY", value: "v", secret: "api", version: 1, scope: "global" }],
  } as unknown as EnvSnapshot;
  await a.apply(snap).catch(() => {});
  await a.idle();
  exec.close();
  return acks;
}

describe("the unit map in acks", () => {
  it("is sent with every ack, applied or failed; `*` as no keys", async () => {
    const units: UnitSpec[] = [
      { name: "app.service", keys: ["API_KEY", "DB_URL"], action: "restart" },
      { name: "all.service", keys: ["*"], action: "reload" },
    ];
    const expected = {
      unitsReported: true,
      units: [
        { name: "app.service", keys: ["API_KEY", "DB_URL"], action: "restart" },
        { name: "all.service", keys: [], action: "reload" },
      ],
    };
    const [ok] = await ackedWith(units);
    expect(ok).toMatchObject({ ...expected, error: "" });
    const [failed] = await ackedWith(units, true);
    expect(failed).toMatchObject(expected);
    expect(failed?.error).toMatch(/cannot write the env files/);
  });

  it("no units configured: an empty map, still reported", async () => {
    const [ack] = await ackedWith([]);
    expect(ack).toMatchObject({ unitsReported: true, units: [] });
  });

  it("beyond the bounds: too many keys reads as every key; too many units are not sent", async () => {
    const keys = Array.from({ length: 257 }, (_, i) => `K${i}`);
    const [wide] = await ackedWith([{ name: "w.service", keys, action: "restart" }]);
    expect(wide?.units).toEqual([{ name: "w.service", keys: [], action: "restart" }]);
    const many = Array.from({ length: 257 }, (_, i) => ({
      name: `u${i}.service`,
      keys: ["A"],
      action: "restart" as const,
    }));
    const [ack] = await ackedWith(many);
    expect(ack?.unitsReported).toBeUndefined();
    expect(ack?.units).toBeUndefined();
  });

  it("without a unit map option: nothing is reported (as before)", async () => {
    const [ack] = await ackedWith(undefined);
    expect(ack?.unitsReported).toBeUndefined();
  });
});
