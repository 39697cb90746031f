/**
 * The embedded default store: lowdb over a JSON file, with an adapter that makes each write
 * durable and cheap. lowdb's own TextFile adapter (steno) writes a temp file and renames it
 * but never fsyncs, so an acknowledged write could vanish on power loss. This adapter keeps
 * the JSON file as a snapshot, written durably (temp, fsync, rename, fsync dir), and appends
 * each save's changes to a journal next to it (`<file>.wal`, journal.ts) with one fdatasync,
 * so a commit costs the size of its change rather than of the whole document.
 *
 * The snapshot is rewritten, and the journal emptied, once the journal outgrows the snapshot
 * (at least `compactAt` bytes): the bytes written per change stay within twice the journal's,
 * and loading replays at most about one snapshot's worth. That rewrite runs after the save
 * that triggered it is acknowledged; the next save waits for it. Closing the store compacts,
 * so after a clean shutdown the JSON file alone is the whole store.
 */
import type { FileHandle } from "node:fs/promises";
import { mkdir, open, readFile, rename, stat, unlink } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import type { Adapter } from "lowdb";
import { Low } from "lowdb";
import { SecretsError } from "../../errors.js";
import type { Change, SecretRecord, StoreData, StoreDriver, VmRecord } from "../types.js";
import type { Added } from "./journal.js";
import { JournalBaseline, replayJournal } from "./journal.js";

/** Options of the lowdb driver. */
export interface LowdbDriverOptions {
  /** Path of the JSON file (the snapshot); the journal is `<file>.wal`. */
  file: string;
  /** Compact once the journal is larger than this and than the snapshot. Default 1 MiB. */
  compactAt?: number;
}

/** A StoreDriver keeping the document in one JSON file (plus its journal) through lowdb. */
export function createLowdbDriver(opts: LowdbDriverOptions): StoreDriver {
  const adapter = journaledJsonFile(opts);
  const db = new Low<StoreData | null>(adapter, null);
  return {
    async load() {
      await db.read();
      return db.data ?? undefined;
    },
    async save(data, changes) {
      db.data = data;
      // Low#write is `adapter.write(db.data)`; called directly to pass what changed.
      await adapter.write(data, changes && addedBy(changes));
    },
    async close() {
      await adapter.close(db.data);
    },
  };
}

/** A lowdb Adapter over a durable JSON snapshot and its journal. */
export interface JournaledAdapter extends Adapter<StoreData | null> {
  /** `added`: names of records that may be new since the last write (see JournalBaseline). */
  write(data: StoreData | null, added?: Added): Promise<void>;
  /** Waits for a compaction in flight, compacts what the journal holds, closes the journal. */
  close(data: StoreData | null): Promise<void>;
}

