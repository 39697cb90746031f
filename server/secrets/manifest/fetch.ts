/**
 * Fetching a `remote_fetch` entry's value (issue #11) from a command or a file on the host,
 * e.g. `["vault", "kv", "get", "-field=token", "kv/ci"]` or `/run/credentials/x.service/token`.
 *
 * Nothing a source prints may reach an error or a log: a failing `vault` can print the secret
 * on stderr, so stderr is only counted. Errors carry the program name (never its arguments,
 * which may hold a token), the exit code or signal, and byte counts (STYLE.md §6). Every
 * failure to get a value is `unavailable`: the caller keeps the last value and reports it.
 */
import { constants, promises as fs } from "node:fs";
import { isAbsolute } from "node:path";
import { invalidArgument, isSecretsError, type SecretsError, unavailable } from "../../errors.js";
import { FETCH_MAX_BYTES, type RunOptions, runCommand } from "./fetch-command.js";

/** Where a value lives; exactly one of `command` and `file`. */
export interface FetchSpec {
  /** argv of a program run without a shell; a bare name is looked up in the env's PATH. */
  command?: readonly string[] | undefined;
  /** Absolute path of a regular file; symlinks are followed (mounted secrets use them). */
  file?: string | undefined;
  /** How often the caller re-fetches; not used here. */
  intervalMs: number;
  /** How long a command may run before it is killed (SIGTERM, then SIGKILL 2 s later). */
  timeoutMs: number;
}

/** Inputs of {@link fetchValue} besides the spec. */
export interface FetchOptions extends RunOptions {
  /** Kills a running command as a timeout does; the promise rejects with `signal.reason`. */
  signal?: AbortSignal;
  /**
   * Added to a command's environment, which otherwise holds only the daemon's PATH, HOME and
   * LANG: the caller decides what a tool needs (VAULT_ADDR, OP_SERVICE_ACCOUNT_TOKEN, AWS_*).
   * An `undefined` value removes a variable. @default none
   */
  env?: NodeJS.ProcessEnv;
}

export { FETCH_KILL_GRACE_MS, FETCH_MAX_BYTES } from "./fetch-command.js";

/**
 * Fetches the value `spec` points at: a command's stdout or a file's content, minus ONE
 * trailing "\n" or "\r\n". Throws `invalid_argument` for a malformed spec and `unavailable`
 * when the command fails (non-zero exit, signal, timeout, output over 64 KiB, no output) or
 * the file cannot be read, is not a regular file or is over 64 KiB, or when the value is
 * empty or is not UTF-8 text without NUL. Rejects with `opts.signal.reason` when aborted.
 *
 * A command runs with stdin on /dev/null, cwd `/`, in its own process group (a timeout kills
 * what it started too), and a minimal environment (see {@link FetchOptions.env}).
 */
export async function fetchValue(spec: FetchSpec, opts: FetchOptions = {}): Promise<string> {
  checkSpec(spec);
  opts.signal?.throwIfAborted();
  if (spec.command !== undefined) {
    const program = spec.command[0] as string;
    const out = await runCommand(spec.command, spec.timeoutMs, opts);
    return toText(out.stdout, {
      empty: `'${program}' printed nothing (stderr: ${out.stderrBytes} bytes)`,
      notText: `'${program}' output is not UTF-8 text without NUL`,
    });
  }
  const file = spec.file as string;
  return toText(await readCapped(file), {
    empty: `${file}: is empty`,
    notText: `${file}: not UTF-8 text without NUL`,
  });
}

// --- internal ---

function checkSpec(spec: FetchSpec): void {
  if ((spec.command === undefined) === (spec.file === undefined)) {
    throw invalidArgument("fetch", "exactly one of command and file");
  }
  if (spec.command !== undefined) {
    if (!spec.command[0] || spec.command.some((a) => typeof a !== "string" || a.includes("\0"))) {
      throw invalidArgument("fetch.command", "must be a program and its arguments, without NUL");
    }
    if (!Number.isInteger(spec.timeoutMs) || spec.timeoutMs < 1 || spec.timeoutMs > 2 ** 31 - 1) {
      throw invalidArgument("fetch.timeoutMs", "must be a positive integer");
    }
  } else if (!isAbsolute(spec.file as string) || (spec.file as string).includes("\0")) {
    throw invalidArgument("fetch.file", "must be an absolute path");
  }
}

/** Strips one trailing newline and checks the bytes are non-empty UTF-8 text without NUL. */
function toText(bytes: Buffer, why: { empty: string; notText: string }): string {
  let end = bytes.length;
  if (bytes[end - 1] === 0x0a) end -= bytes[end - 2] === 0x0d ? 2 : 1;
  const value = bytes.subarray(0, end);
  if (value.length === 0) throw unavailable(`fetch: ${why.empty}`);
  if (!value.includes(0)) {
    try {
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(value);
    } catch {}
  }
  throw unavailable(`fetch: ${why.notText}`);
}

/** Reads a regular file of at most FETCH_MAX_BYTES, checking the type on the opened file. */
async function readCapped(path: string): Promise<Buffer> {
  let h: fs.FileHandle;
  try {
    // O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
    h = await fs.open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    throw fileError(path, "open", err);
  }
  try {
    const st = await h.stat();
    if (!st.isFile()) throw unavailable(`fetch: ${path}: not a regular file`);
    const tooBig = () => unavailable(`fetch: ${path}: over 64 KiB`);
    if (st.size > FETCH_MAX_BYTES) throw tooBig();
    // Read to EOF, not to st.size: the file may have grown since.
    const buf = Buffer.alloc(FETCH_MAX_BYTES + 1);
    let n = 0;
    for (;;) {
      const { bytesRead } = await h.read(buf, n, buf.length - n, n);
      if (bytesRead === 0) break;
      n += bytesRead;
      if (n > FETCH_MAX_BYTES) throw tooBig();
    }
    return buf.subarray(0, n);
  } catch (err) {
    throw isSecretsError(err) ? err : fileError(path, "read", err);
  } finally {
    await h.close();
  }
}

function fileError(path: string, op: string, err: unknown): SecretsError {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === "ENOENT" || code === "ENOTDIR") return unavailable(`fetch: ${path}: no such file`);
  if (code === "EACCES" || code === "EPERM")
    return unavailable(`fetch: ${path}: permission denied`);
  return unavailable(`fetch: ${path}: cannot ${op} (${code ?? "unknown error"})`);
}
