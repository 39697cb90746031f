/**
 * secretsctl end to end: the built CLI against a real secretsd (in-process, temp data dir),
 * reached through $VM_AUTH_HOME, i.e. the CLI's default socket. Secrets, export in every
 * format, import, status, rekey, audit, and the terminal paths (hidden prompt, trailing
 * newline) through a real pty.
 */
import { spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { dotenvToMap, parseDotenv } from "../client/dotenv.js";
import type { CliOptions, CliResult } from "./helpers/cli.js";
import {
  assertBuilt,
  cliFor,
  expectNoValueInStderr,
  failed,
  ok,
  runCli,
  SECRETSCTL,
  use,
  value,
  valuesUsed,
} from "./helpers/cli.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon } from "./helpers/daemon.js";

let d: TestDaemon;
let cli: (args: readonly string[], opts?: CliOptions) => Promise<CliResult>;
/** Outside the suite root on purpose: the leak check would flag the .env fixtures there. */
let work: string;

beforeAll(async () => {
  assertBuilt();
  d = await startDaemon();
  cli = cliFor(d);
  work = await mkdtemp(join(tmpdir(), "secretsctl-cli-"));
});
afterAll(async () => {
  expectNoValueInStderr();
  await d?.dispose();
  if (work) await rm(work, { recursive: true, force: true });
});

interface SecretJson {
  name: string;
  env: string;
  scope: string;
  provider: string;
  description: string;
  labels: Record<string, string>;
  currentVersion: number;
  versionCount: number;
  [k: string]: unknown;
}

const listJson = async (...args: string[]) =>
  (JSON.parse(ok(await cli(["list", "--json", ...args]))) as { secrets: SecretJson[] }).secrets;
const getValue = async (name: string, ...args: string[]) => ok(await cli(["get", name, ...args]));

describe("secrets", () => {
  test("add from the argument; get prints the value exactly, without a newline when piped", async () => {
    const v = value();
    expect(ok(await cli(["add", "openai", v]))).toBe(
      "created openai: OPENAI_API_KEY at global, version 1\n",
    );
    expect(await getValue("openai")).toBe(v);
  });

  test("add from stdin strips exactly one trailing newline", async () => {
    const v = value();
    ok(await cli(["add", "from-stdin"], { stdin: `${v}\n` }));
    expect(await getValue("from-stdin")).toBe(v);
    // A value that itself ends with a newline keeps it; CRLF counts as one newline.
    const multi = use(`line one ${value()}\nline two\n`);
    ok(await cli(["add", "multi"], { stdin: `${multi}\n` }));
    expect(await getValue("multi")).toBe(multi);
    const crlf = value();
    ok(await cli(["add", "crlf"], { stdin: `${crlf}\r\n` }));
    expect(await getValue("crlf")).toBe(crlf);
    // '-' as VALUE reads stdin too.
    const dash = value();
    ok(await cli(["add", "dash", "-"], { stdin: dash }));
    expect(await getValue("dash")).toBe(dash);
  });

  test("add --env, --scope, --provider, --description, --label", async () => {
    ok(await cli(["group", "add", "ml"]));
    const out = ok(
      await cli(
        [
          "add",
          "anth-ml",
          "--provider",
          "anthropic",
          "--scope",
          "group:ml",
          "--description",
          "for the ml group",
          "--label",
          "team=ml",
          "--label=tier=1",
        ],
        { stdin: value() },
      ),
    );
    expect(out).toBe("created anth-ml: ANTHROPIC_API_KEY at group:ml, version 1\n");
    ok(await cli(["add", "custom", "--env", "CUSTOM_TOKEN", value()]));
    const byName = new Map((await listJson()).map((s) => [s.name, s]));
    expect(byName.get("anth-ml")).toMatchObject({
      env: "ANTHROPIC_API_KEY",
      scope: "group:ml",
      provider: "anthropic",
      description: "for the ml group",
      labels: { team: "ml", tier: "1" },
      currentVersion: 1,
    });
    expect(byName.get("custom")).toMatchObject({ env: "CUSTOM_TOKEN", scope: "global" });
  });

  test("list masks every value and never fetches one; --json has no value; --scope filters", async () => {
    const table = ok(await cli(["list"]));
    const [header, ...rows] = table.trimEnd().split("\n");
    expect(header?.split(/\s+/)).toEqual(["NAME", "ENV", "VALUE", "SCOPE", "VERSION", "UPDATED"]);
    expect(rows.length).toBeGreaterThanOrEqual(6);
    for (const row of rows) expect(row).toContain("••••••");
    const json = ok(await cli(["list", "--json"]));
    for (const v of valuesUsed) {
      expect(table).not.toContain(v);
      expect(json).not.toContain(v);
    }
    const secrets = (JSON.parse(json) as { secrets: SecretJson[] }).secrets;
    for (const s of secrets) {
      expect(Object.keys(s).sort()).toEqual(
        [
          "name",
          "env",
          "scope",
          "kind",
          "provider",
          "description",
          "labels",
          "currentVersion",
          "versionCount",
          "createdAt",
          "updatedAt",
          "modRevision",
        ].sort(),
      );
      expect(typeof s.modRevision).toBe("number");
      expect(Date.parse(s.createdAt as string)).not.toBeNaN();
    }
    expect((await listJson("--scope", "group:ml")).map((s) => s.name)).toEqual(["anth-ml"]);
    // List reads no value, so the audit log has no read for it.
    const reads = await d.client.system.listAuditEvents({ action: "secret.read", limit: 10_000 });
    expect(reads.events.filter((e) => e.secret === "anth-ml")).toHaveLength(0);
  });

  test("get --json names the version", async () => {
    const v = await getValue("custom");
    expect(JSON.parse(ok(await cli(["get", "custom", "--json"])))).toEqual({
      name: "custom",
      env: "CUSTOM_TOKEN",
      scope: "global",
      version: 1,
      value: v,
    });
  });

  test("update changes metadata, never the value", async () => {
    const v = await getValue("custom");
    const out = ok(
      await cli([
        "update",
        "custom",
        "--env",
        "CUSTOM_KEY",
        "--description",
        "renamed",
        "--label",
        "a=b",
        "--scope",
        "group:ml",
      ]),
    );
    expect(out).toBe("updated custom: CUSTOM_KEY at group:ml\n");
    let s = (await listJson()).find((x) => x.name === "custom");
    expect(s).toMatchObject({
      env: "CUSTOM_KEY",
      scope: "group:ml",
      description: "renamed",
      labels: { a: "b" },
      currentVersion: 1,
    });
    ok(await cli(["update", "custom", "--clear-labels", "--scope", "global"]));
    s = (await listJson()).find((x) => x.name === "custom");
    expect(s).toMatchObject({ labels: {}, scope: "global", env: "CUSTOM_KEY" });
    expect(await getValue("custom")).toBe(v);
  });

  test("rotate (argument and stdin), versions, rollback", async () => {
    const v1 = await getValue("custom");
    const v2 = value();
    expect(ok(await cli(["rotate", "custom", v2]))).toBe("rotated custom: version 2 is current\n");
    const v3 = value();
    ok(await cli(["rotate", "custom"], { stdin: `${v3}\n` }));
    expect(await getValue("custom")).toBe(v3);
    expect(await getValue("custom", "--version", "1")).toBe(v1);
    expect(await getValue("custom", "--version=2")).toBe(v2);

    const table = ok(await cli(["versions", "custom"]))
      .trimEnd()
      .split("\n");
    expect(table[0]?.split(/\s+/)).toEqual(["VERSION", "CURRENT", "CREATED", "BY"]);
    expect(table.slice(1).map((r) => r.split(/\s+/).slice(0, 2))).toEqual([
      ["3", "*"],
      ["2", "-"],
      ["1", "-"],
    ]);
    const versions = JSON.parse(ok(await cli(["versions", "custom", "--json"]))) as {
      versions: { version: number; current: boolean; createdBy: string; createdAt: string }[];
    };
    expect(versions.versions.map((x) => [x.version, x.current, x.createdBy])).toEqual([
      [3, true, "local"],
      [2, false, "local"],
      [1, false, "local"],
    ]);

    expect(ok(await cli(["rollback", "custom", "1"]))).toBe(
      "rolled back custom: version 1 is current\n",
    );
    expect(await getValue("custom")).toBe(v1);
    expect((await listJson()).find((s) => s.name === "custom")).toMatchObject({
      currentVersion: 1,
      versionCount: 3,
    });
  });

  test("remove, and its alias rm", async () => {
    ok(await cli(["add", "tmp-a", value()]));
    ok(await cli(["add", "tmp-b", value()]));
    expect(ok(await cli(["remove", "tmp-a"]))).toBe("removed tmp-a\n");
    expect(JSON.parse(ok(await cli(["rm", "tmp-b", "--json"])))).toMatchObject({
      name: "tmp-b",
      removed: true,
    });
    const names = (await listJson()).map((s) => s.name);
    expect(names).not.toContain("tmp-a");
    expect(names).not.toContain("tmp-b");
  });
});

describe("export", () => {
  const vals: Record<string, string> = {};
  let stdoutOf: Record<string, CliResult>;

  beforeAll(async () => {
    ok(await cli(["vm", "add", "exp1"]));
    Object.assign(vals, {
      X_QUOTES: use(`say "hi", it's ${value()}`),
      X_DOLLAR: use(`pa$$w0rd $HOME \${X} ${value()}`),
      X_NEWLINES: use(`-----BEGIN KEY-----\n${value()}\n-----END KEY-----`),
      X_PLAIN: value(),
      X_BACKSLASH: use(`back\\slash\\n ${value()}`),
      X_SPACES: use(`  padded = # ${value()} `),
    });
    for (const [env, v] of Object.entries(vals)) {
      ok(
        await cli(
          ["add", env.toLowerCase().replace("_", "-"), "--env", env, "--scope", "vm:exp1"],
          {
            stdin: `${v}\n`,
          },
        ),
      );
    }
    stdoutOf = {};
    for (const f of ["dotenv", "json", "environment.d", "systemd"]) {
      stdoutOf[f] = await cli(["export", "exp1", "--format", f]);
    }
  });

  /** The VM's whole env (globals included), from --json, which carries every value. */
  const fullEnv = async () => {
    const snap = JSON.parse(ok(await cli(["export", "exp1", "--json"]))) as {
      vm: string;
      revision: number;
      vars: { name: string; value: string; secret: string; version: number; scope: string }[];
    };
    expect(snap.vm).toBe("exp1");
    expect(typeof snap.revision).toBe("number");
    return snap;
  };

  test("--json: the snapshot with provenance", async () => {
    const snap = await fullEnv();
    const mine = snap.vars.filter((v) => v.name.startsWith("X_"));
    expect(Object.fromEntries(mine.map((v) => [v.name, v.value]))).toEqual(vals);
    expect(mine.find((v) => v.name === "X_PLAIN")).toMatchObject({
      secret: "x-plain",
      version: 1,
      scope: "vm:exp1",
    });
  });

  test("--format json carries every value", async () => {
    const r = stdoutOf.json as CliResult;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    const obj = JSON.parse(r.stdout) as Record<string, string>;
    const env = Object.fromEntries((await fullEnv()).vars.map((v) => [v.name, v.value]));
    expect(obj).toEqual(env);
  });

  test("dotenv (the default): reads back through a dotenv parser; what it cannot carry is named on stderr", async () => {
    const r = stdoutOf.dotenv as CliResult;
    expect(ok(await cli(["export", "exp1"]))).toBe(r.stdout);
    expect(r.code).toBe(0);
    const parsed = dotenvToMap(parseDotenv(r.stdout));
    // Backslashes, and ' next to ", have no quoting every dotenv reader agrees on.
    const omitted = ["X_BACKSLASH", "X_QUOTES"];
    const notes = r.stderr.trimEnd().split("\n");
    expect(notes).toHaveLength(omitted.length);
    for (const name of omitted) {
      expect(parsed.has(name)).toBe(false);
      expect(notes.some((l) => l.startsWith(`secretsctl: ${name} left out of dotenv: `))).toBe(
        true,
      );
    }
    for (const [name, v] of Object.entries(vals)) {
      if (!omitted.includes(name)) expect(parsed.get(name), name).toBe(v);
    }
  });

  test("systemd (EnvironmentFile=): every value, newlines and $ included, byte for byte", async () => {
    const r = stdoutOf.systemd as CliResult;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout.startsWith("# Managed by vm-auth-shim")).toBe(true);
    // The dialect: double quotes, backslash before \ " $ `, everything else literal.
    const parsed = dotenvToMap(parseDotenv(r.stdout));
    for (const [name, v] of Object.entries(vals)) expect(parsed.get(name), name).toBe(v);
  });

  test("environment.d: $ doubled; a value with a newline is left out and named", async () => {
    const r = stdoutOf["environment.d"] as CliResult;
    expect(r.code).toBe(0);
    // Of this test's vars only X_NEWLINES (other newline values, e.g. global `multi`, too).
    const notes = r.stderr.trimEnd().split("\n");
    expect(notes.filter((l) => l.startsWith("secretsctl: X_"))).toEqual([
      expect.stringMatching(
        /^secretsctl: X_NEWLINES left out of environment\.d: .*control character/,
      ),
    ]);
    expect(notes.every((l) => /^secretsctl: [A-Z_]+ left out of environment\.d: /.test(l))).toBe(
      true,
    );
    const parsed = decodeEnvironmentD(r.stdout);
    expect(parsed.has("X_NEWLINES")).toBe(false);
    for (const [name, v] of Object.entries(vals)) {
      if (name !== "X_NEWLINES") expect(parsed.get(name), name).toBe(v);
    }
    expect(r.stdout).toContain("pa$$$$w0rd $$HOME");
  });
});

