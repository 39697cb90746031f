/**
 * Writes files so that a reader sees either the old or the new content, never a mix, and the
 * new content survives a crash once the call returns: temp file in the same directory, write,
 * fsync, rename over the target, fsync the directory (the rename itself is only durable after
 * that). A file whose bytes are already right is not touched, so an unchanged env costs no write
 * and keeps its mtime and inode.
 */
import { randomBytes } from "node:crypto";
import { chmod, mkdir, open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { readIfExists } from "../common/fs.js";

/** Modes of the file written and of the directories created for it. */
export interface WriteOptions {
  /** File mode, applied exactly (not subject to the umask). @default 0o600 */
  mode?: number;
  /** Mode of parent directories this call creates (existing ones are left alone). @default 0o700 */
  dirMode?: number;
}

/** What writeFileAtomic did. */
export interface WriteResult {
  /** Whether the file was (re)written. */
  changed: boolean;
  /** The bytes the file held before, if it existed. */
  previous: Buffer | undefined;
}

/**
 * Replaces `file` with `data` atomically and durably, unless it already holds exactly these
 * bytes (then only a wrong mode is fixed).
 * @throws the underlying fs error (ENOSPC, EROFS, EACCES, …); the target is then unchanged
 */
export async function writeFileAtomic(
  file: string,
  data: string | Uint8Array,
  opts: WriteOptions = {},
): Promise<WriteResult> {
  const mode = opts.mode ?? 0o600;
  const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : Buffer.from(data);
  const dir = dirname(file);
  await ensureDir(dir, opts.dirMode ?? 0o700);
  const previous = await readIfExists(file);
  if (previous?.equals(bytes)) {
    const st = await stat(file);
    if ((st.mode & 0o7777) !== mode) await chmod(file, mode);
    return { changed: false, previous };
  }
  const tmp = join(dir, `.${basename(file)}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
  try {
    const fh = await open(tmp, "wx", mode);
    try {
      await fh.writeFile(bytes);
      // The umask may have cleared bits of `mode` at create; set it exactly.
      await fh.chmod(mode);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dir);
  return { changed: true, previous };
}

// --- internal ---

/** Creates `dir` and missing parents with `dirMode` exactly; leaves existing ones alone. */
async function ensureDir(dir: string, dirMode: number) {
  const first = await mkdir(dir, { recursive: true, mode: dirMode });
  if (first === undefined) return;
  for (let p = dir; p.length >= first.length; p = dirname(p)) {
    await chmod(p, dirMode);
    if (p === first) break;
  }
}

async function fsyncDir(dir: string) {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}
