/**
 * `secretsctl run` end to end, with the built CLI against a real secretsd: the VM's env in the
 * child (over the socket with --vm, over TCP with the VM's token), exit codes and signals
 * passed through, usage errors, and `--watch`: a rotation restarts the child with the new value
 * (a new pid), a change outside the VM's view or an equal value does not, and a child that
 * ignores the stop signal is killed after `--grace`.
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import type { CliRunner } from "./helpers/cli.js";
import { cliSuite, failed, ok, runCli, SECRETSCTL, value } from "./helpers/cli.js";
import type { TestDaemon } from "./helpers/daemon.js";

const suite = cliSuite("secretsctl-run-");
let d: TestDaemon;
let cli: CliRunner;
let work: string;

const vals: Record<string, string> = {};
let token: string;
/** A node program that appends "PID VALUE-OF-RUN_A" to the file argv[2], then waits. */
let childScript: string;

const add = async (name: string, env: string, scope: string, v: string) =>
  ok(await cli(["add", name, "--env", env, "--scope", scope], { stdin: `${v}\n` }));
const rotate = async (name: string, v: string) =>
  ok(await cli(["rotate", name], { stdin: `${v}\n` }));

beforeAll(async () => {
  ({ d, cli, work } = suite);
  token = ok(await cli(["vm", "add", "run1"])).trim();
  ok(await cli(["vm", "add", "run2"]));
  vals.a = value("sk-run-a");
  vals.other = value("sk-run-other");
  await add("run-a", "RUN_A", "vm:run1", vals.a);
  await add("run-other", "RUN_OTHER", "vm:run2", vals.other);
  childScript = join(work, "child.cjs");
  writeFileSync(
    childScript,
    [
      'const fs = require("node:fs");',
      'if (process.argv[3] === "ignore-term") process.on("SIGTERM", () => {});',
      'else process.on("SIGTERM", () => process.exit(0));',
      'fs.appendFileSync(process.argv[2], process.pid + " " + (process.env.RUN_A ?? "unset") + "\\n");',
      "setInterval(() => {}, 1000);",
    ].join("\n"),
  );
});

const printA = ["node", "-e", "process.stdout.write(process.env.RUN_A ?? 'unset')"];

describe("run", () => {
  test("the child sees the VM's vars (which win) and secretsctl's own env", async () => {
    const r = await cli(["run", "--vm", "run1", "--", "/bin/sh", "-c", 'echo "$RUN_A $KEEP"'], {
      env: { RUN_A: "outer", KEEP: "kept" },
    });
    expect(ok(r)).toBe(`${vals.a} kept\n`);
    expect(r.stderr).toBe("");
    // Another VM's var is not in run1's view.
    const other = ["node", "-e", "process.stdout.write(process.env.RUN_OTHER ?? 'unset')"];
    expect(ok(await cli(["run", "--vm", "run1", "--", ...other]))).toBe("unset");
  });

  test("with a VM token over TCP: the token's own VM", async () => {
    const file = join(work, "token");
    writeFileSync(file, `${token}\n`);
    const r = await runCli(["run", "--server", d.tcp, "--token-file", file, "--", ...printA]);
    expect(ok(r)).toBe(vals.a);
  });

  test("exit codes pass through; a signal is 128 + its number", async () => {
    expect((await cli(["run", "--vm", "run1", "--", "sh", "-c", "exit 7"])).code).toBe(7);
    expect((await cli(["run", "--vm", "run1", "--", "sh", "-c", "kill -TERM $$"])).code).toBe(143);
  });

  test("usage errors: no command, a command without '--', bad --grace", async () => {
    failed(await cli(["run", "--vm", "run1"]), 2, "needs a command after '--'");
    failed(await cli(["run", "--vm", "run1", "--"]), 2, "needs a command after '--'");
    failed(await cli(["run", "--vm", "run1", "sh", "--", "x"]), 2, "takes no arguments");
    failed(await cli(["run", "--vm", "run1", "sh", "-c", "true"]), 2, "after '--'");
    failed(await cli(["run", "--vm", "run1", "--bogus", "--", "true"]), 2, "--bogus");
    failed(await cli(["run", "--vm", "run1", "--grace", "1s", "--", "true"]), 2, "--watch");
    failed(await cli(["run", "--watch", "--grace", "soon", "--", "true"]), 2, "--grace");
  });

  test("errors: unknown VM, a command that cannot start", async () => {
    failed(await cli(["run", "--vm", "nope", "--", "true"]), 3, "nope");
    failed(await cli(["run", "--vm", "run1", "--", join(work, "missing")]), 1, "cannot run");
  });

  test("SIGTERM to secretsctl reaches the child", async () => {
    const out = join(work, "term.out");
    const w = startRun(["--vm", "run1", "--", "node", childScript, out]);
    await until(() => lines(out).length === 1);
    w.proc.kill("SIGTERM");
    expect(await w.exit).toBe(0); // the child's SIGTERM handler exits 0
  });
});

