/**
 * The package as a user gets it: a clean copy of the repo (no dist/, no node_modules of its
 * own) is packed with `npm pack` (prepack builds), the tarball is installed with
 * `npm install -g` into a temp prefix, and the three installed commands are run by their
 * bin links (shebang, exec bit) with no dev tooling: secretsd serves, secretsctl talks to it,
 * the shim prints its help. Packing in a copy keeps the build away from the dist/ other test
 * files run.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { cpSync, createWriteStream, existsSync, readdirSync, statSync, symlinkSync } from "node:fs";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { secretValue, testRoot } from "./helpers/values.js";

const ROOT = resolve(import.meta.dirname, "..");
/** Not copied: what a fresh clone has not got, or what is not source. */
const SKIP = new Set(["node_modules", "dist", ".git", "coverage", ".bench-tmp"]);
const DEV_ONLY = [
  "tsx",
  "typescript",
  "vitest",
  "esbuild",
  "@biomejs/biome",
  "@bufbuild/buf",
  "@bufbuild/protoc-gen-es",
  "oidc-provider",
  "fast-check",
];

interface Run {
  stdout: string;
  stderr: string;
  code: number | null;
}

/** An environment without the npm_* variables of the `npm test` that runs us. */
function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (k.startsWith("npm_") && k !== "npm_config_cache" && k !== "npm_config_registry") continue;
    env[k] = v;
  }
  // `#!/usr/bin/env node` finds this node first.
  env.PATH = `${dirname(process.execPath)}:${process.env.PATH ?? "/usr/bin:/bin"}`;
  return { ...env, ...extra };
}

function run(cmd: string, args: string[], opts: { cwd?: string; stdin?: string } = {}) {
  return new Promise<Run>((res, rej) => {
    const child = execFile(
      cmd,
      args,
      { cwd: opts.cwd ?? ROOT, env: cleanEnv(), maxBuffer: 64 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : null) : 0;
        if (err && code === null) rej(err);
        else res({ stdout, stderr, code });
      },
    );
    if (opts.stdin !== undefined) child.stdin?.end(opts.stdin);
    else child.stdin?.end();
  });
}

function ok(r: Run, what: string): Run {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}:\n${r.stderr}\n${r.stdout}`);
  return r;
}

let tmp: string;
let prefix: string;
let bin: (name: string) => string;
let tarball: string;
let packed: string[];

beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), "vm-auth-package-"));
  const src = join(tmp, "src");
  cpSync(ROOT, src, {
    recursive: true,
    filter: (from) => from === ROOT || !SKIP.has(from.slice(ROOT.length + 1).split("/")[0] ?? ""),
  });
  // The build (esbuild) is dev tooling: the copy borrows the checkout's.
  symlinkSync(join(ROOT, "node_modules"), join(src, "node_modules"));
  const out = join(tmp, "out");
  await mkdir(out);
  ok(await run("npm", ["pack", "--pack-destination", out], { cwd: src }), "npm pack");
  const tgz = readdirSync(out).filter((f) => f.endsWith(".tgz"));
  expect(tgz).toHaveLength(1);
  tarball = join(out, tgz[0] ?? "");
  packed = ok(await run("tar", ["tzf", tarball]), "tar tzf")
    .stdout.split("\n")
    .filter(Boolean);
  prefix = join(tmp, "prefix");
  ok(
    await run(
      "npm",
      ["install", "-g", "--prefix", prefix, "--no-audit", "--no-fund", "--prefer-offline", tarball],
      { cwd: tmp },
    ),
    "npm install -g",
  );
  bin = (name) => join(prefix, "bin", name);
}, 180_000);

afterAll(async () => {
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

describe("npm pack + npm install -g", () => {
  test("the tarball holds the three bundles, package.json and README, no sources or tests", () => {
    expect([...packed].sort()).toEqual(
      [
        "package/README.md",
        "package/dist/bin/secretsctl.js",
        "package/dist/bin/secretsd.js",
        "package/dist/shim.cjs",
        "package/package.json",
      ].sort(),
    );
  });

  test("three executable bin links; no dev dependency installed", async () => {
    for (const name of ["secretsd", "secretsctl", "vm-auth-shim"]) {
      const st = statSync(bin(name));
      expect(st.mode & 0o111, name).not.toBe(0);
      expect((await readFile(bin(name), "utf8")).startsWith("#!/usr/bin/env node\n"), name).toBe(
        true,
      );
    }
    const modules = join(prefix, "lib/node_modules/vm-auth/node_modules");
    for (const dev of DEV_ONLY) expect(existsSync(join(modules, dev)), dev).toBe(false);
    // What runs is there.
    for (const dep of ["@grpc/grpc-js", "@bufbuild/protobuf", "libsodium-wrappers-sumo", "lowdb"]) {
      expect(existsSync(join(modules, dep)), dep).toBe(true);
    }
  });

  test("secretsd serves; secretsctl adds and lists over its socket; the shim runs", async () => {
    expect(ok(await run(bin("secretsd"), ["--version"]), "secretsd --version").stdout.trim()).toBe(
      JSON.parse(await readFile(join(ROOT, "package.json"), "utf8")).version,
    );
    expect(ok(await run(bin("vm-auth-shim"), ["--help"]), "vm-auth-shim --help").stdout).toMatch(
      /^vm-auth-shim \d/,
    );

    const dataDir = await mkdtemp(join(testRoot() ?? tmp, "vm-auth-pkg-"));
    const { child, socket, exited } = await startInstalled(dataDir);
    try {
      const ctl = ([cmd, ...args]: string[], stdin?: string) =>
        run(
          bin("secretsctl"),
          [cmd ?? "", "--socket", socket, ...args],
          stdin === undefined ? {} : { stdin },
        );
      ok(await ctl(["status"]), "secretsctl status");
      const value = secretValue();
      ok(await ctl(["add", "openai"], `${value}\n`), "secretsctl add");
      const list = ok(await ctl(["list", "--json"]), "secretsctl list").stdout;
      expect(list).toContain("openai");
      expect(list).not.toContain(value);
      const got = ok(await ctl(["get", "openai"]), "secretsctl get").stdout;
      expect(got.trim()).toBe(value);
    } finally {
      child.kill("SIGTERM");
      expect((await exited).code).toBe(0);
    }
  });
});

/** Runs the installed secretsd by its bin link; resolves at its listening line. */
function startInstalled(dataDir: string) {
  const child: ChildProcess = spawn(
    bin("secretsd"),
    ["--data-dir", dataDir, "--listen", "127.0.0.1:0"],
    { env: cleanEnv(), stdio: ["ignore", "pipe", "pipe"] },
  );
  // Its log goes under the suite root, for the leak check.
  const log = createWriteStream(join(dataDir, "secretsd.log"), { flags: "a" });
  let stderr = "";
  child.stderr?.on("data", (b: Buffer) => {
    stderr += b.toString();
    log.write(b);
  });
  const exited = new Promise<{ code: number | null }>((res) =>
    child.on("exit", (code) => {
      log.end();
      res({ code });
    }),
  );
  return new Promise<{ child: ChildProcess; socket: string; exited: typeof exited }>((res, rej) => {
    let out = "";
    child.stdout?.on("data", (b: Buffer) => {
      out += b.toString();
      const line = out.split("\n").find((l) => l.includes('"listening"'));
      if (line) res({ child, socket: (JSON.parse(line) as { socket: string }).socket, exited });
    });
    void exited.then((e) => rej(new Error(`secretsd exited (${e.code}): ${stderr.trim()}`)));
  });
}
