/**
 * Runs secretsd from source (tsx) as a child process with `--expose-gc` and the GC-on-signal
 * preload, for tests that measure the daemon's own memory: `rss()` collects garbage in the
 * child first, then reads VmRSS from /proc/<pid>/status.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "../..");

/** What `memory()` measures. */
export interface Memory {
  rss: number;
  heapUsed: number;
  external: number;
  /** Open file descriptors (sockets included), from /proc/<pid>/fd. */
  fds: number;
}

/** A spawned secretsd: its addresses, its memory, and how to stop it. */
export interface SourceDaemon {
  child: ChildProcess;
  socket: string;
  tcp: string;
  /** Memory after a full GC in the daemon, in bytes: VmRSS, and V8's heap and external. */
  memory(): Promise<Memory>;
  stop(): Promise<void>;
}

/** Starts secretsd on a unix socket in `dataDir` and TCP 127.0.0.1:0; `env` adds SECRETSD_* settings. */
export function spawnSourceDaemon(
  dataDir: string,
  env: Record<string, string> = {},
): Promise<SourceDaemon> {
  const child = spawn(
    process.execPath,
    [
      "--expose-gc",
      "--import",
      "tsx",
      "--import",
      join(ROOT, "test/helpers/gc-on-signal.ts"),
      join(ROOT, "server/main.ts"),
      "--data-dir",
      dataDir,
      "--listen",
      "127.0.0.1:0",
      "--log-level",
      "warn",
    ],
    { cwd: ROOT, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] },
  );
  const log = createWriteStream(join(dataDir, `secretsd-${Date.now()}.log`), { flags: "a" });
  const gcWaiters: ((line: string) => void)[] = [];
  let stderr = "";
  let tail = "";
  child.stderr?.on("data", (b: Buffer) => {
    log.write(b);
    stderr += b.toString();
    tail = (tail + b.toString()).slice(-2000);
    let nl = stderr.indexOf("\n");
    while (nl >= 0) {
      const line = stderr.slice(0, nl);
      if (line.includes('"event":"gc"')) gcWaiters.shift()?.(line);
      stderr = stderr.slice(nl + 1);
      nl = stderr.indexOf("\n");
    }
  });
  const exited = new Promise<void>((res) => child.on("exit", () => res()));
  return new Promise((res, rej) => {
    let out = "";
    child.stdout?.on("data", (b: Buffer) => {
      out += b.toString();
      const line = out.split("\n").find((l) => l.includes('"listening"'));
      if (!line) return;
      const addr = JSON.parse(line) as { socket: string; tcp: string };
      res({
        child,
        socket: addr.socket,
        tcp: addr.tcp,
        async memory() {
          const collected = new Promise<string>((done) => {
            gcWaiters.push(done);
            child.kill("SIGUSR2");
          });
          const died = exited.then(() => {
            throw new Error(`secretsd exited (${child.exitCode ?? child.signalCode}): ${tail}`);
          });
          const line = await Promise.race([collected, died]);
          const v8 = JSON.parse(line) as { heapUsed: number; external: number };
          const status = await readFile(`/proc/${child.pid}/status`, "utf8");
          const kb = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1]);
          const fds = (await readdir(`/proc/${child.pid}/fd`)).length;
          return { rss: kb * 1024, heapUsed: v8.heapUsed, external: v8.external, fds };
        },
        async stop() {
          child.kill("SIGTERM");
          await exited;
          log.end();
        },
      });
    });
    void exited.then(() => rej(new Error(`secretsd exited before listening: ${stderr.trim()}`)));
  });
}
