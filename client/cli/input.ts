/**
 * Where a secret value comes from, so that keys need not sit in shell history, and so that no
 * value is ever silently cut short (issue #12):
 * - `--from-file PATH`, or `@PATH` as the value argument: the file's bytes exactly (a PEM's
 *   final newline is kept), strict UTF-8, at most 64 KiB; a directory, a missing or unreadable
 *   file is refused naming the flag;
 * - the argument when given (`-` means stdin);
 * - stdin when it is not a terminal: exactly one trailing newline is stripped, as `echo` and
 *   heredocs add one (`printf %s` or `--from-file` keep every byte);
 * - else a prompt on the terminal without echo. The prompt turns on bracketed paste
 *   (ESC[?2004h): a paste arrives between ESC[200~ and ESC[201~, so a multi-line paste (a PEM,
 *   a JSON key) is taken whole, its line breaks kept, and only Enter typed outside a paste
 *   ends the value. A terminal that ignores bracketed paste sends a multi-line paste as lines
 *   typed at once: more input right after an Enter means a paste, and the value is refused
 *   with a pointer to --from-file rather than cut at its first line.
 * Every value read is registered with `redact`.
 */
import { readFileSync, statSync } from "node:fs";
import { CancelledError, redact, UsageError } from "./errors.js";

/** Stdin larger than this is refused before it is all in memory (the server's limit is 64 KiB). */
const MAX_STDIN_BYTES = 1024 * 1024;
/**
 * secretsd's limit on a value (DESIGN.md: UTF-8 text up to 64 KiB), checked here as well:
 * a value near 1 MiB makes a request larger than the server receives at all, and grpc-js
 * refuses it before the server can name the field (issue #8). `import` checks the same.
 */
export const MAX_VALUE_BYTES = 64 * 1024;
/** How long after an Enter more input still counts as the same paste (terminal without 2004). */
const PASTE_GAP_MS = 60;

/** The `--from-file` flag of the commands that take a value (add, rotate). */
export const fromFileArg = {
  type: "string",
  valueHint: "PATH",
  description:
    "read the value from PATH byte for byte (no newline stripped; for PEMs and JSON keys); UTF-8, at most 64 KiB. '@PATH' as VALUE does the same",
} as const;

/**
 * Returns the value from `--from-file`, the argument (`@PATH`, `-`, or the value itself),
 * stdin or a prompt (see the module comment).
 * @throws UsageError when both a value and --from-file are given; Error naming `--from-file`
 *   (or `@PATH`) for a file that is missing, unreadable, a directory, empty, not UTF-8 or too
 *   large, naming `value` when stdin is not UTF-8 or the value is over 64 KiB or a multi-line
 *   paste could not be told from typing; CancelledError for Ctrl-C or Ctrl-D at the prompt.
 */
export async function readValue(
  arg: string | undefined,
  label: string,
  fromFile?: string,
): Promise<string> {
  if (fromFile !== undefined && arg !== undefined) {
    throw new UsageError("give VALUE or --from-file, not both");
  }
  let value: string;
  if (fromFile !== undefined) value = readValueFile("--from-file", fromFile);
  else if (arg?.startsWith("@")) value = readValueFile("@PATH", arg.slice(1));
  else if (arg !== undefined && arg !== "-") value = arg;
  else if (arg === "-" || !process.stdin.isTTY) value = stripOneNewline(await readStdin());
  else value = await promptHidden(`${label} (input hidden): `);
  redact(value);
  const bytes = Buffer.byteLength(value, "utf8");
  // The server's own wording, so the message is the same whichever side refuses.
  if (bytes > MAX_VALUE_BYTES) {
    throw new Error(`value: is ${bytes} bytes; the limit is ${MAX_VALUE_BYTES}`);
  }
  return value;
}

// --- internal ---

/** A value file's exact text; errors name `flag` and the path, never the content. */
function readValueFile(flag: string, path: string): string {
  if (path === "") throw new UsageError(`${flag}: needs a file path`);
  let size: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new Error(`${flag}: ${path} is a directory, not a file`);
    size = st.size;
  } catch (err) {
    if (!isErrno(err)) throw err;
    throw new Error(`${flag}: cannot read ${path} (${err.code})`);
  }
  if (size > MAX_VALUE_BYTES) {
    throw new Error(`${flag}: ${path} is ${size} bytes; the limit is ${MAX_VALUE_BYTES}`);
  }
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    if (!isErrno(err)) throw err;
    throw new Error(`${flag}: cannot read ${path} (${err.code})`);
  }
  // A file that grew since the stat (or a device) is checked again on what was read.
  if (bytes.length > MAX_VALUE_BYTES) {
    throw new Error(`${flag}: ${path} is over ${MAX_VALUE_BYTES} bytes; the limit`);
  }
  if (bytes.length === 0) throw new Error(`${flag}: ${path} is empty`);
  if (bytes.includes(0)) throw new Error(`${flag}: ${path} contains NUL: not a text value`);
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new Error(`${flag}: ${path} is not valid UTF-8 text`);
  }
}

