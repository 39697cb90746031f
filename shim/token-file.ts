/**
 * The VM token file's checks. The token is the VM's identity: anyone who can change the file
 * can point the shim at their own identity, and anyone who can read it can be this VM. So the
 * file must be a regular file, mode 0600 or stricter, owned by root or us, and hold one token.
 * Under the installed unit the token comes as a systemd credential (LoadCredential=token:FILE):
 * a copy systemd makes at each start in a directory only this service can read.
 */
import { closeSync, existsSync, fstatSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ShimConfigError } from "./config.js";

/** The credential name the unit passes the token under (install.ts LoadCredential=). */
export const TOKEN_CREDENTIAL = "token";

/** Where to read the token (or CA) from, and whether that is a systemd credential. */
export interface TokenSource {
  file: string;
  credential: boolean;
}

/**
 * `$CREDENTIALS_DIRECTORY/token` when systemd passed one (the installed unit does), else the
 * configured token file. Decided once at start: a credential is a copy taken when the unit
 * started, so a new token needs a restart of the shim (install --now does it).
 */
export function tokenSource(
  tokenFile: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): TokenSource {
  return credentialSource(TOKEN_CREDENTIAL, tokenFile, env);
}

/** `$CREDENTIALS_DIRECTORY/NAME` when systemd passed that credential, else `file`. */
export function credentialSource(
  name: string,
  file: string,
  env: Readonly<Record<string, string | undefined>> = process.env,
): TokenSource {
  const dir = env.CREDENTIALS_DIRECTORY;
  if (dir) {
    const cred = join(dir, name);
    if (existsSync(cred)) return { file: cred, credential: true };
  }
  return { file, credential: false };
}

/** Reads the token from a {@link tokenSource}. @throws ShimConfigError */
export function readToken(src: TokenSource): string {
  return readTokenFile(src.file, { credential: src.credential });
}

/**
 * Reads the VM token (re-read on every connect, so a new token file needs no restart when the
 * shim reads it directly). Refuses a file that is not a regular file, that group or others may
 * access, that is owned by someone other than root or us, that is over 4 KiB, or that holds
 * anything but one token on one line. A systemd credential (`opts.credential`) may also be
 * group-readable (0440: systemd's choice, inside a directory only the unit's user may enter),
 * never group-writable. Errors name the file and never contain its content.
 * @throws ShimConfigError
 */
export function readTokenFile(file: string, opts: { credential?: boolean } = {}): string {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (err) {
    throw new ShimConfigError(
      `tokenFile: cannot open ${file}: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
  try {
    // fstat the descriptor we read from, so the checked file is the read file.
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ShimConfigError(`tokenFile: ${file} is not a regular file`);
    if ((st.mode & (opts.credential ? 0o037 : 0o077)) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, "0");
      throw new ShimConfigError(
        opts.credential
          ? `tokenFile: credential ${file} has mode ${mode}; it must be 0440 or stricter`
          : `tokenFile: ${file} has mode ${mode}; it must be 0600 or stricter (chmod 600 ${file})`,
      );
    }
    const uid = process.getuid?.() ?? 0;
    if (st.uid !== 0 && st.uid !== uid) {
      throw new ShimConfigError(`tokenFile: ${file} is owned by uid ${st.uid}, not root or us`);
    }
    if (st.size > 4096) throw new ShimConfigError(`tokenFile: ${file} is larger than 4 KiB`);
    const token = readFileSync(fd, "utf8").trim();
    if (token === "" || /\s/.test(token)) {
      throw new ShimConfigError(`tokenFile: ${file} must hold one token on one line`);
    }
    return token;
  } finally {
    closeSync(fd);
  }
}
