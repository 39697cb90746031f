/**
 * Acting on dependent units: which units a change touches (the keys each unit reads,
 * intersected with the env var names that changed), debounced so that a burst of changes
 * becomes one `systemctl try-restart u1 u2` and one `systemctl try-reload-or-restart u3`.
 * A unit none of whose keys changed is never touched; `try-` leaves stopped units stopped.
 */
import { execFile } from "node:child_process";
import type { Logger } from "../common/logger.js";
import type { UnitSpec } from "./config.js";

/** Units to act on, by action; sorted, no duplicates. */
export interface Selection {
  restart: string[];
  reload: string[];
}

/** The outcome of one debounced round. */
export interface ActResult {
  /** Units systemctl was asked to restart or reload. */
  units: string[];
  /** Why a systemctl call failed (exit status and its first stderr line), if one did. */
  error: string | undefined;
  /** The round was dropped by close() before it ran: nothing was restarted. */
  cancelled: boolean;
}

/** Runs a command; resolves with its exit code and stderr (never rejects on a non-zero exit). */
export type RunCommand = (bin: string, args: string[]) => Promise<{ code: number; stderr: string }>;

/** What createExec needs: the dependent units, the debounce and how to call systemctl. */
export interface ExecOptions {
  units: readonly UnitSpec[];
  /** How long to collect changes before calling systemctl. */
  debounceMs: number;
  /** The systemctl binary. @default "systemctl" */
  systemctl?: string;
  log: Logger;
  /** Injectable command runner. @default execFile with a 2-minute timeout */
  run?: RunCommand;
}

/** Acts on the dependent units, one debounced round at a time; made by createExec. */
export interface Exec {
  /**
   * Adds the names that changed to the current round (opening one if any unit is affected)
   * and resolves once that round's systemctl calls have finished. While a round is open,
   * every call joins it, even one that affects no unit, so that callers finish in order.
   * `include` names configured units to act on whatever changed (units new to the config,
   * which never got the env). Never rejects.
   */
  act(changed: ReadonlySet<string>, include?: readonly string[]): Promise<ActResult>;
  /** Whether a round is waiting or running. */
  readonly busy: boolean;
  /** Drops a waiting round (resolved as cancelled); a running one finishes. */
  close(): void;
}

/** Names whose entry differs between two maps: added, removed or changed. */
export function diffNames(
  prev: ReadonlyMap<string, string>,
  next: ReadonlyMap<string, string>,
): Set<string> {
  const out = new Set<string>();
  for (const [k, v] of next) if (prev.get(k) !== v) out.add(k);
  for (const k of prev.keys()) if (!next.has(k)) out.add(k);
  return out;
}

/** The units whose keys (or `*`) intersect `changed`, plus those named in `include`. */
export function selectUnits(
  units: readonly UnitSpec[],
  changed: ReadonlySet<string>,
  include: readonly string[] = [],
): Selection {
  const restart = new Set<string>();
  const reload = new Set<string>();
  for (const u of units) {
    const hit =
      include.includes(u.name) ||
      (changed.size > 0 && u.keys.some((k) => k === "*" || changed.has(k)));
    if (hit) (u.action === "reload" ? reload : restart).add(u.name);
  }
  return { restart: [...restart].sort(), reload: [...reload].sort() };
}

/** Creates the debouncing unit actor. */
export function createExec(opts: ExecOptions): Exec {
  const systemctl = opts.systemctl ?? "systemctl";
  const run = opts.run ?? runCommand;
  let round: Round | undefined;
  let running = 0;

  const fire = async (r: Round) => {
    if (round === r) round = undefined;
    running++;
    const errors: string[] = [];
    const calls: [string, Set<string>][] = [
      ["try-restart", r.restart],
      ["try-reload-or-restart", r.reload],
    ];
    for (const [verb, set] of calls) {
      if (set.size === 0) continue;
      const units = [...set].sort();
      const started = Date.now();
      const res = await run(systemctl, [verb, ...units]).catch((err: Error) => ({
        code: -1,
        stderr: err.message,
      }));
      const meta = { units, ms: Date.now() - started };
      if (res.code === 0) opts.log.info(`systemctl ${verb}`, meta);
      else {
        const why = `systemctl ${verb} exited ${res.code}: ${firstLine(res.stderr)}`;
        opts.log.error("systemctl failed", { ...meta, error: why });
        errors.push(why);
      }
    }
    running--;
    r.resolve({
      units: [...r.restart, ...r.reload].sort(),
      error: errors.length ? errors.join("; ") : undefined,
      cancelled: false,
    });
  };

  return {
    act(changed, include = []) {
      const sel = selectUnits(opts.units, changed, include);
      if (!round) {
        if (sel.restart.length === 0 && sel.reload.length === 0) {
          return Promise.resolve({ units: [], error: undefined, cancelled: false });
        }
        const r = openRound();
        r.timer = setTimeout(() => void fire(r), opts.debounceMs);
        round = r;
      }
      for (const u of sel.restart) round.restart.add(u);
      for (const u of sel.reload) round.reload.add(u);
      return round.promise;
    },
    get busy() {
      return round !== undefined || running > 0;
    },
    close() {
      const r = round;
      round = undefined;
      if (!r) return;
      clearTimeout(r.timer);
      r.resolve({ units: [], error: undefined, cancelled: true });
    },
  };
}

/** Runs `bin args` with a 2-minute timeout; never rejects. */
export const runCommand: RunCommand = (bin, args) =>
  new Promise((resolve) => {
    execFile(bin, args, { timeout: 120_000 }, (err, _stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stderr: err && !stderr ? err.message : stderr });
    });
  });

// --- internal ---

interface Round {
  restart: Set<string>;
  reload: Set<string>;
  timer: NodeJS.Timeout | undefined;
  promise: Promise<ActResult>;
  resolve: (r: ActResult) => void;
}

function openRound(): Round {
  let resolve!: (r: ActResult) => void;
  const promise = new Promise<ActResult>((res) => {
    resolve = res;
  });
  return { restart: new Set(), reload: new Set(), timer: undefined, promise, resolve };
}

function firstLine(s: string): string {
  return (s.trim().split("\n")[0] ?? "").slice(0, 300);
}