export function journaledJsonFile(opts: LowdbDriverOptions): JournaledAdapter {
  const { file } = opts;
  const dir = dirname(file);
  const walFile = `${file}.wal`;
  const compactAt = opts.compactAt ?? 1024 * 1024;
  const serialize = createStoreSerializer();
  // What is durable: set by a read or a snapshot; undefined until then, and a save with no
  // baseline writes a whole snapshot.
  let baseline: JournalBaseline | undefined;
  let snapshotBytes = 0;
  let journalBytes = 0;
  let journal: FileHandle | undefined;
  let compacting: Promise<void> | undefined;

  const writeSnapshot = async (bytes: Buffer, emptyJournal = journalBytes > 0) => {
    await writeDurably(file, bytes);
    snapshotBytes = bytes.length;
    // Entries at or below the snapshot's revision are skipped on load, so a crash between
    // the rename and this truncation loses nothing.
    if (emptyJournal && (journal || (await exists(walFile)))) {
      const wal = await openJournal();
      await wal.truncate(0);
      await wal.sync();
      journalBytes = 0;
    }
  };

  const openJournal = async (): Promise<FileHandle> => {
    if (journal) return journal;
    const existed = await exists(walFile);
    journal = await open(walFile, "a", 0o600);
    if (!existed) await fsyncDir(dir);
    return journal;
  };

  const settle = async () => {
    // A failed compaction leaves the journal whole; the next save due to compact retries.
    while (compacting) await compacting.catch(() => {});
  };

  return {
    async read() {
      await settle();
      // The journal before the snapshot: a compaction renames the new snapshot before it
      // empties the journal, so this order never pairs an old snapshot with an emptied one.
      const wal = await readIfExists(walFile);
      const snapshot = await readIfExists(file);
      if (!snapshot) {
        if (wal && wal.length > 0) {
          throw new SecretsError(
            "internal",
            `store journal ${walFile} exists but its snapshot ${file} does not; refusing to start on a partial store`,
          );
        }
        baseline = undefined;
        return null;
      }
      let data: StoreData | null;
      try {
        data = JSON.parse(snapshot.toString("utf8")) as StoreData | null;
      } catch (cause) {
        throw new SecretsError("internal", `store file ${file} is not valid JSON`, { cause });
      }
      snapshotBytes = snapshot.length;
      journalBytes = 0;
      if (data && wal) {
        const { validBytes } = replayJournal(data, wal, walFile);
        // A torn last entry was never acknowledged: cut it off before appending after it.
        if (validBytes < wal.length) {
          const fh = await open(walFile, "r+");
          try {
            await fh.truncate(validBytes);
            await fh.sync();
          } finally {
            await fh.close();
          }
        }
        journalBytes = validBytes;
      }
      baseline = data ? JournalBaseline.of(data) : undefined;
      return data;
    },
    async write(data, added) {
      // Everything is encoded before the first await: the store changes records in place
      // for the next batch while this one is being written.
      if (!data || !baseline) {
        const bytes = data ? serialize(data) : Buffer.from("null");
        await settle();
        // No read came first (a new store, or a driver used to write a whole document):
        // a journal left next to the file must not be replayed over this snapshot.
        await writeSnapshot(bytes, true);
        baseline = data ? JournalBaseline.of(data) : undefined;
        return;
      }
      const change = baseline.diff(data, added);
      const due = journalBytes + change.line.length > Math.max(compactAt, snapshotBytes);
      const snapshot = due ? serialize(data) : undefined;
      await settle();
      const wal = await openJournal();
      const before = journalBytes;
      try {
        // write(2) may take only part of the entry (a disk about to fill up); the rest then
        // fails with ENOSPC, and the partial entry is taken back below.
        for (let off = 0; off < change.line.length; ) {
          const { bytesWritten } = await wal.write(change.line, off, change.line.length - off);
          off += bytesWritten;
        }
        await wal.datasync();
      } catch (err) {
        // Take back a partial entry so that the next one does not follow damage.
        await wal.truncate(before).catch(() => {});
        throw err;
      }
      journalBytes += change.line.length;
      change.commit();
      if (snapshot) {
        compacting = writeSnapshot(snapshot).finally(() => {
          compacting = undefined;
        });
      }
    },
    async close(data) {
      await settle();
      try {
        // A compaction that fails (a full disk) loses nothing: the journal stays whole.
        if (data && baseline && journalBytes > 0) await writeSnapshot(serialize(data));
      } finally {
        await journal?.close();
        journal = undefined;
      }
    },
  };
}

/** The secrets and VMs that `changes` name: the only records a save may have added. */
function addedBy(changes: readonly Change[]): Added {
  const secrets: string[] = [];
  const vms: string[] = [];
  for (const c of changes) {
    if (c.kind === "secret") secrets.push(c.name);
    else if (c.kind === "vm") vms.push(c.vm);
    else if (c.kind === "group") vms.push(...c.vms);
    else if (c.kind === "token" && c.vm !== undefined) vms.push(c.vm);
  }
  return { secrets, vms };
}

/** Writes `bytes` to `file` so that it is durable: temp, fsync, rename, fsync dir. */
export async function writeDurably(file: string, bytes: Buffer): Promise<void> {
  const dir = dirname(file);
  const tmp = join(dir, `.${basename(file)}.tmp`);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const fh = await open(tmp, "w", 0o600);
  try {
    await fh.writeFile(bytes);
    await fh.sync();
  } catch (err) {
    // A partial temp file would hold disk space that a full disk needs back.
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

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function readIfExists(file: string): Promise<Buffer | undefined> {
  try {
    return await readFile(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
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
