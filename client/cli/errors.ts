/**
 * How secretsctl fails: one line on stderr, `secretsctl: <message>` (or, under `--json`, one
 * JSON object: `jsonError`), and an exit code from the one table below, `EXIT_CODES`. The
 * single catch in main.ts calls `describeError`. Messages name fields and targets, never a
 * value or token: anything the CLI read as a secret is registered with `redact` and scrubbed
 * from every message as a second line of defence.
 */
import type { ClientErrorCode } from "../errors.js";
import { isClientError } from "../errors.js";

/**
 * secretsctl's exit codes, the one place they are decided (`secretsctl --help` prints them).
 * Scripts can tell "fix the command line" (2) from "it is not there" (3), "you may not" (4) and
 * "try again later" (5); everything else secretsd refused, or a local file that cannot be
 * read, is 1. `run` exits with its command's own code once the command has started.
 */
export const EXIT_CODES = {
  ok: 0,
  error: 1,
  usage: 2,
  not_found: 3,
  denied: 4,
  unavailable: 5,
  cancelled: 130,
} as const;

/** The EXIT STATUS lines of `secretsctl --help`, from the table above. */
export const EXIT_STATUS_HELP: readonly (readonly [number, string])[] = [
  [EXIT_CODES.ok, "success"],
  [
    EXIT_CODES.error,
    "any other error: secretsd refused the request (invalid, already exists, …), or a local file",
  ],
  [EXIT_CODES.usage, "usage: unknown command or option, missing or malformed argument"],
  [EXIT_CODES.not_found, "not found: no such secret, VM, group, token, manifest or version"],
  [
    EXIT_CODES.denied,
    "permission: no token, an unknown or revoked token, or a token not allowed to do this",
  ],
  [EXIT_CODES.unavailable, "unavailable: cannot reach secretsd, or it did not answer in time"],
  [EXIT_CODES.cancelled, "cancelled (Ctrl-C at a prompt or while waiting)"],
];

/**
 * The exit code of each error code secretsd (or the channel) can answer with. A Record, so a
 * new client error code does not compile until it has an exit code.
 */
const CLIENT_EXIT: Record<ClientErrorCode, number> = {
  not_found: EXIT_CODES.not_found,
  unauthenticated: EXIT_CODES.denied,
  permission_denied: EXIT_CODES.denied,
  unavailable: EXIT_CODES.unavailable,
  deadline_exceeded: EXIT_CODES.unavailable,
  // The CLI cancels a call only when the user interrupts it.
  cancelled: EXIT_CODES.cancelled,
  already_exists: EXIT_CODES.error,
  invalid_argument: EXIT_CODES.error,
  failed_precondition: EXIT_CODES.error,
  resource_exhausted: EXIT_CODES.error,
  aborted: EXIT_CODES.error,
  internal: EXIT_CODES.error,
  unimplemented: EXIT_CODES.error,
  unknown: EXIT_CODES.error,
};

/** A wrong command line: unknown option, missing argument, conflicting flags. Exit code 2. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

/** The user cancelled a prompt (Ctrl-C). Exit code 130, as a shell reports SIGINT. */
export class CancelledError extends Error {
  override readonly name = "CancelledError";
}

/** What the top-level catch prints and exits with. */
export interface ErrorReport {
  message: string;
  exitCode: number;
  /**
   * What kind of error, for `--json`: secretsd's code (`not_found`, `invalid_argument`, …),
   * else `usage`, `cancelled` or `error` (a local failure, e.g. a file that cannot be read).
   */
  code: string;
  /** The request field secretsd named, when it named one. */
  field?: string;
}

const sensitive = new Set<string>();

/**
 * Registers a value or token so that no error message can print it. Very short strings are
 * not registered: scrubbing them would mangle unrelated words.
 */
export function redact(secret: string): void {
  if (secret.length >= 6) sensitive.add(secret);
}

