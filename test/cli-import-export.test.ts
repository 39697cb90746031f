/**
 * secretsctl import and export as a user meets them (issue #12), built CLI against a real
 * secretsd:
 * - export dotenv never drops a value while exiting 0: what it writes reads back byte for byte
 *   through client/dotenv.ts, the `dotenv` npm package and a POSIX shell (`set -a; . file`);
 *   a value no quoting carries fails the export naming the variable. `--format shell` carries
 *   every value through `eval` in bash and `.` in dash. Both headers name the program. The
 *   systemd dialects stay byte-identical to what the shim writes.
 * - import reports every assignment line by number; says what --scope does to existing
 *   secrets and moves them with --move-scope; --atomic applies all or nothing; without it a
 *   refused line is reported failed, the rest applied, and the exit code is 1.
 */
import { spawnSync } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { parseEnv } from "node:util";
import { parse as npmDotenvParse } from "dotenv";
import fc from "fast-check";
import { beforeAll, describe, expect, test } from "vitest";
import { parseDotenv } from "../client/dotenv.js";
import {
  renderDotenvPortable,
  renderEnvironmentD,
  renderEnvironmentFile,
  renderShell,
} from "../client/env-render.js";
import type { CliRunner } from "./helpers/cli.js";
import { cliSuite, failed, listJson, ok, use, value } from "./helpers/cli.js";
import type { TestDaemon } from "./helpers/daemon.js";

const suite = cliSuite("secretsctl-impexp-");
let d: TestDaemon;
let cli: CliRunner;
let work: string;

beforeAll(() => {
  ({ d, cli, work } = suite);
});

/** Adds a secret for `env` at `scope` over gRPC (setup only: the CLI's `add` is tested elsewhere). */
async function add(env: string, v: string, scope: string) {
  const name = `${env.toLowerCase().replaceAll("_", "-")}-${scope.replace(/\W/g, "")}`;
  await d.client.secrets.createSecret({ name, env, scope, value: v });
}

/** The VM's env as `--format json` prints it: every value. */
async function envOf(vm: string): Promise<Record<string, string>> {
  return JSON.parse(ok(await cli(["export", vm, "--format", "json"]))) as Record<string, string>;
}

/**
 * The environment `shell` sees after running `prelude` (which reads the file "$1"): every
 * exported variable, from `env -0`, so a value's bytes (trailing newlines too) are all there.
 */
function envAfter(shell: string, prelude: string, file: string): Map<string, string> {
  const r = spawnSync(shell, ["-c", `${prelude}; env -0`, "sh", file], {
    encoding: "utf8",
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin" },
  });
  expect(r.status, r.stderr).toBe(0);
  const vars = new Map<string, string>();
  for (const entry of r.stdout.split("\0")) {
    const eq = entry.indexOf("=");
    if (eq > 0) vars.set(entry.slice(0, eq), entry.slice(eq + 1));
  }
  return vars;
}

/** `vars` as they came back, for the names of `want`. */
function pick(vars: Map<string, string>, want: Record<string, string>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(want).map((k) => [k, vars.get(k)]));
}

