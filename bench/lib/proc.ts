/**
 * Child processes of the bench: every child is registered and killed when the bench ends,
 * however it ends. Servers print one JSON "listening" line on stdout; workers talk over IPC
 * (request/reply with ids, see ipc.ts).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { openSync, readFileSync } from "node:fs";
import { nowMs, sleep } from "./stats.js";

const children = new Set<ChildProcess>();
let hooked = false;

/** Raises the fd limit to 65536 (root may raise the hard limit), else to the hard limit. */
const RAISE_FDS = "ulimit -n 65536 2>/dev/null || ulimit -n $(ulimit -Hn) 2>/dev/null";

/** The fd limit children get. */
export const FD_LIMIT = (() => {
  const r = spawnSync("/bin/sh", ["-c", `${RAISE_FDS}; ulimit -n`], { encoding: "utf8" });
  return Number(r.stdout.trim()) || 0;
})();

function hookExit() {
  if (hooked) return;
  hooked = true;
  process.on("exit", () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  });
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"] as const) {
    process.on(sig, () => {
      process.stderr.write(`bench: ${sig}, killing ${children.size} children\n`);
      process.exit(130);
    });
  }
}

export interface SpawnOptions {
  /** File that receives the child's stderr (and stdout unless `stdout` is "pipe"). */
  logFile: string;
  stdout?: "pipe" | "log";
  ipc?: boolean;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/**
 * Spawns `cmd args` through /bin/sh with the fd limit raised (exec keeps the pid: the returned
 * child's pid is the program's own).
 */
export function spawnChild(cmd: string, args: string[], o: SpawnOptions): ChildProcess {
  hookExit();
  const log = openSync(o.logFile, "a");
  const stdio: ("ignore" | "pipe" | "ipc" | number)[] = [
    "ignore",
    o.stdout === "pipe" ? "pipe" : log,
    log,
  ];
  if (o.ipc) stdio.push("ipc");
  const child = spawn("/bin/sh", ["-c", `${RAISE_FDS}; exec "$0" "$@"`, cmd, ...args], {
    stdio,
    env: o.env ?? process.env,
    cwd: o.cwd,
  });
  children.add(child);
  child.on("exit", () => children.delete(child));
  return child;
}

/** Resolves with the first stdout line that parses as JSON with event "listening". */
export function waitListening<T>(
  child: ChildProcess,
  what: string,
  timeoutMs = 30_000,
): Promise<T> {
  return new Promise((resolve, reject) => {
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${what}: no listening line`)), timeoutMs);
    child.stdout?.on("data", (b: Buffer) => {
      out += b.toString();
      for (const line of out.split("\n")) {
        if (!line.includes('"listening"')) continue;
        clearTimeout(timer);
        resolve(JSON.parse(line) as T);
        return;
      }
    });
    child.once("exit", (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited early (${code ?? sig})`));
    });
  });
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the child is gone. */
export async function stopChild(child: ChildProcess, graceMs = 15_000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(t);
}

/** VmRSS and VmHWM of a process, in KiB. */
export function memOf(pid: number): { rss: number; hwm: number } {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(text)?.[1] ?? NaN);
  return { rss: kb("VmRSS"), hwm: kb("VmHWM") };
}

/** Median-of-a-few VmRSS reading after a settle period (RSS moves while the GC works). */
export async function settledRss(pid: number, settleMs = 1500, samples = 5): Promise<number> {
  await sleep(settleMs);
  const v: number[] = [];
  for (let i = 0; i < samples; i++) {
    v.push(memOf(pid).rss);
    await sleep(100);
  }
  v.sort((a, b) => a - b);
  return v[Math.floor(v.length / 2)] as number;
}

/** Runs `cmd args` to completion; resolves with the wall time from spawn to exit. */
export function timeRun(
  cmd: string,
  args: string[],
  timeoutMs = 30_000,
): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const t0 = nowMs();
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    children.add(child);
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (b: Buffer) => {
      stdout += b.toString();
    });
    child.stderr.on("data", (b: Buffer) => {
      stderr += b.toString();
    });
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("exit", (code) => {
      const ms = nowMs() - t0;
      clearTimeout(timer);
      children.delete(child);
      resolve({ ms, code, stdout, stderr });
    });
  });
}

/** Kills every child still running (end of the bench). */
export async function stopAll(): Promise<void> {
  await Promise.all([...children].map((c) => stopChild(c, 5000)));
}
