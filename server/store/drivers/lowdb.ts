/**
 * The embedded default store: lowdb over a JSON file, with an adapter that makes each write
 * durable and cheap. lowdb's own TextFile adapter (steno) writes a temp file and renames it
 * but never fsyncs, so an acknowledged write could vanish on power loss. This adapter keeps
 * the JSON file as a snapshot (snapshot.ts: sealed with its own checksum), written durably
 * (temp, fsync, rename, fsync dir), and appends each save's changes to a journal next to it
 * (`<file>.wal`, journal.ts) with one fdatasync, so a commit costs the size of its change
 * rather than of the whole document.
 *
 * Compaction: once the journal outgrows the snapshot (and at least `compactAt` bytes), the
 * snapshot is rewritten and a new journal started: the bytes written per change stay within
 * twice the journal's, and loading replays at most about one snapshot's worth. It runs after
 * the save that triggered it is acknowledged; the next save waits for it. Its steps, and what
 * a crash after each leaves (load.ts loads each):
 *   1. the new snapshot, naming a new journal id J2 and the journal it replaces (J1), is
 *      renamed into place → J1 beside it: its lines are all at or below the snapshot's
 *      revision, so they are skipped;
 *   2. the new journal, holding only its header (J2, after the snapshot's revision), is renamed
 *      over J1 → the pair is whole.
 * A snapshot that does not require its journal (after a clean close, or a whole-document
 * write) is rewritten with `required: true` after the first append that follows it (same
 * document, same journal id), so that from then on a deleted journal is found. Closing the
 * store writes such a snapshot and empties the journal: after a clean shutdown the JSON file
 * alone is the whole store.
 */
import type { FileHandle } from "node:fs/promises";
import { open, readFile } from "node:fs/promises";
import type { Adapter } from "lowdb";
import { Low } from "lowdb";
import { SecretsError } from "../../errors.js";
import type { Logger } from "../../logger.js";
import { createLogger } from "../../logger.js";
import type { Change, StoreData, StoreDriver } from "../types.js";
import { exists, readIfExists, truncateDurably, writeDurably } from "./durable.js";
import type { Added } from "./journal.js";
import { encodeJournalHeader, JournalBaseline, newJournalId, parseLine } from "./journal.js";
import type { JournalState, SnapshotState } from "./load.js";
import { loadStoreFiles, NO_JOURNAL } from "./load.js";
import type { StoreLoadReport } from "./load-report.js";
import type { SnapshotJournal } from "./snapshot.js";
import { byteLength, createStoreSerializer, resealSnapshot, sealSnapshot } from "./snapshot.js";

/** Durable writes (durable.ts), re-exported for the master key's files (barrier/master-key.ts). */
export { fsyncDir, writeDurably } from "./durable.js";
/** What a load found (load-report.ts), the type of `report()`. */
export type { StoreLoadReport } from "./load-report.js";
/** The snapshot's cached serializer (snapshot.ts), re-exported for lowdb.test.ts. */
export { createStoreSerializer } from "./snapshot.js";

/** Options of the lowdb driver. */
export interface LowdbDriverOptions {
  /** Path of the JSON file (the snapshot); the journal is `<file>.wal`. */
  file: string;
  /** Compact once the journal is larger than this and than the snapshot. @default 1 MiB */
  compactAt?: number;
  /**
   * Accept named losses instead of refusing to load damaged files (secretsd --repair): see
   * load.ts for what each one does. Each loss is logged at warn level. @default false
   */
  repair?: boolean;
  /**
   * Only look: load changes no file (no temp removal, no torn-line cut, no repair) and a save
   * throws. For looking at a store that a live driver has open (tests, tools). @default false
   */
  readOnly?: boolean;
  /** Where damage found at load and failed compactions are told. @default JSON lines on stderr */
  log?: Logger;
}

/** The lowdb driver: a StoreDriver, plus what its last load found. */
export interface LowdbDriver extends StoreDriver {
  /** What the last load found, accepted or repaired; undefined before a load. */
  report(): StoreLoadReport | undefined;
  /** Resolves once the work a save left running after its ack (a compaction, a snapshot rewrite) is done. */
  settled(): Promise<void>;
}

/** A StoreDriver keeping the document in one JSON file (plus its journal) through lowdb. */
export function createLowdbDriver(opts: LowdbDriverOptions): LowdbDriver {
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
    report: () => adapter.report(),
    settled: () => adapter.settled(),
  };
}