describe("export", () => {
  /** Values every dotenv reader agrees on, once quoted right. */
  const portable: Record<string, string> = {};
  /** Values only the shell format carries. */
  const shellOnly: Record<string, string> = {};

  beforeAll(async () => {
    await d.client.access.createVm({ name: "rt1" });
    await d.client.access.createVm({ name: "rt2" });
    Object.assign(portable, {
      P_PEM: use(`-----BEGIN KEY-----\n${value()}\nline 3\n-----END KEY-----\n`),
      P_DOUBLE_Q: use(`say "hi" ${value()}`),
      P_SINGLE_Q: use(`it's ${value()}\nsecond line`),
      P_DOLLAR: use(`pa$$w0rd $HOME \${X} $(id) \`id\` ${value()}`),
      P_BACKSLASH: use(`back\\slash\\n \\t ${value()}`),
      P_HASH: use(`#not a comment ${value()} # nor this`),
      P_SPACES: use(`  padded = ${value()}  `),
      P_UNICODE: use(`héllo wörld 日本 😀 ${value()}`),
      P_EQUALS: use(`a=b==${value()}=`),
    });
    Object.assign(shellOnly, {
      S_BOTH: use(`it's "${value()}" $HOME`),
      S_CR: use(`a\rb ${value()}`),
      S_TRAILING_BS: use(`C:\\dir\\ ${value()}\\`),
    });
    for (const [env, v] of Object.entries(portable)) await add(env, v, "vm:rt1");
    for (const [env, v] of Object.entries({ ...portable, ...shellOnly })) {
      await add(env, v, "vm:rt2");
    }
  });

  test("dotenv reads back byte for byte in client/dotenv.ts, npm dotenv and a POSIX shell", async () => {
    const env = await envOf("rt1");
    expect(env).toEqual(portable);
    const r = await cli(["export", "rt1"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe("");
    const [header, ...rest] = r.stdout.split("\n");
    expect(header).toMatch(
      /^# written by secretsctl export rt1 \(vm-auth \d+\.\d+\.\d+\S*\) at \d{4}-\d\d-\d\dT[\d:.]+Z; revision \d+$/,
    );
    expect(rest.length).toBeGreaterThan(1);
    const ours = Object.fromEntries(parseDotenv(r.stdout).map((e) => [e.name, e.value]));
    expect(ours).toEqual(portable);
    expect({ ...npmDotenvParse(r.stdout) }).toEqual(portable);
    const file = join(work, "rt1.env");
    await writeFile(file, r.stdout);
    for (const shell of ["sh", "bash"]) {
      const vars = envAfter(shell, 'set -a; . "$1"', file);
      expect(pick(vars, portable), shell).toEqual(portable);
    }
  });

  test("dotenv fails naming the variables it cannot carry, and prints nothing", async () => {
    const msg = failed(await cli(["export", "rt2"]), 1, "cannot be written as dotenv");
    expect(msg).toContain("S_BOTH, S_CR, S_TRAILING_BS:");
    expect(msg).toContain("--format shell");
  });

  test("shell carries every value through eval in bash and . in dash", async () => {
    const all = { ...portable, ...shellOnly };
    expect(await envOf("rt2")).toEqual(all);
    const r = await cli(["export", "rt2", "--format", "shell"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^# written by secretsctl export rt2 \(vm-auth [^)]+\) at \S+Z; revision \d+\n/,
    );
    const body = r.stdout.split("\n").slice(1).join("\n");
    expect(body.startsWith("export ")).toBe(true);
    const file = join(work, "rt2.sh");
    await writeFile(file, r.stdout);
    // Exported, not just set: `env` (a child process) sees each one.
    expect(pick(envAfter("bash", 'eval "$(cat "$1")"', file), all)).toEqual(all);
    expect(pick(envAfter("dash", '. "$1"', file), all)).toEqual(all);
  });

  test("environment.d and systemd stay what the shim writes, byte for byte", async () => {
    const env = await envOf("rt2");
    for (const [format, render] of [
      ["systemd", renderEnvironmentFile],
      ["environment.d", renderEnvironmentD],
    ] as const) {
      const r = await cli(["export", "rt2", "--format", format]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout, format).toBe(render(env).text);
      expect(r.stdout.startsWith("# Managed by vm-auth-shim; do not edit.\n")).toBe(true);
    }
  });
});

describe("the export renderers, on many generated values", () => {
  // Quotes, $, backquotes, backslashes, CR/LF, #, =, spaces and non-ASCII, mixed with anything.
  const tricky = fc.constantFrom(..."\"'\\$`#;= \t\r\n{}é😀".split(""));
  const values = fc.array(
    fc
      .array(fc.oneof(tricky, fc.string({ maxLength: 3 })), { minLength: 1, maxLength: 12 })
      .map((a) => a.join(""))
      // What a value can be: UTF-8 text without NUL (no lone surrogate, server/secrets/validate.ts).
      .filter((v) => v !== "" && !v.includes("\0") && Buffer.from(v).toString() === v),
    { minLength: 150, maxLength: 150 },
  );
  const sample = fc.sample(values, { numRuns: 1, seed: 12 })[0] ?? [];
  const vars = Object.fromEntries(sample.map((v, i) => [`V_${i}`, v]));

  test("dotenv: what is written reads back exactly in every reader; only the unquotable is left out", async () => {
    const r = renderDotenvPortable(vars);
    const left = new Set(r.omitted.map((o) => o.name));
    const kept = Object.fromEntries(Object.entries(vars).filter(([k]) => !left.has(k)));
    // Enough of each kind to mean something, and a left-out value is one with no quoting.
    expect(Object.keys(kept).length).toBeGreaterThan(40);
    for (const name of left) expect(vars[name]).toMatch(/['\r]|\\$/);
    expect(Object.fromEntries(parseDotenv(r.text).map((e) => [e.name, e.value]))).toEqual(kept);
    expect({ ...npmDotenvParse(r.text) }).toEqual(kept);
    expect({ ...parseEnv(r.text) }).toEqual(kept);
    const file = join(work, "many.env");
    await writeFile(file, r.text);
    for (const shell of ["sh", "bash"]) {
      expect(pick(envAfter(shell, 'set -a; . "$1"', file), kept), shell).toEqual(kept);
    }
  });

  test("shell: every value comes back through eval, none left out", async () => {
    const r = renderShell(vars);
    expect(r.omitted).toEqual([]);
    const file = join(work, "many.sh");
    await writeFile(file, r.text);
    expect(pick(envAfter("bash", 'eval "$(cat "$1")"', file), vars)).toEqual(vars);
    expect(pick(envAfter("dash", '. "$1"', file), vars)).toEqual(vars);
  });
});

describe("import", () => {
  /** Everything `list --json` shows plus the store revision: equal means nothing changed. */
  const state = async () => ({
    list: ok(await cli(["list", "--json"])),
    revision: (await d.client.system.getStatus({})).revision,
  });
  const getValue = async (name: string) => ok(await cli(["get", name]));
  const rows = (stdout: string) =>
    stdout
      .trimEnd()
      .split("\n")
      .map((l) => l.split(/ {2,}/));

  test("every assignment line is reported by number: created, rotated, unchanged, skipped and why", async () => {
    const [kept, old, fresh, dup1, dup2] = [value(), value(), value(), value(), value()];
    await d.client.secrets.createSecret({ name: "rep_kept", value: kept });
    await d.client.secrets.createSecret({ name: "rep_old", value: old });
    const path = join(work, "report.env");
    await writeFile(
      path,
      [
        "# a comment",
        `REP_KEPT=${kept}`,
        `REP_OLD=${fresh}`,
        `REP_DUP=${dup1}`,
        "",
        "REP_EMPTY=",
        `REP_DUP=${dup2}`,
        `REP_NEW="${value()}"`,
        "",
      ].join("\n"),
    );
    const r = await cli(["import", path]);
    expect(r.code, r.stderr).toBe(0);
    expect(rows(r.stdout)).toEqual([
      ["LINE", "RESULT", "NAME", "ENV", "NOTE"],
      ["2", "unchanged", "rep_kept", "REP_KEPT", "-"],
      ["3", "rotated", "rep_old", "REP_OLD", "-"],
      ["4", "skipped", "rep_dup", "REP_DUP", "assigned again on line 7"],
      ["6", "skipped", "rep_empty", "REP_EMPTY", "empty value"],
      ["7", "created", "rep_dup", "REP_DUP", "-"],
      ["8", "created", "rep_new", "REP_NEW", "-"],
    ]);
    expect(r.stderr).toBe("secretsctl: 2 created, 1 rotated, 1 unchanged, 2 skipped\n");
    expect(await getValue("rep_old")).toBe(fresh);
    expect(await getValue("rep_dup")).toBe(dup2);
  });

  test("--scope applies to new secrets only and says so; --move-scope moves existing ones", async () => {
    await d.client.access.createVm({ name: "mv1" });
    const [a1, a2, b1] = [value(), value(), value()];
    await d.client.secrets.createSecret({ name: "mv_a", value: a1 });
    const path = join(work, "scope.env");
    await writeFile(path, `MV_A=${a2}\nMV_B=${b1}\n`);
    const r = await cli(["import", path, "--scope", "vm:mv1", "--dry-run"]);
    expect(rows(ok(r))).toEqual([
      ["LINE", "ACTION", "NAME", "ENV", "NOTE"],
      [
        "1",
        "rotate",
        "mv_a",
        "MV_A",
        "exists at global; --scope vm:mv1 applies to new secrets only (--move-scope moves it)",
      ],
      ["2", "create", "mv_b", "MV_B", "-"],
    ]);
    const moved = await cli(["import", path, "--scope", "vm:mv1", "--move-scope"]);
    expect(rows(ok(moved))).toEqual([
      ["LINE", "RESULT", "NAME", "ENV", "NOTE"],
      ["1", "rotated+moved", "mv_a", "MV_A", "moves from global to vm:mv1"],
      ["2", "created", "mv_b", "MV_B", "-"],
    ]);
    expect(moved.stderr).toContain("1 created, 1 rotated, 0 unchanged, 0 skipped, 1 moved");
    const byName = new Map((await listJson(cli)).map((s) => [s.name, s]));
    expect(byName.get("mv_a")).toMatchObject({ scope: "vm:mv1", currentVersion: 2 });
    expect(byName.get("mv_b")).toMatchObject({ scope: "vm:mv1" });
    expect(await getValue("mv_a")).toBe(a2);
    failed(await cli(["import", path, "--move-scope"]), 2, "--move-scope needs --scope");
  });

  test("--atomic: a line the server refuses applies none; without it the rest are applied and exit 1", async () => {
    const path = join(work, "partial.env");
    const [ok1, bad, ok2] = [value(), value(), value()];
    // The env deny-list is the server's: the client's plan lets LD_PRELOAD through.
    await writeFile(path, `AT_ONE=${ok1}\nLD_PRELOAD=${bad}\nAT_TWO=${ok2}\n`);
    const before = await state();
    failed(
      await cli(["import", path, "--atomic"]),
      1,
      /line 2: LD_PRELOAD: env: .*; nothing was imported \(--atomic\)$/,
    );
    expect(await state()).toEqual(before);

    const r = await cli(["import", path]);
    expect(r.code).toBe(1);
    const table = rows(r.stdout);
    expect(table.slice(1).map((x) => x.slice(0, 3))).toEqual([
      ["1", "created", "at_one"],
      ["2", "failed", "ld_preload"],
      ["3", "created", "at_two"],
    ]);
    expect(table[2]?.[4]).toMatch(/^env: .*LD_PRELOAD/);
    expect(r.stderr.trimEnd().split("\n")).toEqual([
      "secretsctl: 2 created, 0 rotated, 0 unchanged, 0 skipped, 1 failed",
      "secretsctl: import: 1 of 3 lines failed (line 2); the others were applied (--atomic applies all or none)",
    ]);
    expect(await getValue("at_two")).toBe(ok2);
  });

  test("--atomic applies creates, rotations and moves in one revision", async () => {
    await d.client.access.createVm({ name: "at1" });
    const [x1, x2, y1] = [value(), value(), value()];
    await d.client.secrets.createSecret({ name: "atm_x", value: x1 });
    const path = join(work, "atomic.env");
    await writeFile(path, `ATM_X=${x2}\nATM_Y=${y1}\n`);
    const before = (await d.client.system.getStatus({})).revision;
    const r = await cli(["import", path, "--atomic", "--scope", "vm:at1", "--move-scope"]);
    expect(
      rows(ok(r))
        .slice(1)
        .map((x) => x.slice(0, 3)),
    ).toEqual([
      ["1", "rotated+moved", "atm_x"],
      ["2", "created", "atm_y"],
    ]);
    expect((await d.client.system.getStatus({})).revision).toBe(before + 1n);
    expect(await getValue("atm_x")).toBe(x2);
    expect(await getValue("atm_y")).toBe(y1);
    const byName = new Map((await listJson(cli)).map((s) => [s.name, s]));
    expect(byName.get("atm_x")?.scope).toBe("vm:at1");
  });
});
