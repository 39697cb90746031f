/**
 * The VM token file's checks. The token is the VM's identity: anyone who can change the file
 * can point the shim at their own identity, and anyone who can read it can be this VM. So the
 * file must be a regular file, mode 0600 or stricter, owned by root or us, and hold one token.
 */
import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import { ShimConfigError } from "./config.js";

/**
 * Reads the VM token (re-read on every connect, so a new token needs no restart). Refuses a
 * file that is not a regular file, that group or others may access, that is owned by someone
 * other than root or us, that is over 4 KiB, or that holds anything but one token on one line.
 * Errors name the file and never contain its content.
 * @throws ShimConfigError
 */
export function readTokenFile(file: string): string {
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
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, "0");
      throw new ShimConfigError(
        `tokenFile: ${file} has mode ${mode}; it must be 0600 or stricter (chmod 600 ${file})`,
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
