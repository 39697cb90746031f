/**
 * The master key file. 32 random bytes, created on first start with mode 0600; a key file
 * readable by group or others is refused. Re-keying writes `master.key.new` first, commits
 * the re-wrapped keyring to the store, then renames the new file over the old one; a crash
 * between those steps is repaired on the next start by matching key ids against the store.
 */
import { constants } from "node:fs";
import { open, readFile, rename, stat, unlink } from "node:fs/promises";
import { join } from "node:path";
import { SecretsError } from "../errors.js";
import { fsyncDir } from "../store/drivers/durable.js";
import { masterKeyId, newMasterKey } from "./barrier.js";

export const MASTER_KEY_FILE = "master.key";
const NEXT_FILE = "master.key.new";

/**
 * Reads the master key of `dataDir`, creating it when absent. `expectedId` is the keyring's
 * master key id (when a store exists), used to finish or discard an interrupted re-key.
 */
export async function loadMasterKey(
  dataDir: string,
  expectedId: string | undefined,
): Promise<{ key: Uint8Array; created: boolean }> {
  const path = join(dataDir, MASTER_KEY_FILE);
  const next = join(dataDir, NEXT_FILE);
  const pendingKey = await readKeyFile(next).catch(() => undefined);
  if (pendingKey) {
    if (expectedId !== undefined && masterKeyId(pendingKey) === expectedId) {
      await rename(next, path);
      await fsyncDir(dataDir);
    } else {
      await unlink(next);
    }
  }
  let key: Uint8Array;
  try {
    key = await readKeyFile(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    if (expectedId !== undefined) {
      throw new SecretsError(
        "failed_precondition",
        `${path} is missing but the store is encrypted with master key ${expectedId}`,
      );
    }
    key = newMasterKey();
    await writeKeyFile(dataDir, MASTER_KEY_FILE, key);
    return { key, created: true };
  }
  return { key, created: false };
}

/** Writes `master.key.new` durably (step 1 of a re-key). */
export async function stageMasterKey(dataDir: string, key: Uint8Array): Promise<void> {
  await writeKeyFile(dataDir, NEXT_FILE, key);
}

/** Renames `master.key.new` over `master.key` (step 3 of a re-key). */
export async function commitMasterKey(dataDir: string): Promise<void> {
  await rename(join(dataDir, NEXT_FILE), join(dataDir, MASTER_KEY_FILE));
  await fsyncDir(dataDir);
}

// --- internal ---

async function readKeyFile(path: string): Promise<Uint8Array> {
  const st = await stat(path);
  if ((st.mode & 0o077) !== 0) {
    throw new SecretsError(
      "failed_precondition",
      `${path} is readable by group or others (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
    );
  }
  const text = (await readFile(path, "utf8")).trim();
  const key = Buffer.from(text, "base64");
  if (key.length !== 32 || key.toString("base64") !== text) {
    throw new SecretsError("failed_precondition", `${path} does not hold a 32-byte base64 key`);
  }
  return new Uint8Array(key);
}

async function writeKeyFile(dataDir: string, name: string, key: Uint8Array): Promise<void> {
  const path = join(dataDir, name);
  const fh = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC, 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(`${Buffer.from(key).toString("base64")}\n`);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await fsyncDir(dataDir);
}