describe("import", () => {
  const p1 = value("imp-plain");
  const s1 = value("imp-single");
  const d1 = value("imp-double");
  const m1 = value("imp-multi");
  const c1 = value("imp-comment");
  const expected: Record<string, string> = {
    imp_plain: p1,
    imp_single: use(`${s1} "kept" $NOT_EXPANDED # not a comment`),
    imp_double: use(`${d1}\n"quoted" $HOME\ttab`),
    imp_multi: use(`-----BEGIN KEY-----\n${m1}\nline 3\n-----END KEY-----`),
    imp_comment: c1,
  };
  const file = (plain: string, eol = "\n") =>
    [
      "# exported from somewhere",
      "",
      `export IMP_PLAIN=${plain}`,
      `IMP_SINGLE='${s1} "kept" $NOT_EXPANDED # not a comment'`,
      `IMP_DOUBLE="${d1}\\n\\"quoted\\" \\$HOME\\ttab"`,
      `IMP_MULTI="-----BEGIN KEY-----`,
      m1,
      "line 3",
      `-----END KEY-----"`,
      `IMP_COMMENT=${c1}   # trailing comment`,
      "IMP_EMPTY=",
      "",
    ].join(eol);

  /** Everything `list --json` shows plus the store revision: equal means nothing changed. */
  const state = async () => ({
    list: ok(await cli(["list", "--json"])),
    revision: (await d.client.system.getStatus({})).revision,
  });

  test("--dry-run prints the plan and changes nothing", async () => {
    const path = join(work, "app.env");
    await writeFile(path, file(p1));
    const before = await state();
    const r = await cli(["import", path, "--dry-run"]);
    const rows = ok(r).trimEnd().split("\n");
    expect(rows[0]?.split(/\s+/)).toEqual(["ACTION", "NAME", "ENV"]);
    expect(rows.slice(1).map((l) => l.split(/\s+/))).toEqual([
      ["create", "imp_plain", "IMP_PLAIN"],
      ["create", "imp_single", "IMP_SINGLE"],
      ["create", "imp_double", "IMP_DOUBLE"],
      ["create", "imp_multi", "IMP_MULTI"],
      ["create", "imp_comment", "IMP_COMMENT"],
      ["skip", "imp_empty", "IMP_EMPTY"],
    ]);
    expect(r.stderr).toContain("dry run: would create 5, rotate 0; 0 unchanged, 1 skipped");
    expect(r.stderr).toContain("nothing was changed");
    expect(await state()).toEqual(before);
  });

  test("quotes, multi-line values, export prefix and comments arrive byte for byte (CRLF too)", async () => {
    const path = join(work, "app-crlf.env");
    await writeFile(path, file(p1, "\r\n"));
    const r = await cli(["import", path]);
    expect(ok(r)).toContain("create  imp_multi");
    expect(r.stderr).toContain("5 created, 0 rotated, 0 unchanged, 1 skipped");
    for (const [name, v] of Object.entries(expected)) expect(await getValue(name), name).toBe(v);
    const byName = new Map((await listJson()).map((s) => [s.name, s]));
    expect(byName.get("imp_double")).toMatchObject({ env: "IMP_DOUBLE", scope: "global" });
    expect(byName.has("imp_empty")).toBe(false);
  });

  test("re-import rotates only what changed; --dry-run first changes nothing", async () => {
    const p2 = value("imp-plain2");
    const path = join(work, "app2.env");
    await writeFile(path, file(p2));
    const before = await state();
    const dry = await cli(["import", path, "--dry-run", "--json"]);
    const plan = JSON.parse(ok(dry)) as {
      dryRun: boolean;
      results: { name: string; action: string }[];
    };
    expect(plan.dryRun).toBe(true);
    expect(Object.fromEntries(plan.results.map((x) => [x.name, x.action]))).toEqual({
      imp_plain: "rotate",
      imp_single: "unchanged",
      imp_double: "unchanged",
      imp_multi: "unchanged",
      imp_comment: "unchanged",
      imp_empty: "skip",
    });
    expect(await state()).toEqual(before);

    ok(await cli(["import", path]));
    expect(await getValue("imp_plain")).toBe(p2);
    const byName = new Map((await listJson()).map((s) => [s.name, s]));
    expect(byName.get("imp_plain")).toMatchObject({ currentVersion: 2, versionCount: 2 });
    for (const n of ["imp_single", "imp_double", "imp_multi", "imp_comment"]) {
      expect(byName.get(n), n).toMatchObject({ currentVersion: 1, versionCount: 1 });
    }
  });

  test("--prefix and --scope name and place new secrets", async () => {
    ok(await cli(["vm", "add", "imp1"]));
    const path = join(work, "prefixed.env");
    const v = value();
    await writeFile(path, `export IMP_PLAIN="${v}"\n`);
    ok(await cli(["import", path, "--prefix", "web.", "--scope", "vm:imp1"]));
    expect((await listJson("--scope", "vm:imp1")).map((s) => [s.name, s.env])).toEqual([
      ["web.imp_plain", "IMP_PLAIN"],
    ]);
    expect(await getValue("web.imp_plain")).toBe(v);
  });

  test("a bad file or a clash fails on one line with its line number, before any change", async () => {
    const before = await state();
    const bad = join(work, "bad.env");
    const v = value();
    await writeFile(bad, `A_OK=${value()}\n${v}\n`);
    expect(
      failed(await cli(["import", bad]), 1, `${bad}: line 2: expected NAME=value`),
    ).not.toContain(v);
    await writeFile(bad, `A_OK=1\nB_OPEN="${v}\n`);
    failed(await cli(["import", bad]), 1, "line 2: unterminated double-quoted value");
    await writeFile(bad, `A_OK=${value()}\nlower_case=${v}\n`);
    failed(await cli(["import", bad]), 1, "line 2: variable name must match");
    // OPENAI_API_KEY is given at global by `openai` already: refused before A_OK is created.
    await writeFile(bad, `A_OK=${value()}\nOPENAI_API_KEY=${v}\n`);
    failed(
      await cli(["import", bad]),
      1,
      "line 2: env: OPENAI_API_KEY is already given at scope global by secret 'openai'",
    );
    failed(await cli(["import", join(work, "missing.env")]), 1, "file: cannot read");
    expect(await state()).toEqual(before);
  });
});

