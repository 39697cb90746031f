/**
 * How secretsctl fails: one line on stderr, `secretsctl: <message>`, and an exit code (2 for
 * usage errors, 1 for everything else). The single catch in main.ts calls `describeError`.
 * Messages name fields and targets, never a value or token: anything the CLI read as a secret
 * is registered with `redact` and scrubbed from every message as a second line of defence.
 */
import { isClientError } from "../errors.js";

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
  const text = code === 2 ? `${message(err, target)} (see '${help}')` : message(err, target);
  return { message: oneLine(scrub(text)), exitCode: code };
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
  if (err instanceof UsageError || isCittyError(err)) return 2;
  if (err instanceof CancelledError) return 130;
  return 1;
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
