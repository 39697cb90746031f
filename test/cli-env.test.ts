/**
 * secretsctl export and import end to end, against a real secretsd: every export format with
 * values that test the dialects (quotes, `$`, backslashes, newlines, edge spaces), and
 * importing dotenv files (quotes, multi-line values, `export`, comments, CRLF, --dry-run,
 * --prefix, --scope) byte for byte.
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import { parseDotenv } from "../client/dotenv.js";
import type { CliResult, CliRunner } from "./helpers/cli.js";
import { cliSuite, failed, listJson, ok, use, value } from "./helpers/cli.js";
import type { TestDaemon } from "./helpers/daemon.js";

const suite = cliSuite("secretsctl-env-");
let d: TestDaemon;
let cli: CliRunner;
let work: string;

beforeAll(async () => {
  ({ d, cli, work } = suite);
  // A global secret with a newline, and one whose env var the import clash test reuses.
  ok(await cli(["add", "openai", value()]));
  ok(await cli(["add", "multi"], { stdin: use(`first ${value()}\nsecond`) }));
});

const list = (...args: string[]) => listJson(cli, ...args);
const getValue = async (name: string, ...args: string[]) => ok(await cli(["get", name, ...args]));

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

  test("dotenv (the default) never drops a value: X_QUOTES (' with \") has no quoting, so it fails naming it", async () => {
    const r = stdoutOf.dotenv as CliResult;
    const msg = failed(r, 1, "X_QUOTES: cannot be written as dotenv");
    expect(msg).toContain("--format shell");
    // Without it, the rest reads back exactly (test/cli-import-export.test.ts checks npm dotenv and sh).
    await d.client.secrets.deleteSecret({ name: "x-quotes" });
    const again = await cli(["export", "exp1"]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/^# written by secretsctl export exp1 \(vm-auth /);
    const parsed = readDotenv(again.stdout);
    for (const [name, v] of Object.entries(vals)) {
      if (name !== "X_QUOTES") expect(parsed.get(name), name).toBe(v);
    }
    await d.client.secrets.createSecret({
      name: "x-quotes",
      env: "X_QUOTES",
      scope: "vm:exp1",
      value: vals.X_QUOTES as string,
    });
  });

  test("systemd (EnvironmentFile=): every value, newlines and $ included, byte for byte", async () => {
    const r = stdoutOf.systemd as CliResult;
    expect(r.code).toBe(0);
    expect(r.stderr).toBe("");
    expect(r.stdout.startsWith("# Managed by vm-auth-shim")).toBe(true);
    // The dialect: double quotes, backslash before \ " $ `, everything else literal.
    const parsed = readDotenv(r.stdout);
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
    expect(rows[0]?.split(/\s+/)).toEqual(["LINE", "ACTION", "NAME", "ENV", "NOTE"]);
    expect(rows.slice(1).map((l) => l.split(/ {2,}/))).toEqual([
      ["3", "create", "imp_plain", "IMP_PLAIN", "-"],
      ["4", "create", "imp_single", "IMP_SINGLE", "-"],
      ["5", "create", "imp_double", "IMP_DOUBLE", "-"],
      ["6", "create", "imp_multi", "IMP_MULTI", "-"],
      ["10", "create", "imp_comment", "IMP_COMMENT", "-"],
      ["11", "skip", "imp_empty", "IMP_EMPTY", "empty value"],
    ]);
    expect(r.stderr).toContain("dry run: would create 5, rotate 0; 0 unchanged, 1 skipped");
    expect(r.stderr).toContain("nothing was changed");
    expect(await state()).toEqual(before);
  });

  test("quotes, multi-line values, export prefix and comments arrive byte for byte (CRLF too)", async () => {
    const path = join(work, "app-crlf.env");
    await writeFile(path, file(p1, "\r\n"));
    const r = await cli(["import", path]);
    expect(ok(r)).toMatch(/^6 +created +imp_multi +IMP_MULTI/m);
    expect(r.stderr).toContain("5 created, 0 rotated, 0 unchanged, 1 skipped");
    for (const [name, v] of Object.entries(expected)) expect(await getValue(name), name).toBe(v);
    const byName = new Map((await list()).map((s) => [s.name, s]));
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
    const byName = new Map((await list()).map((s) => [s.name, s]));
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
    expect((await list("--scope", "vm:imp1")).map((s) => [s.name, s.env])).toEqual([
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

// --- internal ---

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

/** A dotenv file as a reader sees it: a name assigned twice keeps its last value. */
function readDotenv(text: string): Map<string, string> {
  return new Map(parseDotenv(text).map((e) => [e.name, e.value]));
}
