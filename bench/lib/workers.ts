/**
 * The bench's child programs (bench/children/*.ts) are bundled by esbuild the way
 * scripts/build.mjs bundles secretsd (ESM, node_modules external), so that every server and
 * load generator runs as a plain `node file.mjs` process: no TypeScript loader in any
 * measured process.
 */
import { existsSync } from "node:fs";
import { copyFile, mkdir, rm } from "node:fs/promises";
import { dirname, join, resolve } from "node:path";
import { build } from "esbuild";
import { Peer } from "./ipc.js";
import { spawnChild, waitListening } from "./proc.js";

export const ROOT = resolve(import.meta.dirname, "../..");
const OUT = join(ROOT, ".bench-tmp", "children");
/** The built programs, as `npm run build` leaves them. */
export const BUILT = {
  secretsd: join(ROOT, "dist/bin/secretsd.js"),
  shim: join(ROOT, "dist/shim.cjs"),
};
/**
 * The copies every part runs: taken once at the start, so that a rebuild of dist/ by someone
 * else during the bench cannot change the program half-way through a run.
 */
export const SECRETSD = join(ROOT, ".bench-tmp", "bin", "secretsd.js");
export const SHIM = join(ROOT, ".bench-tmp", "bin", "shim.cjs");

export async function snapshotPrograms(): Promise<void> {
  await mkdir(dirname(SECRETSD), { recursive: true });
  await copyFile(BUILT.secretsd, SECRETSD);
  await rm(SHIM, { force: true });
  if (existsSync(BUILT.shim)) await copyFile(BUILT.shim, SHIM);
}

export type ChildName =
  | "bare-server"
  | "loadgen"
  | "watch-client"
  | "store-worker"
  | "oauth-scheduler-sim";

export async function bundleChildren(): Promise<void> {
  await mkdir(OUT, { recursive: true });
  const names: ChildName[] = [
    "bare-server",
    "loadgen",
    "watch-client",
    "store-worker",
    "oauth-scheduler-sim",
  ];
  await build({
    entryPoints: names.map((n) => join(ROOT, "bench/children", `${n}.ts`)),
    outdir: OUT,
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    target: "node20",
    format: "esm",
    packages: "external",
    logLevel: "warning",
  });
}

function childPath(name: ChildName): string {
  return join(OUT, `${name}.mjs`);
}

/** Starts a worker (IPC) process. */
export function spawnWorker(
  name: ChildName,
  logDir: string,
  tag: string,
  nodeArgs: string[] = [],
  env?: NodeJS.ProcessEnv,
): Peer {
  const child = spawnChild(process.execPath, [...nodeArgs, childPath(name)], {
    logFile: join(logDir, `${name}-${tag}.log`),
    ipc: true,
    env: env ?? process.env,
  });
  return new Peer(child, `${name}-${tag}`);
}

/** Starts a server program that prints a JSON listening line; resolves with it. */
export async function spawnServer<T>(
  name: ChildName,
  args: string[],
  logDir: string,
  tag: string,
): Promise<{ child: ReturnType<typeof spawnChild>; info: T }> {
  const child = spawnChild(process.execPath, [childPath(name), ...args], {
    logFile: join(logDir, `${name}-${tag}.log`),
    stdout: "pipe",
  });
  const info = await waitListening<T>(child, `${name}-${tag}`);
  return { child, info };
}
