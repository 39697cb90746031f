/**
 * The child process of `secretsctl run`: started with an environment, stdio inherited, the
 * signals secretsctl receives (SIGINT, SIGTERM, SIGHUP) forwarded to it, and stopped with a
 * signal, a grace period and SIGKILL. Values travel only in the child's environment: never in
 * its argv, never in a message.
 */
import type { ChildProcess } from "node:child_process";
import { spawn } from "node:child_process";
import { constants } from "node:os";
import { UsageError } from "./errors.js";

/** How a child ended: its exit status, or the signal that killed it. */
export interface ChildExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A started child. */
export interface Child {
  readonly pid: number | undefined;
  /** Resolves once the child has exited (never rejects). */
  readonly exited: Promise<ChildExit>;
  /** Whether it has exited. */
  readonly done: boolean;
  /** Sends a signal (ignored once the child has exited). */
  kill(signal: NodeJS.Signals): void;
  /**
   * Sends `signal`, waits up to `graceMs` for the child to exit, then sends SIGKILL; resolves
   * once it has exited.
   */
  stop(signal: NodeJS.Signals, graceMs: number): Promise<ChildExit>;
}

/** The signals secretsctl forwards to its child. */
export const FORWARDED: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Starts `command` with `env`, stdio inherited.
 * @throws Error when it cannot be started (not found, not executable), naming only the
 *   program, never an argument.
 */
export async function startChild(
  command: readonly string[],
  env: NodeJS.ProcessEnv,
): Promise<Child> {
  const [file, ...args] = command;
  if (!file) throw new UsageError("run needs a command after '--'");
  const proc: ChildProcess = spawn(file, args, { env, stdio: "inherit" });
  await new Promise<void>((resolve, reject) => {
    proc.once("spawn", () => resolve());
    proc.once("error", (err: NodeJS.ErrnoException) => {
      reject(new Error(`cannot run '${file}': ${err.code ?? err.message}`));
    });
  });
  let done = false;
  const exited = new Promise<ChildExit>((resolve) => {
    proc.once("exit", (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
  });
  const kill = (signal: NodeJS.Signals) => {
    if (done) return;
    try {
      proc.kill(signal);
    } catch {
      // Already gone (ESRCH): its exit event is on the way.
    }
  };
  return {
    pid: proc.pid,
    exited,
    get done() {
      return done;
    },
    kill,
    async stop(signal, graceMs) {
      kill(signal);
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<"grace">((resolve) => {
        timer = setTimeout(() => resolve("grace"), graceMs);
      });
      const first = await Promise.race([exited, graceOver]);
      clearTimeout(timer);
      if (first === "grace") kill("SIGKILL");
      return exited;
    },
  };
}

/** The exit code a shell would report: the status, or 128 + the signal's number. */
export function exitCodeOf(e: ChildExit): number {
  if (e.code !== null) return e.code;
  const n = e.signal ? constants.signals[e.signal] : undefined;
  return n === undefined ? 1 : 128 + n;
}

/**
 * Calls `handler` for each forwarded signal secretsctl receives; returns the function that
 * removes the listeners. While installed, these signals no longer end secretsctl itself.
 */
export function onForwardedSignals(handler: (signal: NodeJS.Signals) => void): () => void {
  const listeners = FORWARDED.map((s) => {
    const l = () => handler(s);
    process.on(s, l);
    return [s, l] as const;
  });
  return () => {
    for (const [s, l] of listeners) process.off(s, l);
  };
}

/**
 * Parses `--signal`: a signal name with or without `SIG` (TERM, SIGHUP, sigusr1).
 * @throws UsageError naming --signal
 */
export function parseSignal(raw: string): NodeJS.Signals {
  const name = (raw.toUpperCase().startsWith("SIG") ? raw : `SIG${raw}`).toUpperCase();
  if (!(name in constants.signals)) {
    throw new UsageError("--signal must be a signal name such as SIGTERM, SIGINT or SIGHUP");
  }
  return name as NodeJS.Signals;
}

/**
 * Parses `--grace`: a number with ms, s or m (500ms, 10s, 2m); a bare number is seconds.
 * @throws UsageError naming --grace
 */
export function parseGrace(raw: string): number {
  const m = /^([0-9]{1,7})(ms|s|m)?$/.exec(raw);
  if (!m) throw new UsageError("--grace must be a duration such as 500ms, 10s or 2m");
  const unit = m[2] ?? "s";
  return Number(m[1]) * (unit === "ms" ? 1 : unit === "s" ? 1000 : 60_000);
}