/**
 * Turns any thrown value into one line and an exit code. `target` is where the client tried
 * to connect, named for UNAVAILABLE and DEADLINE_EXCEEDED so the user knows what was tried;
 * `help` is the help command a usage error points to.
 */
export function describeError(
  err: unknown,
  target: string | undefined,
  help = "secretsctl --help",
): ErrorReport {
  const code = exitCode(err);
  const text =
    code === EXIT_CODES.usage ? `${message(err, target)} (see '${help}')` : message(err, target);
  const report: ErrorReport = { message: oneLine(scrub(text)), exitCode: code, code: kind(err) };
  if (isClientError(err) && err.field !== undefined) report.field = err.field;
  return report;
}

/**
 * The error as `--json` prints it: one line,
 * `{"error":{"code":"not_found","message":"…","exit":3}}`, plus `"field"` when secretsd named
 * one. The message is the one scrubbed line the text form prints, without `secretsctl: `.
 */
export function jsonError(report: ErrorReport): string {
  const error: Record<string, string | number> = {
    code: report.code,
    message: report.message,
    exit: report.exitCode,
  };
  if (report.field !== undefined) error.field = report.field;
  return JSON.stringify({ error });
}

// --- internal ---

function message(err: unknown, target: string | undefined): string {
  if (isClientError(err)) {
    const at = target ? ` at ${target}` : "";
    if (err.code === "unavailable") {
      const reason = unavailableReason(err.message);
      const hint = /certificate|ssl|tls|handshake/i.test(reason)
        ? "TLS failed: check that secretsd serves TLS there, and pass --ca FILE with the CA that signed its certificate"
        : "is secretsd running? Start it with 'secretsd', or pass --socket PATH or --server HOST:PORT";
      return `cannot reach secretsd${at} (${reason}); ${hint}`;
    }
    if (err.code === "deadline_exceeded") {
      return `secretsd${at} did not answer in time (--timeout MS to wait longer)`;
    }
    if (err.code === "unauthenticated") {
      return `${err.message} (give --token-file FILE, --token or VM_AUTH_TOKEN)`;
    }
    return err.message;
  }
  if (isCittyError(err)) return stripAnsi(err.message).replace(/\.$/, "");
  if (err instanceof Error) return err.message;
  return String(err);
}

/** grpc-js says "No connection established. Last error: Error: connect ENOENT /x. Resolution note: ". */
function unavailableReason(text: string): string {
  const m = /\b(connect|getaddrinfo|read|write) (E[A-Z]+)\b/.exec(text);
  if (m) return `${m[1]} ${m[2]}`;
  // OpenSSL: "808C…:error:0A00010B:SSL routines:ssl3_get_record:wrong version number:…".
  const ssl = /SSL routines:[^:]*:([^:]+)/.exec(text);
  if (ssl) return `TLS: ${ssl[1]}`;
  const last = /Last error: (?:Error: )?(.*?)(?:\.?\s*Resolution note:.*)?$/s.exec(text);
  return (last?.[1] ?? text).replace(/[.\s]+$/, "");
}

function exitCode(err: unknown): number {
  if (err instanceof UsageError || isCittyError(err)) return EXIT_CODES.usage;
  if (err instanceof CancelledError) return EXIT_CODES.cancelled;
  if (isClientError(err)) return CLIENT_EXIT[err.code];
  return EXIT_CODES.error;
}

function kind(err: unknown): string {
  if (err instanceof UsageError || isCittyError(err)) return "usage";
  if (err instanceof CancelledError) return "cancelled";
  if (isClientError(err)) return err.code;
  return "error";
}

/** citty throws CLIError (not exported) for a missing positional, a bad enum, an unknown command. */
function isCittyError(err: unknown): err is Error {
  return err instanceof Error && err.name === "CLIError";
}

function scrub(text: string): string {
  let out = text;
  for (const s of sensitive) out = out.split(s).join("***");
  return out;
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}

function stripAnsi(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching ANSI colour codes is the point
  return text.replace(/\u001b\[[0-9;]*m/g, "");
}