function isErrno(err: unknown): err is NodeJS.ErrnoException {
  return err instanceof Error && typeof (err as NodeJS.ErrnoException).code === "string";
}

/** Reads all of stdin as strict UTF-8 (a replacement character would silently change a key). */
async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_STDIN_BYTES) {
      throw new Error(`value: stdin has more than ${MAX_STDIN_BYTES} bytes; the limit is 65536`);
    }
    chunks.push(chunk);
  }
  try {
    return new TextDecoder("utf-8", { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new Error("value: stdin is not valid UTF-8");
  }
}

function stripOneNewline(text: string): string {
  if (text.endsWith("\r\n")) return text.slice(0, -2);
  if (text.endsWith("\n")) return text.slice(0, -1);
  return text;
}

const PASTE_START = "\u001b[200~";
const PASTE_END = "\u001b[201~";
const UNBRACKETED =
  "value: a multi-line paste arrived as typed lines (this terminal has no bracketed paste); nothing was stored: give the value with --from-file PATH or on stdin";

/**
 * Reads a value from the terminal in raw mode, echoing nothing, with bracketed paste on (see
 * the module comment). A paste's line breaks (CR, as terminals send them, or CRLF) become
 * "\n"; one line break ending the whole value is dropped, as for stdin.
 */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Raw mode (no echo) before the prompt: whatever is typed once the prompt shows is hidden.
  stdin.setRawMode(true);
  process.stderr.write(`\u001b[?2004h${prompt}`);
  stdin.setEncoding("utf8");
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = "";
    let pending = "";
    let pasting = false;
    let lastWasCr = false;
    /** Set once Enter was typed: fires `finish` unless more input comes first. */
    let timer: NodeJS.Timeout | undefined;
    let draining = false;
    const finish = (err?: Error) => {
      if (timer) clearTimeout(timer);
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\u001b[?2004l\n");
      if (err) reject(err);
      else resolve(stripOneNewline(value));
    };
    // The rest of an unbracketed paste is read and dropped until the terminal is quiet, so
    // that no line of it reaches the shell as a command once we exit.
    const drain = () => {
      draining = true;
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => finish(new Error(UNBRACKETED)), PASTE_GAP_MS * 3);
    };
    const onData = (chunk: string) => {
      if (draining || timer) return drain();
      pending += chunk;
      while (pending.length > 0) {
        if (pending.startsWith("\u001b")) {
          const marker = [PASTE_START, PASTE_END].find((m) => pending.startsWith(m));
          if (marker) {
            pasting = marker === PASTE_START;
            pending = pending.slice(marker.length);
            continue;
          }
          // A marker split across reads: wait for the rest.
          if ([PASTE_START, PASTE_END].some((m) => m.startsWith(pending))) return;
          // Any other escape sequence (arrow keys…) is not part of a value.
          const csi = /^.(\[[0-?]*[ -/]*[@-~]|.)?/s.exec(pending)?.[0] ?? pending.slice(0, 1);
          pending = pending.slice(csi.length);
          continue;
        }
        const ch = String.fromCodePoint(pending.codePointAt(0) ?? 0);
        pending = pending.slice(ch.length);
        const afterCr = lastWasCr;
        lastWasCr = ch === "\r";
        if (pasting) {
          // Terminals send a pasted line break as CR; CRLF is one break.
          if (ch === "\r") value += "\n";
          else if (ch !== "\n" || !afterCr) value += ch;
          continue;
        }
        if (ch === "\r" || ch === "\n") {
          if (pending.replace(/^\n/, "") !== "") return drain();
          // More input within PASTE_GAP_MS is the rest of a paste (see the module comment).
          timer = setTimeout(() => finish(), PASTE_GAP_MS);
          return;
        }
        if (ch === "\u0003") return finish(new CancelledError("cancelled"));
        if (ch === "\u0004") {
          return finish(value === "" ? new CancelledError("cancelled") : undefined);
        }
        if (ch === "\u007f" || ch === "\b") value = [...value].slice(0, -1).join("");
        else if (ch === "\u0015") value = "";
        else value += ch;
      }
    };
    stdin.on("data", onData);
  });
}
