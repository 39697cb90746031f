/**
 * Where a secret value comes from, so that keys need not sit in shell history: the argument
 * when given (`-` means stdin), else stdin when it is not a terminal (exactly one trailing
 * newline stripped, as `echo` and heredocs add one), else a prompt on the terminal without
 * echo. Every value read is registered with `redact`.
 */
import { CancelledError, redact } from "./errors.js";

/** Stdin larger than this is refused before it is all in memory (the server's limit is 64 KiB). */
const MAX_STDIN_BYTES = 1024 * 1024;
/**
 * secretsd's limit on a value (DESIGN.md: UTF-8 text up to 64 KiB), checked here as well:
 * a value near 1 MiB makes a request larger than the server receives at all, and grpc-js
 * refuses it before the server can name the field (issue #8). `import` checks the same.
 */
const MAX_VALUE_BYTES = 64 * 1024;

/**
 * Returns the value from the argument, stdin or a prompt (see the module comment).
 * @throws Error naming `value` when stdin is not UTF-8, or the value is over 64 KiB;
 *   CancelledError when the prompt is abandoned with Ctrl-C or Ctrl-D.
 */
export async function readValue(arg: string | undefined, label: string): Promise<string> {
  let value: string;
  if (arg !== undefined && arg !== "-") value = arg;
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

/** Reads one line from the terminal in raw mode, echoing nothing. */
function promptHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  // Raw mode (no echo) before the prompt: whatever is typed once the prompt shows is hidden.
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  stdin.setEncoding("utf8");
  stdin.resume();
  return new Promise((resolve, reject) => {
    let value = "";
    const finish = (err?: Error) => {
      stdin.off("data", onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(value);
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") return finish();
        if (ch === "\u0003") return finish(new CancelledError("cancelled"));
        if (ch === "\u0004")
          return finish(value === "" ? new CancelledError("cancelled") : undefined);
        if (ch === "\u007f" || ch === "\b") value = [...value].slice(0, -1).join("");
        else if (ch === "\u0015") value = "";
        else value += ch;
      }
    };
    stdin.on("data", onData);
  });
}
