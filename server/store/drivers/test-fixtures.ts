/**
 * Helpers shared by the store-file damage tests: scratch dirs, a captured log, crash images
 * (the files as a kill -9 would leave them), and byte-level damage.
 */
import { createHash } from "node:crypto";
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLogger, type Logger } from "../../logger.js";
import type { StoreView, Tx } from "../store.js";
import type { StoreData } from "../types.js";

/** Temp dirs, removed by `cleanup()`. */
export function scratchDirs() {
  const dirs: string[] = [];
  return {
    /** A new empty dir with the store's paths in it. */
    async make() {
      const dir = await mkdtemp(join(tmpdir(), "vm-auth-damage-"));
      dirs.push(dir);
      return paths(dir);
    },
    async cleanup() {
      for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
    },
  };
}

/** The store's files in `dir`. */
export function paths(dir: string) {
  return {
    dir,
    file: join(dir, "store.json"),
    wal: join(dir, "store.json.wal"),
    snapshotTmp: join(dir, ".store.json.tmp"),
    walTmp: join(dir, ".store.json.wal.tmp"),
  };
}

/** A logger that keeps its entries. */
export function capturedLog(): { log: Logger; entries: LogEntry[]; text(): string } {
  const entries: LogEntry[] = [];
  const log = createLogger({
    level: "debug",
    write: (l) => entries.push(JSON.parse(l) as LogEntry),
  });
  return { log, entries, text: () => entries.map((e) => JSON.stringify(e)).join("\n") };
}

/** One captured log entry. */
export interface LogEntry {
  level: string;
  msg: string;
  [k: string]: unknown;
}

/** Copies every regular file of `from` (a live store's dir) to a new dir: what a kill -9 leaves. */
export async function crashImage(
  from: string,
  make: () => Promise<ReturnType<typeof paths>>,
): Promise<ReturnType<typeof paths>> {
  const to = await make();
  // The journal before the snapshot, as a load reads them.
  const entries = await readdir(from, { withFileTypes: true });
  const names = entries.filter((e) => e.isFile()).map((e) => e.name);
  for (const n of names.sort((a, b) => rank(a) - rank(b))) {
    await copyFile(join(from, n), join(to.dir, n));
  }
  return to;
}

/** A mutator that puts group `name` (with `pad` bytes more, for a long journal line). */
export const group =
  (name: string, pad = 0) =>
  (_d: StoreView, tx: Tx) => {
    tx.put("groups", { name, createdAt: `t${"x".repeat(pad)}` });
  };

/** The JSON value of a document, for comparing. */
export const plain = (d: Readonly<StoreData> | StoreView | undefined) =>
  JSON.parse(JSON.stringify(d ?? null));

/** The journal's lines, each with its trailing newline (the last may have none). */
export async function journalLines(wal: string): Promise<string[]> {
  const text = await readFile(wal, "utf8");
  return text.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** Flips one bit of the byte at `at` (a letter or digit, so the file stays text). */
export async function flipByte(file: string, at: number): Promise<void> {
  const b = await readFile(file);
  b[at] = (b[at] as number) ^ 0x01;
  await writeFile(file, b);
}

/** The offset of the `nth` (1-based) occurrence of `needle` in `file`. */
export async function offsetOf(file: string, needle: string, nth = 1): Promise<number> {
  const text = await readFile(file, "latin1");
  let at = -1;
  for (let i = 0; i < nth; i++) {
    at = text.indexOf(needle, at + 1);
    if (at < 0) throw new Error(`${needle} not found ${nth} times in ${file}`);
  }
  return at;
}

/** A journal line in the format every version wrote: `<16 hex sha256> <json>\n`. */
export function legacyLine(entry: object): string {
  const json = JSON.stringify(entry);
  return `${createHash("sha256").update(json).digest("hex").slice(0, 16)} ${json}\n`;
}

// --- internal ---

function rank(name: string): number {
  return name.endsWith(".wal") ? 0 : 1;
}