describe("status, rekey, audit", () => {
  test("status: reachable, counts, data dir, master key, caller; --json has stable fields", async () => {
    const text = ok(await cli(["status"]));
    expect(text).toMatch(/^reachable\s+yes \(.*secretsd\.sock\)$/m);
    expect(text).toMatch(new RegExp(`^data dir\\s+${d.dataDir}$`, "m"));
    expect(text).toMatch(/^caller\s+local$/m);
    expect(text).toMatch(/^vms\s+0 connected \/ 2 total$/m);
    const s = JSON.parse(ok(await cli(["status", "--json"]))) as Record<string, unknown>;
    expect(Object.keys(s).sort()).toEqual(
      [
        "reachable",
        "target",
        "version",
        "startedAt",
        "uptimeSeconds",
        "revision",
        "secretCount",
        "vmCount",
        "connectedVmCount",
        "groupCount",
        "dataDir",
        "masterKeyId",
        "caller",
      ].sort(),
    );
    expect(s).toMatchObject({
      reachable: true,
      target: d.socket,
      dataDir: d.dataDir,
      caller: "local",
      vmCount: 2,
      connectedVmCount: 0,
      groupCount: 1,
      secretCount: (await listJson()).length,
    });
    expect(typeof s.revision).toBe("number");
  });

  test("status with no daemon: one line naming the socket it tried and secretsd; exit 1", async () => {
    const env = { VM_AUTH_HOME: work };
    const msg = failed(await runCli(["status"], { env }), 1, join(work, "secretsd.sock"));
    expect(msg).toContain("is secretsd running?");
    const r = await runCli(["status", "--json"], { env });
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout)).toEqual({ reachable: false, target: join(work, "secretsd.sock") });
    expect(r.stderr.split("\n")).toHaveLength(2);
  });

  test("rekey replaces the master key; every value is still readable", async () => {
    const names = ["openai", "multi", "custom", "imp_multi", "x-newlines"];
    const before = new Map<string, string>();
    for (const n of names) before.set(n, await getValue(n));
    const id = (JSON.parse(ok(await cli(["status", "--json"]))) as { masterKeyId: string })
      .masterKeyId;
    const r = JSON.parse(ok(await cli(["rekey", "--json"]))) as {
      masterKeyId: string;
      revision: number;
    };
    expect(r.masterKeyId).not.toBe(id);
    expect(ok(await cli(["rekey"]))).toMatch(/^master key replaced: \S+ \(revision \d+\)\n$/);
    for (const n of names) expect(await getValue(n), n).toBe(before.get(n));
    await d.restart();
    for (const n of names) expect(await getValue(n), n).toBe(before.get(n));
  });

  test("audit: reads and changes, filtered by secret, vm and action; never a value", async () => {
    const events = async (...args: string[]) =>
      (
        JSON.parse(ok(await cli(["audit", "--json", ...args]))) as {
          events: {
            action: string;
            secret: string;
            vm: string;
            actor: string;
            result: string;
            time: string;
            revision: number;
          }[];
        }
      ).events;
    const custom = await events("--secret", "custom", "--limit", "10000");
    const actions = new Set(custom.map((e) => e.action));
    for (const a of [
      "secret.create",
      "secret.read",
      "secret.update",
      "secret.rotate",
      "secret.rollback",
    ]) {
      expect(actions, a).toContain(a);
    }
    for (const e of custom) {
      expect(e.secret).toBe("custom");
      expect(e.actor).toBe("local");
      expect(Date.parse(e.time)).not.toBeNaN();
    }
    const reads = await events("--action", "secret.read", "--limit", "2");
    expect(reads.length).toBe(2);
    for (const e of reads) expect(e.action).toBe("secret.read");
    expect(
      (await events("--vm", "exp1", "--limit", "10000")).some((e) => e.action === "env.get"),
    ).toBe(true);
    const table = ok(await cli(["audit", "--limit", "50"]));
    expect(table.split("\n")[0]?.split(/\s+/)).toEqual([
      "TIME",
      "ACTOR",
      "ACTION",
      "SECRET",
      "VM",
      "VERSION",
      "RESULT",
    ]);
    const all = ok(await cli(["audit", "--json", "--limit", "10000"]));
    for (const v of valuesUsed) expect(all).not.toContain(v);
  });
});

