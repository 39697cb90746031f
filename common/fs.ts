/** Small file helpers shared by secretsd's store and the shim's sink. */
import { readFile } from "node:fs/promises";

/** The file's bytes, or undefined when it does not exist; any other error is thrown. */
export async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}
