/**
 * `vm-auth-shim status`: what the running shim last reported (status file on /run) combined
 * with what it last persisted (state file). Works while the shim is stopped, from the state
 * file alone.
 */

import { readIfExists } from "../common/fs.js";
import { silentLogger } from "../common/logger.js";
import { type ConnectionState, loadState, readStatus, type ShimStatus } from "./state.js";

/** What `vm-auth-shim status` shows (or prints as JSON with --json). */
export interface StatusReport {
  running: boolean;
  pid: number | undefined;
  connection: ConnectionState | "not running";
  since: string | undefined;
  server: string | undefined;
  /** "plaintext", "TLS, system CAs" or "TLS, CA FILE", as the running shim reported it. */
  transport: string | undefined;
  appliedRevision: number;
  digest: string;
  appliedAt: string | undefined;
  lastChangeAt: string | undefined;
  serverRevision: number | undefined;
  lastFrameAt: string | undefined;
  lastError: string | undefined;
  lastErrorAt: string | undefined;
  omitted: string[];
  vars: string[];
}

/**
 * Gathers the report.
 * @throws when a file exists but cannot be read (EACCES: the files are root's)
 */
export async function statusReport(files: {
  stateFile: string;
  statusFile: string;
}): Promise<StatusReport> {
  await readIfExists(files.stateFile); // surfaces EACCES, which loadState would swallow
  const state = await loadState(files.stateFile, silentLogger);
  let st: ShimStatus | undefined;
  try {
    st = await readStatus(files.statusFile);
  } catch (err) {
    // A status file cut short is no status; anything else (EACCES) is the caller's to see.
    if (!(err instanceof SyntaxError)) throw err;
  }
  const running = st !== undefined && st.connection !== "stopped" && alive(st.pid);
  return {
    running,
    pid: running ? st?.pid : undefined,
    connection: running && st ? st.connection : "not running",
    since: st?.since,
    server: st?.server,
    transport: st?.transport,
    appliedRevision: state.revision,
    digest: state.digest,
    appliedAt: state.appliedAt,
    lastChangeAt: state.changedAt,
    serverRevision: st?.serverRevision,
    lastFrameAt: st?.lastFrameAt,
    lastError: st?.lastError,
    lastErrorAt: st?.lastErrorAt,
    omitted: st?.omitted ?? [],
    vars: Object.keys(state.vars).sort(),
  };
}

/** Human form, one `key: value` per line. */
export function formatStatus(r: StatusReport): string {
  const behind =
    r.serverRevision !== undefined && r.serverRevision > r.appliedRevision
      ? ` (server at ${r.serverRevision})`
      : "";
  const lines: [string, string | undefined][] = [
    ["shim", r.running ? `running (pid ${r.pid})` : "not running"],
    ["connection", r.running ? `${r.connection} since ${r.since}` : undefined],
    ["server", r.server && r.transport ? `${r.server} (${r.transport})` : r.server],
    ["applied revision", `${r.appliedRevision}${behind}`],
    ["digest", r.digest || "(none)"],
    ["applied at", r.appliedAt],
    ["last change", r.lastChangeAt ?? "(never)"],
    ["last frame", r.lastFrameAt],
    ["last error", r.lastError ? `${r.lastError} (at ${r.lastErrorAt})` : "(none)"],
    ["env vars", r.vars.length ? r.vars.join(" ") : "(none)"],
    ["left out", r.omitted.length ? r.omitted.join(" ") : undefined],
  ];
  return lines
    .filter((l): l is [string, string] => l[1] !== undefined)
    .map(([k, v]) => `${`${k}:`.padEnd(18)}${v}\n`)
    .join("");
}

// --- internal ---

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