const hasPython = spawnSync("python3", ["-c", "import pty"]).status === 0;

describe.skipIf(!hasPython)("on a terminal (python3 pty)", () => {
  test("add prompts without echo; get adds a newline on a terminal", async () => {
    const v = value("sk-typed");
    const typed = await inPty(["add", "typed"], v);
    expect(typed.code).toBe(0);
    expect(typed.transcript).toContain("Value for typed (input hidden): ");
    expect(typed.transcript).not.toContain(v);
    expect(await getValue("typed")).toBe(v);
    const shown = await inPty(["get", "typed"]);
    expect(shown.transcript).toBe(`${v}\r\n`);
  });

  test("Ctrl-C at the prompt cancels: exit 130, nothing stored", async () => {
    const r = await inPty(["add", "cancelled"], "\u0003");
    expect(r.code).toBe(130);
    expect(r.transcript).toContain("secretsctl: cancelled");
    expect((await listJson()).map((s) => s.name)).not.toContain("cancelled");
  });
});

// --- internal ---

/**
 * Runs secretsctl on a pty; when it prompts, types `input` then Enter. The transcript is
 * everything the terminal showed.
 */
function inPty(
  args: string[],
  input?: string,
): Promise<{ code: number | null; transcript: string }> {
  const script = `
import os, pty, sys
data = sys.stdin.buffer.read()
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
buf, sent = b"", False
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    buf += chunk
    if not sent and b"(input hidden): " in buf:
        os.write(fd, data if data == b"\\x03" else data + b"\\r")
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(buf)
sys.exit(os.waitstatus_to_exitcode(status))
`;
  const child = spawn("python3", ["-c", script, process.execPath, SECRETSCTL, ...args], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: work,
      VM_AUTH_HOME: d.dataDir,
      NO_COLOR: "1",
    },
    stdio: ["pipe", "pipe", "inherit"],
  });
  child.stdin.end(input ?? "");
  const out: Buffer[] = [];
  child.stdout.on("data", (b: Buffer) => out.push(b));
  return new Promise((res) =>
    child.on("close", (code) => res({ code, transcript: Buffer.concat(out).toString("utf8") })),
  );
}

/** environment.d as the user manager reads it: "…" with \\ and \" escapes, $$ for $. */
function decodeEnvironmentD(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const l of text.split("\n")) {
    const m = /^([A-Z_][A-Z0-9_]*)="(.*)"$/.exec(l);
    if (m?.[1] && m[2] !== undefined) {
      vars.set(
        m[1],
        m[2].replace(/\\(.)|\$\$/g, (_, c: string | undefined) => c ?? "$"),
      );
    }
  }
  return vars;
}
