/**
 * Runs the BUILT secretsctl (dist/bin/secretsctl.js) as a child process with chosen args,
 * environment and stdin, and records every stderr it printed so a test file can prove that
 * no secret value ever reached an error or diagnostic.
 */
import { spawn } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, expect } from "vitest";
import type { TestDaemon } from "./daemon.js";
import { startDaemon } from "./daemon.js";
import { secretValue, track } from "./values.js";

const ROOT = resolve(import.meta.dirname, "../..");
export const SECRETSCTL = join(ROOT, "dist/bin/secretsctl.js");

export interface CliResult {
  stdout: string;
  stderr: string;
  code: number | null;
}

export interface CliOptions {
  /** Added to a minimal environment (PATH, a HOME without a daemon, NO_COLOR). */
  env?: Record<string, string>;
  /** Bytes for stdin; without it stdin is /dev/null (never a terminal). */
  stdin?: string | Buffer;
}

/** Every stderr printed by a CLI run of this test file. */
const stderrSeen: string[] = [];
/** Every secret value this test file gave the CLI. */
export const valuesUsed: string[] = [];

/**
 * Fails with a clear message when the bundle is missing or older than its sources:
 * `npm test` builds first; a bare `vitest run` needs `node scripts/build.mjs`.
 */
function assertBuilt(): void {
  if (!existsSync(SECRETSCTL)) {
    throw new Error(`${SECRETSCTL} is missing: run \`node scripts/build.mjs\` (npm test does)`);
  }
  const built = statSync(SECRETSCTL).mtimeMs;
  // The CLI bundles client/ (renderers included) and proto/.
  const stale = [...walk(join(ROOT, "client")), ...walk(join(ROOT, "proto"))].find(
    (f) => !f.endsWith(".test.ts") && statSync(f).mtimeMs > built,
  );
  if (stale) {
    throw new Error(`${SECRETSCTL} is older than ${stale}: run \`node scripts/build.mjs\``);
  }
}

/** Runs secretsctl; resolves with its output and exit code (never rejects on exit codes). */
export function runCli(args: readonly string[], opts: CliOptions = {}): Promise<CliResult> {
  const env = {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: join(tmpdir(), "secretsctl-test-home-without-daemon"),
    NO_COLOR: "1",
    ...opts.env,
  };
  const child = spawn(process.execPath, [SECRETSCTL, ...args], {
    env,
    stdio: [opts.stdin === undefined ? "ignore" : "pipe", "pipe", "pipe"],
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on("data", (b: Buffer) => out.push(b));
  child.stderr?.on("data", (b: Buffer) => err.push(b));
  if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);
  return new Promise((res, rej) => {
    child.on("error", rej);
    child.on("close", (code) => {
      const r = {
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
        code,
      };
      stderrSeen.push(r.stderr);
      res(r);
    });
  });
}

/** A runner bound to a test daemon through $VM_AUTH_HOME (the CLI's default socket). */
function cliFor(d: TestDaemon) {
  return (args: readonly string[], opts: CliOptions = {}) =>
    runCli(args, { ...opts, env: { VM_AUTH_HOME: d.dataDir, ...opts.env } });
}

/** A fresh secret value, registered for the suite's leak check and this file's stderr check. */
export function value(prefix = "sk-cli"): string {
  const v = secretValue(prefix);
  valuesUsed.push(v);
  return v;
}

/** Registers a hand-made value (quotes, `$`, newlines) like `value` does. */
export function use<T extends string>(v: T): T {
  valuesUsed.push(track(v));
  return v;
}

/** Asserts a run succeeded (exit 0), and returns its stdout. */
export function ok(r: CliResult): string {
  expect(r.code, r.stderr).toBe(0);
  return r.stdout;
}

/**
 * Asserts the run failed the way every failure must: the exit code, nothing on stdout, and
 * exactly one stderr line `secretsctl: …` containing `mention` (the field it names).
 */
export function failed(r: CliResult, code: number, mention: string | RegExp): string {
  expect(r.code, r.stderr).toBe(code);
  expect(r.stdout).toBe("");
  const lines = r.stderr.split("\n");
  expect(lines.at(-1)).toBe("");
  expect(lines.slice(0, -1), r.stderr).toHaveLength(1);
  const msg = lines[0] ?? "";
  expect(msg.startsWith("secretsctl: ")).toBe(true);
  if (typeof mention === "string") expect(msg).toContain(mention);
  else expect(msg).toMatch(mention);
  return msg;
}

/** Asserts no value this file used appears in any stderr the CLI printed. */
function expectNoValueInStderr(): void {
  expect(valuesUsed.length).toBeGreaterThan(0);
  const all = stderrSeen.join("\n");
  for (const v of valuesUsed) {
    // Short fragments could match by chance; every value used here is long and unique.
    if (v.length < 8) continue;
    expect(all.includes(v), `a secret value (${v.slice(0, 6)}…) reached stderr`).toBe(false);
  }
}

// --- internal ---

function* walk(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* walk(p);
    else if (p.endsWith(".ts")) yield p;
  }
}

/** A secret as `secretsctl list --json` prints it. */
export interface SecretJson {
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

/** `list --json` through the given CLI runner. */
export async function listJson(
  cli: (args: readonly string[], opts?: CliOptions) => Promise<CliResult>,
  ...args: string[]
): Promise<SecretJson[]> {
  return (JSON.parse(ok(await cli(["list", "--json", ...args]))) as { secrets: SecretJson[] })
    .secrets;
}

/** A CLI runner bound to one daemon. */
export type CliRunner = (args: readonly string[], opts?: CliOptions) => Promise<CliResult>;

/** What cliSuite sets up: filled in by its beforeAll. */
export interface CliSuite {
  d: TestDaemon;
  cli: CliRunner;
  /** A scratch dir outside the suite root (the leak check would flag .env fixtures there). */
  work: string;
}

/**
 * Registers the hooks every CLI test file needs: a built CLI, a real daemon, a runner bound to
 * it and a scratch dir before the file's tests; after them, the check that no secret value
 * reached stderr, then teardown. Read the fields in a later beforeAll or in tests.
 */
export function cliSuite(workPrefix: string): CliSuite {
  const s = {} as CliSuite;
  beforeAll(async () => {
    assertBuilt();
    s.d = await startDaemon();
    s.cli = cliFor(s.d);
    s.work = await mkdtemp(join(tmpdir(), workPrefix));
  });
  afterAll(async () => {
    expectNoValueInStderr();
    await s.d?.dispose();
    if (s.work) await rm(s.work, { recursive: true, force: true });
  });
  return s;
}