/** A lowdb Adapter over a durable, sealed JSON snapshot and its journal. */
export interface JournaledAdapter extends Adapter<StoreData | null> {
  /** `added`: names of records that may be new since the last write (see JournalBaseline). */
  write(data: StoreData | null, added?: Added): Promise<void>;
  /** Waits for a compaction in flight, writes a snapshot that is the whole store, closes. */
  close(data: StoreData | null): Promise<void>;
  /** What the last read found. */
  report(): StoreLoadReport | undefined;
  /** Resolves once no background work (compaction, snapshot rewrite) is running. */
  settled(): Promise<void>;
}

/** The adapter behind createLowdbDriver (see the file comment for the files it keeps). */
export function journaledJsonFile(opts: LowdbDriverOptions): JournaledAdapter {
  const { file } = opts;
  const walFile = `${file}.wal`;
  const compactAt = opts.compactAt ?? 1024 * 1024;
  const log = opts.log ?? createLogger({ fields: { component: "store" } });
  const serialize = createStoreSerializer();
  // What is durable: set by a read or a snapshot; a save with no baseline writes a whole
  // snapshot. `snap` and `wal` are the files on disk as this writer last left them.
  let baseline: JournalBaseline | undefined;
  let snap: SnapshotState | undefined;
  let wal: JournalState = { ...NO_JOURNAL };
  let journal: FileHandle | undefined;
  // Background work after an ack: a compaction (saves wait for it: it replaces the journal)
  // and the rewrite that makes the snapshot require its journal (saves do not wait: it leaves
  // the journal as it is). Neither ever rejects; each failure is logged and retried later.
  let compacting: Promise<void> | undefined;
  let requiring: Promise<void> | undefined;
  let loads = 0;
  let lastReport: StoreLoadReport | undefined;

  const settle = async () => {
    while (compacting) await compacting;
  };
  const settleAll = async () => {
    while (compacting || requiring) await (compacting ?? requiring);
  };
  const inBackground = (what: string, work: () => Promise<void>) =>
    work().catch((err: unknown) => {
      // The journal still holds every change; the next save retries.
      log.warn(`store ${what} failed; the journal keeps every change`, { err });
    });

  /** Writes a snapshot of `body` naming `j`; the journal on disk is then stale. */
  const writeSnapshot = async (body: Buffer[], revision: number, j: SnapshotJournal) => {
    const parts = sealSnapshot(body, j);
    await writeDurably(file, parts);
    snap = { journal: j, revision, bytes: byteLength(parts) };
    wal.appendable = false;
  };

  /**
   * Rewrites the snapshot on disk with `required: true`, after the first append that follows
   * a snapshot that did not require its journal: from then on a deleted journal is found. The
   * journal and the document are unchanged, so the rewrite needs no encoding (~20 ms of
   * mostly I/O for 8 MB) and saves go on during it: a crash before or after the rename leaves
   * a pair that loads.
   */
  const requireJournal = async () => {
    await new Promise((r) => setImmediate(r));
    const s = snap;
    if (!s?.journal || s.journal.required) return;
    const j = { ...s.journal, required: true };
    const parts = resealSnapshot(await readFile(file), j);
    if (!parts) throw new Error(`store file ${file} changed since this store wrote or read it`);
    await writeDurably(file, parts);
    snap = { ...s, journal: j, bytes: byteLength(parts) };
  };

  /** Starts the journal the snapshot names: its header alone, renamed over the old one. */
  const startJournal = async (s: SnapshotState & { journal: SnapshotJournal }) => {
    await journal?.close();
    journal = undefined;
    const header = encodeJournalHeader(s.journal.id, s.revision);
    await writeDurably(walFile, header);
    wal = { id: s.journal.id, appendable: true, bytes: header.length, entries: 0 };
  };

  /** Step 1 and 2 of a compaction (file comment), from a copy of the document. */
  const compact = async (doc: StoreData) => {
    // After the ack of the save that triggered it: encoding 10,000 secrets takes ~10-100 ms.
    await new Promise((r) => setImmediate(r));
    while (requiring) await requiring;
    const j = { id: newJournalId(), required: true, replaces: wal.id };
    await writeSnapshot(serialize(doc), doc.revision, j);
    await startJournal({ journal: j, revision: doc.revision, bytes: 0 });
  };

  /** A whole-document write: a snapshot that requires no journal, then the journal emptied. */
  const writeWhole = async (body: Buffer[], revision: number, known: boolean) => {
    // Without a read first, the journal beside the file is unknown: name it as replaced.
    const replaces = known ? wal.id : await journalIdOnDisk(walFile);
    await writeSnapshot(body, revision, { id: newJournalId(), required: false, replaces });
    await journal?.close();
    journal = undefined;
    if (await exists(walFile)) await truncateDurably(walFile, 0);
    wal = { ...NO_JOURNAL };
  };

  const append = async (line: Buffer) => {
    if (!wal.appendable) await startJournal(snap as SnapshotState & { journal: SnapshotJournal });
    journal ??= await open(walFile, "a", 0o600);
    const before = wal.bytes;
    try {
      // write(2) may take only part of the entry (a disk about to fill up); the rest then
      // fails with ENOSPC, and the partial entry is taken back below.
      for (let off = 0; off < line.length; ) {
        const { bytesWritten } = await journal.write(line, off, line.length - off);
        off += bytesWritten;
      }
      await journal.datasync();
    } catch (err) {
      // Take back a partial entry so that the next one does not follow damage.
      await journal.truncate(before).catch(() => {});
      throw err;
    }
    wal.bytes += line.length;
    wal.entries++;
  };

  return {
    async read() {
      await settleAll();
      await journal?.close();
      journal = undefined;
      const loaded = await loadStoreFiles({
        file,
        repair: opts.repair ?? false,
        readOnly: opts.readOnly ?? false,
        removeTemps: loads++ === 0,
        log,
      });
      snap = loaded.snapshot;
      wal = loaded.journal;
      lastReport = loaded.report;
      if (opts.repair && loaded.report.warnings.length === 0 && loads === 1) {
        log.info("--repair: the store's files are whole; nothing was dropped", { file });
      }
      baseline = loaded.data ? JournalBaseline.of(loaded.data) : undefined;
      return loaded.data;
    },
    async write(data, added) {
      if (opts.readOnly) throw new SecretsError("internal", `store ${file} was opened read-only`);
      if (!data) return;
      // Everything is encoded before the first await: the next batch changes the document.
      if (!baseline || !snap?.journal) {
        const known = snap !== undefined;
        const body = serialize(data);
        await settleAll();
        await writeWhole(body, data.revision, known);
        baseline = JournalBaseline.of(data);
        return;
      }
      const change = baseline.diff(data, added);
      const limit = () => Math.max(compactAt, snap?.bytes ?? 0);
      // Records are frozen and replaced, never edited (store.ts): a copy of the sections is
      // the document as of this save, for the compaction to encode after the ack.
      const doc = wal.bytes + change.line.length > limit() ? copyOf(data) : undefined;
      await settle();
      await append(change.line);
      change.commit();
      if (doc && wal.bytes > limit()) {
        compacting = inBackground("compaction", () => compact(doc)).finally(() => {
          compacting = undefined;
        });
      } else if (!snap.journal.required && !requiring) {
        requiring = inBackground("snapshot rewrite", requireJournal).finally(() => {
          requiring = undefined;
        });
      }
    },
    async close(data) {
      await settleAll();
      try {
        // A compaction that fails (a full disk) loses nothing: the journal stays whole.
        if (data && baseline && snap?.journal && (wal.entries > 0 || snap.journal.required)) {
          await writeWhole(serialize(data), data.revision, true);
        }
      } finally {
        await journal?.close();
        journal = undefined;
      }
    },
    report: () => lastReport,
    settled: settleAll,
  };
}

// --- internal ---

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

/** The document with its own top-level objects (sections), sharing the frozen records. */
function copyOf(data: StoreData): StoreData {
  const copy: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(data)) {
    copy[k] = v && typeof v === "object" && !Array.isArray(v) ? { ...v } : v;
  }
  return copy as unknown as StoreData;
}

/** The id in the header of the journal at `walFile`: "legacy" for none, null if empty. */
async function journalIdOnDisk(walFile: string): Promise<string | null> {
  const text = await readIfExists(walFile);
  if (!text || text.length === 0) return null;
  const nl = text.indexOf(0x0a);
  const first = parseLine(text.toString("utf8", 0, nl === -1 ? text.length : nl));
  const id = first.ok ? (first.value as { journal?: unknown }).journal : undefined;
  return typeof id === "string" ? id : "legacy";
}
