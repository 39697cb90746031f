/**
 * Runs the BUILT secretsd (dist/bin/secretsd.js) as a child process, for tests that need a
 * real process: kill -9, a second daemon on one data dir, signals.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import { join, resolve } from "node:path";

export const SECRETSD = resolve(import.meta.dirname, "../../dist/bin/secretsd.js");

export interface DaemonProcess {
  child: ChildProcess;
  socket: string | null;
  tcp: string | null;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
}

/** Starts secretsd; resolves once it prints its listening line, rejects if it exits first. */
export function spawnDaemon(
  dataDir: string,
  args: string[] = [],
  opts: { env?: NodeJS.ProcessEnv } = {},
): Promise<DaemonProcess> {
  if (!existsSync(SECRETSD)) throw new Error(`${SECRETSD} is missing: run npm run build`);
  const child = spawn(process.execPath, [SECRETSD, "--data-dir", dataDir, ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    ...(opts.env ? { env: opts.env } : {}),
  });
  let stderr = "";
  mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const log = createWriteStream(join(dataDir, `secretsd-${Date.now()}.log`), { flags: "a" });
  child.stderr?.on("data", (b: Buffer) => {
    stderr += b.toString();
    log.write(b);
  });
  const exited = new Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    stderr: string;
  }>((res) =>
    child.on("exit", (code, signal) => {
      log.end();
      res({ code, signal, stderr });
    }),
  );
  return new Promise((res, rej) => {
    let out = "";
    child.stdout?.on("data", (b: Buffer) => {
      out += b.toString();
      const line = out.split("\n").find((l) => l.includes('"listening"'));
      if (line) {
        const addr = JSON.parse(line) as { socket: string | null; tcp: string | null };
        res({ child, socket: addr.socket, tcp: addr.tcp, exited });
      }
    });
    void exited.then((e) =>
      rej(new Error(`secretsd exited (${e.code ?? e.signal}): ${e.stderr.trim()}`)),
    );
  });
}