describe("run --watch", () => {
  test("a rotation restarts the child with the new value; other changes do not", async () => {
    const out = join(work, "watch.out");
    const w = startRun([
      "--vm",
      "run1",
      "--watch",
      "--grace",
      "5s",
      "--",
      "node",
      childScript,
      out,
    ]);
    await until(() => lines(out).length === 1);
    const [pid1, v1] = lines(out)[0] ?? [];
    expect(v1).toBe(vals.a);

    // Outside run1's view, and the same value again: no restart.
    await rotate("run-other", value("sk-run-other"));
    await rotate("run-a", vals.a as string);
    await sleep(1500);
    expect(lines(out)).toHaveLength(1);

    const next = value("sk-run-a2");
    await rotate("run-a", next);
    await until(() => lines(out).length === 2);
    const [pid2, v2] = lines(out)[1] ?? [];
    expect(v2).toBe(next);
    expect(pid2).not.toBe(pid1);
    expect(alive(Number(pid1))).toBe(false);
    expect(w.stderr()).toContain("RUN_A changed; restarting the command");

    w.proc.kill("SIGTERM");
    expect(await w.exit).toBe(0);
    expect(alive(Number(pid2))).toBe(false);
    for (const v of [vals.a as string, next]) expect(w.stderr()).not.toContain(v);
  });

  test("--grace: a child that ignores the signal is SIGKILLed after it", async () => {
    const out = join(work, "grace.out");
    const w = startRun([
      "--vm",
      "run1",
      "--watch",
      "--grace",
      "700ms",
      "--",
      "node",
      childScript,
      out,
      "ignore-term",
    ]);
    await until(() => lines(out).length === 1);
    const [pid1] = lines(out)[0] ?? [];
    const started = Date.now();
    await rotate("run-a", value("sk-run-a3"));
    await until(() => lines(out).length === 2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(700);
    expect(alive(Number(pid1))).toBe(false);
    const [pid2] = lines(out)[1] ?? [];
    // SIGINT is forwarded: the child (which ignores only SIGTERM) dies of it: 128 + 2.
    w.proc.kill("SIGINT");
    expect(await w.exit).toBe(130);
    expect(alive(Number(pid2))).toBe(false);
  });

  test("a dropped stream is retried while the child keeps running", async () => {
    const out = join(work, "reconnect.out");
    const w = startRun(["--vm", "run1", "--watch", "--", "node", childScript, out]);
    await until(() => lines(out).length === 1);
    const [pid1] = lines(out)[0] ?? [];
    await d.restart();
    expect(alive(Number(pid1))).toBe(true);
    const next = value("sk-run-a4");
    await rotate("run-a", next);
    await until(() => lines(out).length === 2);
    expect(lines(out)[1]?.[1]).toBe(next);
    expect(lines(out)).toHaveLength(2);
    expect(w.stderr()).toMatch(/watch: .*; reconnecting in/);
    w.proc.kill("SIGTERM");
    expect(await w.exit).toBe(0);
  });

  test("a child that exits on its own ends the run with its code (no respawn)", async () => {
    const r = await cli(["run", "--vm", "run1", "--watch", "--", "sh", "-c", "exit 5"]);
    expect(r.code).toBe(5);
  });
});

// --- helpers ---

interface Running {
  proc: ChildProcess;
  exit: Promise<number | null>;
  stderr(): string;
}

/** Starts `secretsctl run ARGS` against the test daemon without waiting for it. */
function startRun(args: readonly string[]): Running {
  const proc = spawn(process.execPath, [SECRETSCTL, "run", ...args], {
    env: { PATH: process.env.PATH ?? "/usr/bin:/bin", NO_COLOR: "1", VM_AUTH_HOME: d.dataDir },
    stdio: ["ignore", "ignore", "pipe"],
  });
  const err: Buffer[] = [];
  proc.stderr?.on("data", (b: Buffer) => err.push(b));
  const exit = new Promise<number | null>((resolve) => proc.on("close", (code) => resolve(code)));
  return { proc, exit, stderr: () => Buffer.concat(err).toString("utf8") };
}

/** The file's lines as [pid, value]; none when it does not exist yet. */
function lines(file: string): string[][] {
  try {
    return readFileSync(file, "utf8")
      .split("\n")
      .filter(Boolean)
      .map((l) => l.split(" "));
  } catch {
    return [];
  }
}

async function until(cond: () => boolean, ms = 8000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out waiting");
    await sleep(50);
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
