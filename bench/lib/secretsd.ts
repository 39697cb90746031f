/**
 * Runs the built secretsd (dist/bin/secretsd.js) as a child process: temp data dir on the
 * real disk, unix socket in it for local admin (setup and rotations), TCP on a free loopback
 * port for VMs. Default log level and heartbeat: the production configuration.
 */
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { VmAuthClient } from "../../client/index.js";
import { createClient } from "../../client/index.js";
import { spawnChild, stopChild, waitListening } from "./proc.js";
import { SECRETSD } from "./workers.js";

export interface Secretsd {
  child: ChildProcess;
  pid: number;
  tcp: string;
  socket: string;
  dataDir: string;
  /** Local admin over the unix socket. */
  admin: VmAuthClient;
  stop(): Promise<void>;
}

export async function startSecretsd(opts: {
  dataDir: string;
  logDir: string;
  tag: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeArgs?: string[];
  /** Another secretsd build (experiments); default the copy of dist/bin/secretsd.js. */
  program?: string;
}): Promise<Secretsd> {
  const program = opts.program ?? SECRETSD;
  if (!existsSync(program)) throw new Error(`${program} is missing (bench/main.ts copies it)`);
  const socket = join(opts.dataDir, "s.sock");
  const child = spawnChild(
    process.execPath,
    [
      ...(opts.nodeArgs ?? []),
      program,
      "--data-dir",
      opts.dataDir,
      "--listen",
      "127.0.0.1:0",
      "--socket",
      socket,
    ],
    { logFile: join(opts.logDir, `secretsd-${opts.tag}.log`), stdout: "pipe" },
  );
  const info = await waitListening<{ tcp: string; socket: string }>(child, "secretsd");
  const admin = createClient({ socket: info.socket, deadlineMs: 60_000 });
  return {
    child,
    pid: child.pid as number,
    tcp: info.tcp,
    socket: info.socket,
    dataDir: opts.dataDir,
    admin,
    async stop() {
      admin.close();
      await stopChild(child, 20_000);
    },
  };
}

/** Runs `fn` over `items` with at most `concurrency` in flight. */
export async function pool<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

/** A value shaped like an API key: `prefix` + base64url, `len` characters in all. */
export function fakeKey(len: number, prefix = "sk-"): string {
  const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  let s = prefix;
  while (s.length < len) s += chars[Math.floor(Math.random() * chars.length)];
  return s.slice(0, len);
}
