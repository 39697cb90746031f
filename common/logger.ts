/**
 * The one logger of secretsd and vm-auth-shim: one JSON object per line on stderr, which
 * journald stores as the unit's log. A leaf module: it imports nothing of ours, so the server
 * and the shim may both import it (biome.json forbids it any import of server/, client/ or
 * shim/; STYLE.md §2, §8).
 * Callers pass names, revisions and codes as meta; never a secret value, a token, a passphrase
 * or a whole request or response message.
 */
import { fstatSync } from "node:fs";

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
  /**
   * Start each line with its syslog priority (`<3>` error, `<4>` warn, `<6>` info, `<7>`
   * debug), which journald strips and stores as the line's PRIORITY (sd-daemon(3)), so that
   * `journalctl -p err` finds errors. For stderr connected to the journal: callers pass
   * `stderrIsJournal()`. @default false
   */
  syslogPrefix?: boolean;
}

/**
 * A logger writing `{"time","level","msg",...fields,...meta}` as one line. Errors in meta are
 * written as name, message and code only; bigints as numbers.
 */
export function createLogger(opts: LoggerOptions = {}): Logger {
  const level = opts.level ?? "info";
  const write = opts.write ?? ((line: string) => process.stderr.write(line));
  const base = opts.fields ?? {};
  const prefix = opts.syslogPrefix === true;
  const emit = (lvl: LogSeverity, msg: string, meta?: Record<string, unknown>) => {
    if (RANK[lvl] < RANK[level]) return;
    const entry = { time: new Date().toISOString(), level: lvl, msg, ...base, ...meta };
    write(`${prefix ? PRIORITY[lvl] : ""}${JSON.stringify(entry, replacer)}\n`);
  };
  return {
    debug: (m, meta) => emit("debug", m, meta),
    info: (m, meta) => emit("info", m, meta),
    warn: (m, meta) => emit("warn", m, meta),
    error: (m, meta) => emit("error", m, meta),
    child: (fields) =>
      createLogger({ level, write, fields: { ...base, ...fields }, syslogPrefix: prefix }),
  };
}

/**
 * Whether stderr is the journal's stream: systemd sets JOURNAL_STREAM to its
 * "device:inode", and only a match counts (a child that inherited the variable but has its
 * stderr elsewhere, a test's pipe, must not get priority prefixes). systemd.exec(5).
 */
export function stderrIsJournal(env: NodeJS.ProcessEnv = process.env): boolean {
  const want = env.JOURNAL_STREAM;
  if (!want) return false;
  try {
    const st = fstatSync(2);
    return want === `${st.dev}:${st.ino}`;
  } catch {
    return false;
  }
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
const PRIORITY: Record<LogSeverity, string> = {
  debug: "<7>",
  info: "<6>",
  warn: "<4>",
  error: "<3>",
};

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
