/**
 * Runs the system openssl (Debian 12: /usr/bin/openssl 3) with execFile: no shell, so no
 * argument is ever interpreted. Keys are only ever named by path, never passed on the command
 * line or through a pipe, so no key material can reach an error message.
 */
import { execFile } from "node:child_process";

/** openssl's stdout; its stderr is only used for the error message. */
export interface OpensslResult {
  stdout: string;
}

/**
 * Runs `openssl ARGS…` in `cwd`.
 * @throws Error `openssl <subcommand>: <openssl's last error line>`, or one saying openssl is
 *   not installed
 */
export function openssl(args: readonly string[], cwd: string): Promise<OpensslResult> {
  return new Promise((res, rej) => {
    execFile(
      "openssl",
      [...args],
      { cwd, timeout: 30_000, maxBuffer: 1024 * 1024 },
      (err, stdout, stderr) => {
        if (!err) return res({ stdout });
        const code = (err as NodeJS.ErrnoException).code;
        if (code === "ENOENT") {
          return rej(new Error("openssl: not found on PATH (Debian: apt-get install openssl)"));
        }
        rej(new Error(`openssl ${args[0]}: ${lastLine(stderr) || `exit ${String(code)}`}`));
      },
    );
  });
}

// --- internal ---

function lastLine(text: string): string {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  // openssl 3: "40C7…:error:0480006C:PEM routines:…:no start line:…"; keep the reason.
  const reason = lines.map((l) => /:error:[^:]*:[^:]*:[^:]*:([^:]+)/.exec(l)?.[1]).find(Boolean);
  return reason ?? lines.at(-1) ?? "";
}
