/**
 * The embedded default store: lowdb over a JSON file, with an adapter that makes each write
 * durable. lowdb's own TextFile adapter (steno) writes a temp file and renames it but never
 * fsyncs, so an acknowledged write could vanish on power loss; this one writes the temp
 * file, fsyncs it, renames it over the old file and fsyncs the directory.
 */
import { mkdir, open, readFile, rename, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Adapter } from "lowdb";
import { Low } from "lowdb";
import { SecretsError } from "../../errors.js";
import type { SecretRecord, StoreData, StoreDriver, VmRecord } from "../types.js";

/** Options of the lowdb driver. */
export interface LowdbDriverOptions {
  /** Path of the JSON file. */
  file: string;
}

/** A StoreDriver keeping the document in one JSON file through lowdb. */
export function createLowdbDriver(opts: LowdbDriverOptions): StoreDriver {
  const db = new Low<StoreData | null>(durableJsonFile(opts.file), null);
  return {
    async load() {
      await db.read();
      return db.data ?? undefined;
    },
    async save(data) {
      db.data = data;
      await db.write();
    },
    async close() {},
  };
}

/** A lowdb Adapter whose write is durable: temp, fsync, rename, fsync dir. */
export function durableJsonFile(file: string): Adapter<StoreData | null> {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.tmp`);
  const serialize = createStoreSerializer();
  return {
    async read() {
      let text: string;
      try {
        text = await readFile(file, "utf8");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
        throw err;
      }
      try {
        return JSON.parse(text) as StoreData;
      } catch (cause) {
        throw new SecretsError("internal", `store file ${file} is not valid JSON`, { cause });
      }
    },
    async write(data) {
      await mkdir(dir, { recursive: true, mode: 0o700 });
      const fh = await open(tmp, "w", 0o600);
      try {
        await fh.writeFile(data ? serialize(data) : "null");
        await fh.sync();
      } finally {
        await fh.close();
      }
      try {
        await rename(tmp, file);
      } catch (err) {
        await unlink(tmp).catch(() => {});
        throw err;
      }
      await fsyncDir(dir);
    },
  };
}

/** fsync a directory so that a rename in it is durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const dh = await open(dir, "r");
  try {
    await dh.sync();
  } finally {
    await dh.close();
  }
}

/**
 * Serialises the document to UTF-8 JSON, re-encoding only the secrets and VMs that changed
 * since the last write. Re-stringifying 10,000 secrets (~8 MB) took ~30 ms a write, most of
 * a write's latency, and 5,000 VMs with their token hashes most of a rotation's commit. Every
 * change to a secret or a VM bumps its `modRevision` (secrets.ts, access.ts), so a record
 * whose object and modRevision are the same as at the last write has the same bytes.
 * lowdb.test.ts checks the output against JSON.stringify after every kind of change.
 */
export function createStoreSerializer(): (data: StoreData) => Buffer {
  const cache = new WeakMap<object, { rev: number | undefined; bytes: Buffer }>();
  // The last encoding of each section and the records it was made of: a section whose
  // records are the same objects at the same revisions is reused without a concat.
  const sections = new Map<string, { records: object[]; bytes: Buffer }>();
  const section = (label: string, records: Record<string, SecretRecord | VmRecord>): Buffer => {
    const prev = sections.get(label);
    const entries = Object.entries(records);
    let same = prev !== undefined && prev.records.length === entries.length;
    const parts: Buffer[] = [];
    const objs: object[] = [];
    entries.forEach(([name, rec], i) => {
      let c = cache.get(rec);
      if (!c || c.rev !== rec.modRevision) {
        const json = `${JSON.stringify(name)}:${JSON.stringify(rec)}`;
        c = { rev: rec.modRevision, bytes: Buffer.from(json) };
        cache.set(rec, c);
        same = false;
      } else if (same && prev?.records[i] !== rec) {
        same = false;
      }
      if (i > 0) parts.push(COMMA);
      parts.push(c.bytes);
      objs.push(rec);
    });
    if (same && prev) return prev.bytes;
    const bytes = Buffer.concat(parts);
    sections.set(label, { records: objs, bytes });
    return bytes;
  };
  return (data) => {
    const { secrets, vms, ...rest } = data;
    const head = JSON.stringify(rest);
    return Buffer.concat([
      Buffer.from(`${head.slice(0, -1)}${head.length > 2 ? "," : ""}"secrets":{`),
      section("secrets", secrets),
      Buffer.from('},"vms":{'),
      section("vms", vms),
      CLOSE,
    ]);
  };
}

const COMMA = Buffer.from(",");
const CLOSE = Buffer.from("}}");
