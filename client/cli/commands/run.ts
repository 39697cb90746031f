/**
 * `run [--vm VM] [--watch] -- CMD ARGS…`: runs a command with a VM's env, as `doppler run`,
 * `infisical run` and `op run` do. The child gets secretsctl's own environment plus the VM's
 * variables (the VM's win on a clash), stdio inherited; SIGINT, SIGTERM and SIGHUP are
 * forwarded to it, and secretsctl exits with its exit code (128 + N when signal N killed it).
 * Values go only into the child's environment: never to argv, stdout or stderr.
 *
 * Over the unix socket `--vm` names the VM; with a VM token (TCP) the token's own VM is used.
 *
 * `--watch` follows WatchEnv instead of one GetEnv: the child starts on the first snapshot,
 * and a later snapshot whose name → value map differs restarts it (`--signal`, default
 * SIGTERM; `--grace`, default 10s, for it to exit; then SIGKILL; then start it again with the
 * new env). Heartbeats and equal snapshots do nothing. A dropped stream is retried with
 * backoff while the child keeps running. When the child exits on its own, secretsctl exits
 * with its code: it is not respawned. After a forwarded SIGINT or SIGTERM it is not
 * restarted either.
 */
import type { VmAuthClient } from "../../index.js";
import type { Child } from "../child.js";
import { exitCodeOf, onForwardedSignals, parseGrace, parseSignal, startChild } from "../child.js";
import { defineClientCommand } from "../command.js";
import { currentTarget } from "../connect.js";
import { describeError, UsageError } from "../errors.js";
import { note } from "../output.js";

/** A var as GetEnv and WatchEnv carry it. */
interface Var {
  name: string;
  value: string;
}

type Env = ReadonlyMap<string, string>;

/** The command after `--`, taken from the raw command line in `setup` (one run per process). */
let command: string[] = [];

const USAGE = "run needs a command after '--': secretsctl run [--vm VM] [--watch] -- CMD ARGS…";

const inner = defineClientCommand({
  meta: {
    name: "run",
    description:
      "run a command with a VM's env (`secretsctl run --vm web1 -- node app.js`); --watch restarts it when the env changes",
  },
  args: {
    vm: {
      type: "string",
      valueHint: "name",
      description: "the VM whose env to use (over the socket; a VM token uses its own VM)",
    },
    watch: {
      type: "boolean",
      description: "follow the env and restart the command when a value changes",
    },
    signal: {
      type: "string",
      valueHint: "SIG",
      description:
        "with --watch: the signal that stops the command for a restart (default SIGTERM)",
    },
    grace: {
      type: "string",
      valueHint: "duration",
      description:
        "with --watch: how long the command has to exit before SIGKILL (default 10s; 500ms, 10s, 2m)",
    },
  },
  async run({ args, client }) {
    if (!args.watch && (args.signal !== undefined || args.grace !== undefined)) {
      throw new UsageError("--signal and --grace are for --watch");
    }
    const signal = args.signal === undefined ? "SIGTERM" : parseSignal(args.signal);
    const graceMs = args.grace === undefined ? 10_000 : parseGrace(args.grace);
    const vm = args.vm ?? "";
    process.exitCode = args.watch
      ? await runWatching(client, vm, { signal, graceMs })
      : await runOnce(client, vm);
  },
});

/** The client command, with the part after `--` taken off before its strict flag check. */
export default {
  ...inner,
  setup(ctx: Parameters<NonNullable<typeof inner.setup>>[0]) {
    const raw = ctx.rawArgs;
    const dashes = raw.indexOf("--");
    if (dashes === -1 || dashes === raw.length - 1) throw new UsageError(USAGE);
    command = raw.slice(dashes + 1);
    ctx.rawArgs = raw.slice(0, dashes);
    try {
      return inner.setup?.(ctx);
    } finally {
      ctx.rawArgs = raw;
    }
  },
} satisfies typeof inner;

// --- internal ---

async function runOnce(client: VmAuthClient, vm: string): Promise<number> {
  const res = await client.env.getEnv({ vm });
  const child = await startChild(command, childEnv(toEnv(res.snapshot?.vars ?? [])));
  const off = onForwardedSignals((s) => child.kill(s));
  try {
    return exitCodeOf(await child.exited);
  } finally {
    off();
  }
}

interface WatchOptions {
  signal: NodeJS.Signals;
  graceMs: number;
}

/** Reconnect delays: capped exponential backoff with full jitter. */
const BACKOFF = { initialMs: 500, maxMs: 30_000 };
/** Silence (no frame at all) after which the stream is taken for dead, until a heartbeat says. */
const DEFAULT_SILENCE_MS = 3 * 15_000;

