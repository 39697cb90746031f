/**
 * The command half of `fetchValue` (fetch.ts): one program run without a shell, in its own
 * process group, with a timeout, an output cap, and stderr only counted (issue #11).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { type SecretsError, unavailable } from "../../errors.js";

/** Most bytes a command may print or a file may hold (the trailing newline included). */
export const FETCH_MAX_BYTES = 64 * 1024;
/** Between SIGTERM and SIGKILL. */
export const FETCH_KILL_GRACE_MS = 2_000;

/** What the caller controls about a run (fetch.ts's `FetchOptions`). */
export interface RunOptions {
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
}

/**
 * Runs `argv` and resolves with its stdout when it exits 0 within `timeoutMs`. Otherwise
 * rejects with `unavailable` naming only the program (never its arguments, stdout or
 * stderr), or with `opts.signal.reason` when aborted.
 */
export function runCommand(
  argv: readonly string[],
  timeoutMs: number,
  opts: RunOptions,
): Promise<{ stdout: Buffer; stderrBytes: number }> {
  const program = argv[0] as string;
  const fail = (what: string) => unavailable(`fetch: '${program}' ${what}`);
  return new Promise((resolve, reject) => {
    let child: ChildProcess;
    try {
      child = spawn(program, argv.slice(1), {
        cwd: "/",
        env: commandEnv(opts.env),
        stdio: ["ignore", "pipe", "pipe"],
        detached: true, // its own process group, so a kill reaches what it started
      });
    } catch (err) {
      return reject(spawnError(err as NodeJS.ErrnoException, fail));
    }
    const out = { chunks: [] as Buffer[], bytes: 0, errBytes: 0 };
    const killer = groupKiller(child);
    const timer = setTimeout(() => killer.kill("timeout"), timeoutMs);
    const onAbort = () => killer.kill("abort");
    opts.signal?.addEventListener("abort", onAbort, { once: true });
    let done = false;
    const finish = (err: unknown, stdout?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      killer.dispose();
      opts.signal?.removeEventListener("abort", onAbort);
      if (stdout === undefined) reject(err);
      else resolve({ stdout, stderrBytes: out.errBytes });
    };

    child.stdout?.on("data", (chunk: Buffer) => {
      if (killer.why !== undefined) return;
      out.bytes += chunk.length;
      if (out.bytes <= FETCH_MAX_BYTES) out.chunks.push(chunk);
      else killer.kill("overflow");
    });
    child.stderr?.on("data", (chunk: Buffer) => {
      out.errBytes += chunk.length;
    });
    // Only a failed spawn (kills go through process.kill); the `close` after it is ignored.
    child.on("error", (err: NodeJS.ErrnoException) => finish(spawnError(err, fail)));
    child.on("close", (code, sig) => {
      if (killer.why === "abort") return finish(opts.signal?.reason);
      const stderr = `(stderr: ${out.errBytes} bytes)`;
      if (killer.why === "timeout") finish(fail(`timed out after ${timeoutMs} ms`));
      else if (killer.why === "overflow") finish(fail("output over 64 KiB"));
      else if (sig !== null) finish(fail(`was killed by ${sig} ${stderr}`));
      else if (code !== 0) finish(fail(`exited with code ${code} ${stderr}`));
      else finish(undefined, Buffer.concat(out.chunks));
    });
  });
}

// --- internal ---

const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

type KillReason = "timeout" | "overflow" | "abort";

/** The daemon's PATH, HOME and LANG, then the caller's additions (undefined removes). */
function commandEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH ?? DEFAULT_PATH };
  for (const k of ["HOME", "LANG"]) if (process.env[k] !== undefined) env[k] = process.env[k];
  for (const [k, v] of Object.entries(extra)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  return env;
}

/** SIGTERM to the child's process group, SIGKILL after the grace period; the first reason wins. */
function groupKiller(child: ChildProcess) {
  let why: KillReason | undefined;
  let grace: NodeJS.Timeout | undefined;
  const signal = (sig: NodeJS.Signals) => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, sig);
    } catch {} // ESRCH: the group is gone already
  };
  return {
    get why() {
      return why;
    },
    kill(reason: KillReason) {
      if (why !== undefined) return;
      why = reason;
      signal("SIGTERM");
      grace = setTimeout(() => {
        signal("SIGKILL");
        // A descendant that left the group could hold the pipes open forever.
        child.stdout?.destroy();
        child.stderr?.destroy();
      }, FETCH_KILL_GRACE_MS);
    },
    dispose: () => clearTimeout(grace),
  };
}

function spawnError(err: NodeJS.ErrnoException, fail: (what: string) => SecretsError) {
  // Never `cause`: Node's spawn error carries the whole argv (spawnargs).
  if (err.code === "ENOENT") return fail("not found (ENOENT)");
  if (err.code === "EACCES" || err.code === "EPERM") return fail(`permission denied (${err.code})`);
  return fail(`could not start (${err.code ?? "unknown error"})`);
}
