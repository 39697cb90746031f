/**
 * The one logger of secretsd and vm-auth-shim: one JSON object per line on stderr, which
 * journald stores as the unit's log. A leaf module: it imports nothing of ours, so the server
 * and the shim may both import it (biome.json forbids it any import of server/, client/ or
 * shim/; STYLE.md §2, §8).
 * Callers pass names, revisions and codes as meta; never a secret value, a token, a passphrase
 * or a whole request or response message.
 */

/** The levels a line can have, lowest first. */
export type LogSeverity = "debug" | "info" | "warn" | "error";

/** The lowest level written; "silent" writes nothing (tests). */
export type LogLevel = LogSeverity | "silent";

/** A structured JSON-lines logger; `child` adds fields (component, requestId) to every line. */
export interface Logger {
  debug(msg: string, meta?: Record<string, unknown>): void;
  info(msg: string, meta?: Record<string, unknown>): void;
  warn(msg: string, meta?: Record<string, unknown>): void;
  error(msg: string, meta?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

/** The levels a line can have, lowest first (what the shim's --log-level accepts). */
export const LOG_LEVELS: readonly LogSeverity[] = ["debug", "info", "warn", "error"];

/** Options of {@link createLogger}. */
export interface LoggerOptions {
  /** Lowest level written. @default "info" */
  level?: LogLevel;
  /** Where each line (with its newline) goes. @default process.stderr.write */
  write?: (line: string) => void;
  /** Fields on every line, after time, level and msg. @default {} */
  fields?: Record<string, unknown>;
}

/**
 * A logger writing `{"time","level","msg",...fields,...meta}` as one line. Errors in meta are
 * written as name, message and code only; bigints as numbers.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? "info";
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const base = opts.fields ?? {};
  const emit = (lvl: LogSeverity, msg: string, meta?: Record<string, unknown>) => {
    if (RANK[lvl] < RANK[level]) return;
    const entry = { time: new Date().toISOString(), level: lvl, msg, ...base, ...meta };
    write(`${JSON.stringify(entry, replacer)}\n`);
  };
  return {
    debug: (m, meta) => emit("debug", m, meta),
    info: (m, meta) => emit("info", m, meta),
    warn: (m, meta) => emit("warn", m, meta),
    error: (m, meta) => emit("error", m, meta),
    child: (fields) => createLogger({ level, write, fields: { ...base, ...fields } }),
  };
}

/** A logger that drops everything (tests). */
export const silentLogger: Logger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
  child: () => silentLogger,
};

// --- internal ---

const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 99 };

/**
 * Errors become name/message/code: never a stack with request contents, never `cause`.
 * A bigint (a revision from the wire) becomes a number, where JSON.stringify would throw.
 */
function replacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, code: (value as { code?: unknown }).code };
  }
  if (typeof value === "bigint") return Number(value);
  return value;
}