async function runWatching(client: VmAuthClient, vm: string, opts: WatchOptions): Promise<number> {
  const stop = new AbortController();
  let finish!: (code: number) => void;
  let fail!: (err: unknown) => void;
  const result = new Promise<number>((resolve, reject) => {
    finish = resolve;
    fail = reject;
  });

  let child: Child | undefined;
  /** The env the current child was started with, and the latest one the server sent. */
  let running: Env | undefined;
  let desired: Env | undefined;
  /** The child being stopped for a restart: its exit is not the end of the run. */
  let stopping: Child | undefined;
  let restarting = false;
  /** A forwarded SIGINT or SIGTERM: wait for the child, restart nothing. */
  let ending = false;

  const follow = (c: Child) => {
    void c.exited.then((e) => {
      if (c === child && c !== stopping) finish(exitCodeOf(e));
    });
  };

  const converge = async () => {
    while (!ending && child && desired && running && !sameEnv(desired, running)) {
      const next = desired;
      const changed = changedNames(running, next);
      const old = child;
      stopping = old;
      const e = await old.stop(opts.signal, opts.graceMs);
      if (ending) return finish(exitCodeOf(e));
      note(`${describeNames(changed)} changed; restarting the command`);
      child = await startChild(command, childEnv(next));
      running = next;
      stopping = undefined;
      follow(child);
    }
  };

  const update = async (env: Env) => {
    desired = env;
    if (!child) {
      child = await startChild(command, childEnv(env));
      running = env;
      follow(child);
      // A signal that came while it was starting ended the run: pass it on.
      if (ending) child.kill("SIGTERM");
      return;
    }
    if (restarting) return;
    restarting = true;
    void converge()
      .catch(fail)
      .finally(() => {
        restarting = false;
      });
  };

  const watch = async () => {
    let attempt = 0;
    let started = false;
    while (!stop.signal.aborted) {
      const ac = new AbortController();
      const abort = () => ac.abort();
      stop.signal.addEventListener("abort", abort, { once: true });
      let silenceMs = DEFAULT_SILENCE_MS;
      let silent = false;
      let timer: NodeJS.Timeout | undefined;
      const arm = () => {
        clearTimeout(timer);
        timer = setTimeout(() => {
          silent = true;
          ac.abort();
        }, silenceMs);
      };
      let error: unknown;
      try {
        arm();
        const frames = client.env.watchEnv({ vm, sinceRevision: 0n }, { signal: ac.signal });
        for await (const frame of frames) {
          arm();
          attempt = 0;
          if (frame.event.case === "snapshot") {
            try {
              await update(toEnv(frame.event.value.vars));
            } catch (err) {
              // The command could not be started: that ends the run, not the stream.
              fail(err);
              return;
            }
            started = true;
          } else if (frame.event.case === "heartbeat") {
            const every = frame.event.value.intervalMs;
            if (every > 0 && 3 * every !== silenceMs) {
              silenceMs = 3 * every;
              arm();
            }
          }
        }
        error = new Error("secretsd ended the stream");
      } catch (err) {
        error = silent ? new Error(`no word from secretsd in ${silenceMs / 1000}s`) : err;
      } finally {
        clearTimeout(timer);
        stop.signal.removeEventListener("abort", abort);
      }
      if (stop.signal.aborted) return;
      // Before the first snapshot there is no child to keep: fail as any command does.
      if (!started) throw error;
      const cap = Math.min(BACKOFF.maxMs, BACKOFF.initialMs * 2 ** Math.min(attempt++, 16));
      const delay = Math.floor(Math.random() * cap);
      const why = describeError(error, currentTarget()).message;
      note(`watch: ${why}; reconnecting in ${(delay / 1000).toFixed(1)}s`);
      await sleep(delay, stop.signal);
    }
  };

  const off = onForwardedSignals((s) => {
    if (s === "SIGHUP") return child?.kill(s);
    ending = true;
    if (child) child.kill(s);
    else finish(exitCodeOf({ code: null, signal: s }));
  });
  watch().catch(fail);
  try {
    return await result;
  } finally {
    stop.abort();
    off();
  }
}

/** secretsctl's environment plus the VM's variables; the VM's win. */
function childEnv(vars: Env): NodeJS.ProcessEnv {
  return { ...process.env, ...Object.fromEntries(vars) };
}

function toEnv(vars: readonly Var[]): Env {
  return new Map(vars.map((v) => [v.name, v.value]));
}

function sameEnv(a: Env, b: Env): boolean {
  return changedNames(a, b).length === 0;
}

/** Names added, removed or changed between two envs, sorted. */
function changedNames(prev: Env, next: Env): string[] {
  const out = new Set<string>();
  for (const [k, v] of next) if (prev.get(k) !== v) out.add(k);
  for (const k of prev.keys()) if (!next.has(k)) out.add(k);
  return [...out].sort();
}

function describeNames(names: readonly string[]): string {
  const shown = names.slice(0, 5).join(", ");
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
