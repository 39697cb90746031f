/**
 * What the shim remembers. The state file (persistent, 0600) holds the last applied revision
 * and digest (sent back on reconnect, so nothing is missed and nothing re-applied) and, per env
 * var NAME, the secret and version it came from: enough to tell which names changed across a
 * restart of the shim, never a value. The status file (on /run) is what `vm-auth-shim status`
 * shows about the running shim.
 */

import { readIfExists } from "../common/fs.js";
import type { Logger } from "../common/logger.js";
import { writeFileAtomic } from "./sink.js";

/** Where one env var came from (never its value). */
export interface VarSource {
  secret: string;
  version: number;
}

/** The persisted state file's content: what was applied last, never a value. */
export interface ShimState {
  /** The last applied snapshot revision; 0 for none. */
  revision: number;
  /** Its digest; "" for none. */
  digest: string;
  /** Env var name → source, as applied. */
  vars: Record<string, VarSource>;
  /** The dependent units configured when it was applied (a unit added later gets a restart). */
  units: string[];
  /** When a snapshot was last applied (ISO time). */
  appliedAt: string | undefined;
  /** When the files last changed. */
  changedAt: string | undefined;
}

/** The state before anything was applied. */
export const EMPTY_STATE: ShimState = Object.freeze({
  revision: 0,
  digest: "",
  vars: {},
  units: [],
  appliedAt: undefined,
  changedAt: undefined,
});

/** The connection as the status file reports it. */
export type ConnectionState =
  | "starting"
  | "connecting"
  | "connected"
  | "disconnected"
  | "unauthenticated"
  | "stopped";

/** The status file's content, rewritten by the running shim (times are ISO strings). */
export interface ShimStatus {
  pid: number;
  version: string;
  server: string;
  /** How the shim reaches it: "plaintext", "TLS, system CAs" or "TLS, CA FILE" (absent in older files). */
  transport?: string | undefined;
  connection: ConnectionState;
  /** Since when `connection` holds. */
  since: string;
  appliedRevision: number;
  digest: string;
  lastChangeAt: string | undefined;
  /** The newest store revision the server reported (heartbeat or snapshot). */
  serverRevision: number;
  lastFrameAt: string | undefined;
  lastError: string | undefined;
  lastErrorAt: string | undefined;
  /** Env var names a dialect could not carry, by file. */
  omitted: string[];
  updatedAt: string;
}

/**
 * Loads the state file. A missing file is the empty state; an unreadable or corrupt one is
 * logged and treated as empty (the next snapshot is then applied in full, which is safe).
 */
export async function loadState(file: string, log: Logger): Promise<ShimState> {
  let raw: Buffer | undefined;
  try {
    raw = await readIfExists(file);
  } catch (err) {
    log.error("cannot read the state file; starting from scratch", { file, err });
    return { ...EMPTY_STATE };
  }
  if (!raw) return { ...EMPTY_STATE };
  try {
    return parseState(JSON.parse(raw.toString("utf8")));
  } catch (err) {
    log.error("the state file is corrupt; starting from scratch", { file, err });
    return { ...EMPTY_STATE };
  }
}

/** Writes the state file atomically (0600, parent 0700). */
export async function saveState(file: string, state: ShimState): Promise<void> {
  await writeFileAtomic(file, `${JSON.stringify({ schema: 1, ...state }, null, 2)}\n`, {
    mode: 0o600,
    dirMode: 0o700,
  });
}

/** `secret@version` per name: the identity of each var's content, for diffing. */
export function versionKeys(vars: Readonly<Record<string, VarSource>>): Map<string, string> {
  return new Map(Object.entries(vars).map(([k, v]) => [k, `${v.secret}@${v.version}`]));
}

/** Reads a status file written by a running shim; undefined when there is none. */
export async function readStatus(file: string): Promise<ShimStatus | undefined> {
  const raw = await readIfExists(file);
  return raw ? (JSON.parse(raw.toString("utf8")) as ShimStatus) : undefined;
}

/**
 * Keeps the status file current: `update` merges a patch and writes the file (0644 under a 0700
 * directory), serialising writes and collapsing a burst into the newest content.
 */
export function createStatusWriter(file: string, initial: ShimStatus, log: Logger) {
  let status = initial;
  let writing: Promise<void> | undefined;
  let again = false;
  const flush = async () => {
    do {
      again = false;
      try {
        await writeFileAtomic(file, `${JSON.stringify(status, null, 2)}\n`, {
          mode: 0o644,
          dirMode: 0o700,
        });
      } catch (err) {
        log.warn("cannot write the status file", { file, err });
      }
    } while (again);
    writing = undefined;
  };
  return {
    get current(): Readonly<ShimStatus> {
      return status;
    },
    /** Merges `patch` and schedules a write; resolves once it is on disk. */
    update(patch: Partial<ShimStatus>): Promise<void> {
      status = { ...status, ...patch, updatedAt: new Date().toISOString() };
      if (writing) {
        again = true;
        return writing;
      }
      writing = flush();
      return writing;
    },
  };
}

/** See createStatusWriter. */
export type StatusWriter = ReturnType<typeof createStatusWriter>;

// --- internal ---

function parseState(v: unknown): ShimState {
  const o = v as Partial<ShimState> & { schema?: unknown };
  if (typeof o !== "object" || o === null || o.schema !== 1) throw new Error("unknown schema");
  if (typeof o.revision !== "number" || typeof o.digest !== "string") {
    throw new Error("revision or digest missing");
  }
  const vars: Record<string, VarSource> = {};
  for (const [k, s] of Object.entries(o.vars ?? {})) {
    if (typeof s?.secret !== "string" || typeof s?.version !== "number") {
      throw new Error(`vars.${k} is malformed`);
    }
    vars[k] = { secret: s.secret, version: s.version };
  }
  const units = Array.isArray(o.units) ? o.units.filter((u) => typeof u === "string") : [];
  return {
    revision: o.revision,
    digest: o.digest,
    vars,
    units,
    appliedAt: typeof o.appliedAt === "string" ? o.appliedAt : undefined,
    changedAt: typeof o.changedAt === "string" ? o.changedAt : undefined,
  };
}
