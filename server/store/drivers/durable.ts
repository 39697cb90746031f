/**
 * Durable file operations shared by the snapshot and the journal: a whole file is written to a
 * temp file beside it, fsynced, renamed over the old one, and the directory fsynced, so a crash
 * leaves either the old file or the new one, plus at worst the temp file (removed at start).
 */
import { mkdir, open, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** The temp file that `writeDurably(file)` writes first: `.<name>.tmp` beside `file`. */
export function tempPathOf(file: string): string {
  return join(dirname(file), `.${basename(file)}.tmp`);
}

/**
 * Writes `bytes` (one buffer, or several written in order) to `file` durably: temp, fsync,
 * rename, fsync dir. On failure the temp file is removed (a full disk needs the space back)
 * and the old `file` is untouched.
 */
export async function writeDurably(file: string, bytes: Buffer | readonly Buffer[]): Promise<void> {
  const dir = dirname(file);
  const tmp = tempPathOf(file);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const fh = await open(tmp, "w", 0o600);
  try {
    if (Buffer.isBuffer(bytes)) await fh.writeFile(bytes);
    else for (const b of bytes) await writeAll(fh, b);
    await fh.sync();
  } catch (err) {
    await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, file);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fsyncDir(dir);
}

/** fsync a directory so that a rename or a new file in it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/** The file's bytes, or undefined when it does not exist (common/fs.ts). */
export { readIfExists } from "../../../common/fs.js";

/** True when `file` exists. */
export async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

/** Cuts `file` to `length` bytes and makes that durable. */
export async function truncateDurably(file: string, length: number): Promise<void> {
  const fh = await open(file, "r+");
  try {
    await fh.truncate(length);
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Appends `bytes` to `file` and makes them durable. */
export async function appendDurably(file: string, bytes: Buffer): Promise<void> {
  const fh = await open(file, "a");
  try {
    await writeAll(fh, bytes);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/**
 * A name beside `file` for keeping a damaged file as evidence: `<file>.damaged-<UTC time>`,
 * with `-2`, `-3`… added if that name is taken.
 */
export async function evidencePathOf(file: string, now = new Date()): Promise<string> {
  const stamp = now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  const base = `${file}.damaged-${stamp}`;
  let path = base;
  for (let i = 2; await exists(path); i++) path = `${base}-${i}`;
  return path;
}

// --- internal ---

async function writeAll(fh: import("node:fs/promises").FileHandle, b: Buffer) {
  // write(2) may take only part of a buffer (a disk about to fill up); the rest then fails.
  for (let off = 0; off < b.length; ) {
    const { bytesWritten } = await fh.write(b, off, b.length - off);
    off += bytesWritten;
  }
}
