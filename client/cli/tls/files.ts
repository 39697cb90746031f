/**
 * File writes for key material and bundles: a staging dir (0700) inside the target dir whose
 * files are renamed into place one by one, so each file is either the old one or the new one,
 * whole; and an exclusive create (O_EXCL, 0600) for a file that holds a token.
 */
import { constants } from "node:fs";
import type { FileHandle } from "node:fs/promises";
import { chmod, mkdtemp, open, rename, rm } from "node:fs/promises";
import { basename, dirname, join } from "node:path";

/** A scratch dir next to the files it will replace (same filesystem, so rename is atomic). */
export interface Staging {
  readonly dir: string;
  /** Sets `name`'s mode, then renames it over `<target>/<name>`. */
  commit(name: string, mode: number): Promise<void>;
  /** Removes the staging dir and whatever is left in it. */
  discard(): Promise<void>;
}

/** Creates a staging dir (mode 0700) inside `target`. */
export async function createStaging(target: string): Promise<Staging> {
  const dir = await mkdtemp(join(target, ".staging-"));
  await chmod(dir, 0o700);
  return {
    dir,
    async commit(name, mode) {
      await chmod(join(dir, name), mode);
      await rename(join(dir, name), join(target, name));
    },
    discard: () => rm(dir, { recursive: true, force: true }),
  };
}

/** Flushes a directory's entries (the renames) to disk. */
export async function syncDir(dir: string): Promise<void> {
  const fd = await open(dir, "r");
  try {
    await fd.sync();
  } finally {
    await fd.close();
  }
}

/** A file opened for a secret's bytes, not yet written. */
export interface SecretFile {
  /** Writes `text`, flushes, and puts the file at its final path. */
  write(text: string): Promise<void>;
  /** Removes what was created (before write: nothing is left behind). */
  discard(): Promise<void>;
}

/**
 * Claims `file` for a secret: created now with O_EXCL and mode 0600 (so an existing file,
 * symlink included, is refused and nobody else can open it in between); with `overwrite`, a
 * temp file next to it is created instead and renamed over `file` on write.
 * @throws the open error (EEXIST, EACCES, ENOENT of the dir, …) for the caller to name
 */
export async function claimSecretFile(file: string, overwrite: boolean): Promise<SecretFile> {
  const path = overwrite ? join(dirname(file), `.${basename(file)}.${process.pid}.tmp`) : file;
  const flags = constants.O_CREAT | constants.O_EXCL | constants.O_WRONLY | constants.O_NOFOLLOW;
  const fd: FileHandle = await open(path, flags, 0o600);
  await fd.chmod(0o600); // exactly 0600, whatever the umask
  let isOpen = true;
  return {
    async write(text) {
      await fd.writeFile(text);
      await fd.sync();
      await fd.close();
      isOpen = false;
      if (overwrite) await rename(path, file);
    },
    async discard() {
      if (isOpen) await fd.close();
      isOpen = false;
      await rm(path, { force: true });
    },
  };
}
