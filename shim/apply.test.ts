import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { silentLogger } from "../common/logger.js";
import { createApplier, restoreLastKnownGood } from "./apply.js";
import type { UnitSpec } from "./config.js";
import { createExec, type Exec } from "./exec.js";
import type { AckRequest, EnvSnapshot } from "./source.js";
import { EMPTY_STATE, loadState, type ShimState } from "./state.js";

const root = mkdtempSync(join(tmpdir(), "shim-apply-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const units: UnitSpec[] = [
  { name: "app-a.service", keys: ["OPENAI_API_KEY"], action: "restart" },
  { name: "app-b.service", keys: ["OTHER"], action: "reload" },
];

let n = 0;
let dir: string;
let files: {
  environmentDFile: string;
  unitEnvFile: string;
  lastKnownGoodFile: string;
  stateFile: string;
};
let calls: string[][];
let acks: AckRequest[];
const execs: Exec[] = [];
afterEach(() => {
  for (const e of execs.splice(0)) e.close();
});
beforeEach(() => {
  dir = join(root, String(++n));
  files = {
    environmentDFile: join(dir, "etc/environment.d/vm-auth.conf"),
    unitEnvFile: join(dir, "run/vm-auth/env"),
    lastKnownGoodFile: join(dir, "var/lib/vm-auth/last-known-good.env"),
    stateFile: join(dir, "var/lib/vm-auth/shim-state.json"),
  };
  calls = [];
  acks = [];
});

function make(initial: ShimState = EMPTY_STATE, debounceMs = 30, configured = units) {
  const exec = createExec({
    units: configured,
    debounceMs,
    systemctl: "systemctl",
    log: silentLogger,
    run: async (_bin, args) => {
      calls.push(args);
      return { code: 0, stderr: "" };
    },
  });
  execs.push(exec);
  return createApplier({
    files,
    units: configured.map((u) => u.name),
    exec,
    log: silentLogger,
    ack: async (r) => {
      acks.push(r);
      return true;
    },
    clientVersion: "test",
    initial,
  });
}

let rev = 0n;
function snap(vars: Record<string, [string, number, string?]>): EnvSnapshot {
  rev += 1n;
  return {
    vm: "",
    revision: rev,
    digest: `d${rev}`,
    vars: Object.entries(vars)
      .sort()
      .map(([name, [value, version, secret]]) => ({
        name,
        value,
        version,
        secret: secret ?? name.toLowerCase(),
        scope: "global",
      })),
  } as unknown as EnvSnapshot;
}

const read = (f: string) => readFileSync(f, "utf8");

describe("createApplier", () => {
  it("first snapshot: writes both dialects 0600 and the copy, restarts by keys, persists, acks", async () => {
    const a = make();
    const s = snap({ OPENAI_API_KEY: ["sk-1", 1], OTHER: ["a$b", 1] });
    await a.apply(s);
    await a.idle();
    expect(read(files.unitEnvFile)).toContain('OPENAI_API_KEY="sk-1"\nOTHER="a\\$b"\n');
    expect(read(files.environmentDFile)).toContain('OTHER="a$$b"');
    expect(read(files.lastKnownGoodFile)).toBe(read(files.unitEnvFile));
    for (const f of Object.values(files)) expect(statSync(f).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "run/vm-auth")).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, "etc/environment.d")).mode & 0o777).toBe(0o755);
    expect(calls).toEqual([
      ["try-restart", "app-a.service"],
      ["try-reload-or-restart", "app-b.service"],
    ]);
    const state = await loadState(files.stateFile, silentLogger);
    expect(state).toMatchObject({
      revision: Number(s.revision),
      digest: s.digest,
      vars: {
        OPENAI_API_KEY: { secret: "openai_api_key", version: 1 },
        OTHER: { secret: "other", version: 1 },
      },
    });
    expect(read(files.stateFile)).not.toContain("sk-1");
    expect(a.cursor()).toEqual({ revision: s.revision, digest: s.digest });
    // A fresh start with every file in place sends the digest; with one missing it does not.
    const b = make(state);
    expect(b.cursor().digest).toBe("");
    expect(await b.verify()).toBe(true);
    expect(b.cursor()).toEqual({ revision: s.revision, digest: s.digest });
    rmSync(files.environmentDFile);
    expect(await b.verify()).toBe(false);
    expect(b.cursor()).toEqual({ revision: s.revision, digest: "" });
    expect(acks).toEqual([
      {
        revision: s.revision,
        restartedUnits: ["app-a.service", "app-b.service"],
        omitted: [],
        clientVersion: "test",
        error: "",
      },
    ]);
  });

  it("a rotation restarts only the unit reading that key; an equal snapshot writes nothing", async () => {
    const a = make();
    await a.apply(snap({ OPENAI_API_KEY: ["sk-1", 1], OTHER: ["o", 1] }));
    await a.idle();
    calls = [];
    await a.apply(snap({ OPENAI_API_KEY: ["sk-2", 2], OTHER: ["o", 1] }));
    await a.idle();
    expect(calls).toEqual([["try-restart", "app-a.service"]]);
    const ino = statSync(files.unitEnvFile).ino;
    calls = [];
    const same = snap({ OPENAI_API_KEY: ["sk-2", 2], OTHER: ["o", 1] });
    await a.apply(same);
    await a.idle();
    expect(calls).toEqual([]);
    expect(statSync(files.unitEnvFile).ino).toBe(ino);
    expect(acks.at(-1)).toMatchObject({ revision: same.revision, restartedUnits: [] });
  });

  it("snapshots inside the debounce window: one restart round, the newest persisted and acked", async () => {
    const a = make(EMPTY_STATE, 100);
    await a.apply(snap({ OPENAI_API_KEY: ["sk-1", 1], OTHER: ["o", 1] }));
    await a.idle();
    calls = [];
    acks = [];
    await a.apply(snap({ OPENAI_API_KEY: ["sk-2", 2], OTHER: ["o", 1] }));
    const last = snap({ OPENAI_API_KEY: ["sk-2", 2], OTHER: ["o2", 2] });
    await a.apply(last);
    expect(read(files.unitEnvFile)).toContain('OTHER="o2"'); // files written at once
    await a.idle();
    expect(calls).toEqual([
      ["try-restart", "app-a.service"],
      ["try-reload-or-restart", "app-b.service"],
    ]);
    expect(acks).toEqual([
      expect.objectContaining({
        revision: last.revision,
        restartedUnits: ["app-a.service", "app-b.service"],
      }),
    ]);
    expect((await loadState(files.stateFile, silentLogger)).revision).toBe(Number(last.revision));
  });

  it("a value change under the same version (secret deleted and re-created) still restarts", async () => {
    const a = make();
    await a.apply(snap({ OPENAI_API_KEY: ["sk-1", 1] }));
    await a.idle();
    calls = [];
    await a.apply(snap({ OPENAI_API_KEY: ["sk-recreated", 1] }));
    await a.idle();
    expect(calls).toEqual([["try-restart", "app-a.service"]]);
  });

  it("after a crash between writing the files and restarting, the next start restarts", async () => {
    const a = make();
    const s1 = snap({ OPENAI_API_KEY: ["sk-1", 1], OTHER: ["o", 1] });
    await a.apply(s1);
    await a.idle();
    const persisted = await loadState(files.stateFile, silentLogger);
    // The crashed run wrote the files of the next revision but persisted nothing.
    const crashed = make(persisted, 10_000);
    const s2 = snap({ OPENAI_API_KEY: ["sk-2", 2], OTHER: ["o", 1] });
    await crashed.apply(s2);
    expect(read(files.unitEnvFile)).toContain("sk-2");
    calls = [];
    const b = make(await loadState(files.stateFile, silentLogger));
    expect(b.cursor().revision).toBe(s1.revision);
    await b.apply(s2); // the server re-sends it: the digest on file is s1's
    await b.idle();
    expect(calls).toEqual([["try-restart", "app-a.service"]]);
  });

  it("a unit file gone missing (reboot without a copy) counts as every var changed", async () => {
    const a = make();
    const s = snap({ OPENAI_API_KEY: ["sk-1", 1], OTHER: ["o", 1] });
    await a.apply(s);
    await a.idle();
    rmSync(files.unitEnvFile);
    rmSync(files.lastKnownGoodFile);
    calls = [];
    const b = make(await loadState(files.stateFile, silentLogger));
    await b.apply(s);
    await b.idle();
    expect(calls.map((c) => c[1])).toEqual(["app-a.service", "app-b.service"]);
  });

  it("a unit new to the config gets the env: digest withheld at start, restarted on apply", async () => {
    const only = units.slice(0, 1);
    const a = make(EMPTY_STATE, 30, only);
    const s = snap({ OPENAI_API_KEY: ["sk-1", 1], OTHER: ["o", 1] });
    await a.apply(s);
    await a.idle();
    expect(calls).toEqual([["try-restart", "app-a.service"]]);
    const state = await loadState(files.stateFile, silentLogger);
    expect(state.units).toEqual(["app-a.service"]);
    // Same state, same files, one more unit configured (a new install).
    calls = [];
    const b = make(state, 30, units);
    expect(await b.verify()).toBe(false);
    expect(b.cursor().digest).toBe("");
    await b.apply(s); // the server answers the empty digest with a snapshot: nothing changed
    await b.idle();
    expect(calls).toEqual([["try-reload-or-restart", "app-b.service"]]);
    expect((await loadState(files.stateFile, silentLogger)).units).toEqual([
      "app-a.service",
      "app-b.service",
    ]);
    expect(b.cursor().digest).toBe(s.digest);
  });

  it("omitted vars are left out by name and reported in the ack", async () => {
    const a = make();
    await a.apply(snap({ OPENAI_API_KEY: ["ok", 1], NL: ["a\nb", 1], BAD: ["a\uFFFEb", 1] }));
    await a.idle();
    expect(acks.at(-1)?.omitted).toEqual(["BAD", "NL"]);
    expect(read(files.unitEnvFile)).toContain('NL="a\nb"');
    expect(read(files.environmentDFile)).not.toContain("NL=");
  });

  it("a write failure keeps the old files, acks the old revision with the error, and rejects", async () => {
    const a = make();
    const s1 = snap({ OPENAI_API_KEY: ["sk-1", 1] });
    await a.apply(s1);
    await a.idle();
    // Make the environment.d path a directory that cannot be replaced by a file.
    rmSync(files.environmentDFile);
    mkdirSync(join(files.environmentDFile, "x"), { recursive: true });
    calls = [];
    await expect(a.apply(snap({ OPENAI_API_KEY: ["sk-2", 2] }))).rejects.toThrow();
    await a.idle();
    expect(calls).toEqual([]);
    expect(acks.at(-1)).toMatchObject({ revision: s1.revision, restartedUnits: [] });
    expect(acks.at(-1)?.error).toMatch(/cannot write the env files/);
    expect(a.cursor().revision).toBe(s1.revision);
  });
});

describe("restoreLastKnownGood", () => {
  it("restores a missing unit file from the copy, never replaces an existing one", async () => {
    const a = make();
    await a.apply(snap({ OPENAI_API_KEY: ["sk-1", 1] }));
    await a.idle();
    const text = read(files.unitEnvFile);
    rmSync(join(dir, "run"), { recursive: true });
    expect(await restoreLastKnownGood(files, silentLogger)).toBe(true);
    expect(read(files.unitEnvFile)).toBe(text);
    expect(statSync(files.unitEnvFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, "run/vm-auth")).mode & 0o777).toBe(0o700);
    writeFileSync(files.unitEnvFile, 'X="other"\n');
    expect(await restoreLastKnownGood(files, silentLogger)).toBe(false);
    expect(read(files.unitEnvFile)).toBe('X="other"\n');
  });
});
