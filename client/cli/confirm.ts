/**
 * The one confirmation every destructive command asks (remove, rollback, vm remove, vm revoke,
 * group remove, token revoke, manifest remove, oauth logout, import over existing secrets):
 * `… [y/N]` on a terminal, skipped by `--yes` / `-y`. Asked only when stdin and stderr are
 * both terminals: a script (stdin a pipe or /dev/null, or stderr captured) proceeds as it did
 * before confirmations existed, so nothing that automates secretsctl breaks. Anything but
 * `y` / `yes` (Ctrl-C, Ctrl-D and Enter included) cancels: exit 130, nothing changed.
 */
import { CancelledError } from "./errors.js";

/** The `--yes` flag every destructive command takes. */
export const yesArg: { type: "boolean"; alias: string[]; description: string } = {
  type: "boolean",
  alias: ["y"],
  description:
    "do not ask for confirmation (asked only on a terminal: stdin and stderr both TTYs; scripts are never asked)",
};

/**
 * Asks `question [y/N]` on the terminal unless `yes` or not on a terminal (see the module
 * comment). Resolves when the answer is yes.
 * @throws CancelledError ("cancelled", exit 130) for any other answer, Ctrl-C or Ctrl-D.
 */
export async function confirm(question: string, yes: boolean | undefined): Promise<void> {
  if (yes === true || !onTerminal()) return;
  const answer = await askLine(`${question} [y/N] `);
  if (!/^(y|yes)$/i.test(answer.trim())) throw new CancelledError("cancelled; nothing changed");
}

/** Whether a confirmation would be asked: stdin and stderr are both terminals. */
export function onTerminal(): boolean {
  return process.stdin.isTTY === true && process.stderr.isTTY === true;
}

// --- internal ---

/**
 * Reads one line on the terminal in raw mode, echoing what is typed (an answer is not a
 * secret), so that Ctrl-C and Ctrl-D come to us as bytes and cancel cleanly instead of
 * killing the process half-way.
 */
function askLine(prompt: string): Promise<string> {
  const stdin = process.stdin;
  stdin.setRawMode(true);
  process.stderr.write(prompt);
  stdin.setEncoding("utf8");
  stdin.resume();
  return new Promise((resolve, reject) => {
    let text = "";
    const finish = (err?: Error) => {
      stdin.off("data", onData);
      stdin.off("end", onEnd);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write("\n");
      if (err) reject(err);
      else resolve(text);
    };
    const onEnd = () => finish(new CancelledError("cancelled; nothing changed"));
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === "\r" || ch === "\n") return finish();
        if (ch === "\u0003" || ch === "\u0004") {
          return finish(new CancelledError("cancelled; nothing changed"));
        }
        if (ch === "\u007f" || ch === "\b") {
          if (text.length > 0) {
            text = text.slice(0, -1);
            process.stderr.write("\b \b");
          }
        } else if (ch >= " " && text.length < 16) {
          text += ch;
          process.stderr.write(ch);
        }
      }
    };
    stdin.on("data", onData);
    stdin.on("end", onEnd);
  });
}
