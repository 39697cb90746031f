/**
 * The embedded default store: a snapshot plus a journal. The snapshot (store.json) is the
 * whole document, read and written through lowdb (snapshot-file.ts: sealed with its own
 * checksum, written durably); each commit appends its change set to the journal beside it
 * (`<file>.wal`, journal.ts) with one fdatasync, so a commit costs the size of its change
 * rather than of the document. The driver keeps its own view of the document (records are
 * frozen and shared with the store, so only the section maps are its own) to write
 * snapshots from; nothing is ever diffed.
 *
 * Compaction: once the journal outgrows the snapshot (and at least `compactAt` bytes), the
 * snapshot is rewritten and a new journal started: the bytes written per change stay within
 * twice the journal's, and loading replays at most about one snapshot's worth. It runs after
 * the commit that triggered it is acknowledged; the next commit waits for it. Its steps, and
 * what a crash after each leaves (load.ts loads each):
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
import { SecretsError } from "../../errors.js";
import type { Logger } from "../../logger.js";
import { createLogger } from "../../logger.js";
import { applyChangeSet, forkDocument } from "../change-set.js";
import type { StoreData, StoreDriver } from "../types.js";
import { emptyStore } from "../types.js";
import { encodeEntry, newJournalId } from "./journal.js";
import { JournalFile } from "./journal-file.js";
import type { SnapshotState } from "./load.js";
import { loadStoreFiles } from "./load.js";
import type { StoreLoadReport } from "./load-report.js";
import type { SnapshotJournal } from "./snapshot.js";
import { openSnapshotDb } from "./snapshot-file.js";

/** What a load found (load-report.ts), the type of `report()`. */
export type { StoreLoadReport } from "./load-report.js";

/** Options of the snapshot-journal driver. */
export interface SnapshotJournalDriverOptions {
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
   * Only look: load changes no file (no temp removal, no torn-line cut, no repair), and a
   * commit or replace throws. For looking at a store that a live driver has open. @default false
   */
  readOnly?: boolean;
  /** Where damage found at load and failed compactions are told. @default JSON lines on stderr */
  log?: Logger;
}

/** The snapshot-journal driver: a StoreDriver, plus what its files need. */
export interface SnapshotJournalDriver extends StoreDriver {
  /** What the last load found, accepted or repaired; undefined before a load. */
  report(): StoreLoadReport | undefined;
  /** Resolves once the work a commit left running after its ack (compaction, snapshot rewrite) is done. */
  settled(): Promise<void>;
  /**
   * Writes `doc` (copied) as the whole store: a snapshot that requires no journal, and the
   * journal emptied. For tools and tests that edit a stopped store; a live store commits
   * change sets. Needs no load first.
   */
  replace(doc: StoreData): Promise<void>;
}

/** A StoreDriver keeping the document in a JSON snapshot (through lowdb) and a journal. */
export function createSnapshotJournalDriver(
  opts: SnapshotJournalDriverOptions,
): SnapshotJournalDriver {
  const { file } = opts;
  const compactAt = opts.compactAt ?? 1024 * 1024;
  const log = opts.log ?? createLogger({ fields: { component: "store" } });
  const snapshot = openSnapshotDb(file);
  const journal = new JournalFile(`${file}.wal`);
  // The document as of the last durable commit (set by a load or a snapshot write). `snap`
  // is the snapshot on disk as this driver last left it (`journal.state` the journal).
  let view: StoreData | undefined;
  let snap: SnapshotState | undefined;
  // Background work after an ack: a compaction (commits wait for it: it replaces the journal)
  // and the rewrite that makes the snapshot require its journal (commits do not wait: it
  // leaves the journal as it is). Neither ever rejects; each failure is logged, retried later.
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
      // The journal still holds every change; the next commit retries.
      log.warn(`store ${what} failed; the journal keeps every change`, { err });
    });
  const writable = (what: string) => {
    if (opts.readOnly)
      throw new SecretsError("internal", `store ${file} was opened read-only (${what})`);
  };

  /** Writes `doc` through lowdb as the snapshot naming `j`; it becomes the view. */
  const writeSnapshot = async (doc: StoreData, j: SnapshotJournal) => {
    snapshot.db.data = { doc, journal: j, check: "sealed" };
    await snapshot.db.write();
    view = doc;
    snap = { journal: j, revision: doc.revision, bytes: snapshot.file.bytes };
    journal.state.appendable = false;
  };

  /** See the file comment: the same snapshot on disk, rewritten with `required: true`. */
  const requireJournal = async () => {
    await new Promise((r) => setImmediate(r));
    const s = snap;
    if (!s?.journal || s.journal.required) return;
    const j = { ...s.journal, required: true };
    await snapshot.file.reseal(j);
    snap = { ...s, journal: j, bytes: snapshot.file.bytes };
  };

  /** Steps 1 and 2 of a compaction (file comment), from the view. */
  const compact = async () => {
    // After the ack of the commit that triggered it: encoding 10,000 secrets takes ~10-100 ms.
    // Commits wait for it (settle) before they append, so the view holds still meanwhile.
    await new Promise((r) => setImmediate(r));
    while (requiring) await requiring;
    const doc = view as StoreData;
    const j = { id: newJournalId(), required: true, replaces: journal.state.id };
    await writeSnapshot(doc, j);
    await journal.start(j.id, doc.revision);
  };

  /** A whole-document write: a snapshot that requires no journal, then the journal emptied. */
  const writeWhole = async (doc: StoreData, known: boolean) => {
    // Without a read first, the journal beside the file is unknown: name it as replaced.
    const replaces = known ? journal.state.id : await journal.idOnDisk();
    await writeSnapshot(doc, { id: newJournalId(), required: false, replaces });
    await journal.empty();
  };

  return {
    async load() {
      await settleAll();
      await journal.release();
      const loaded = await loadStoreFiles({
        file,
        snapshot,
        repair: opts.repair ?? false,
        readOnly: opts.readOnly ?? false,
        removeTemps: loads++ === 0,
        log,
      });
      snap = loaded.snapshot;
      journal.state = loaded.journal;
      lastReport = loaded.report;
      if (opts.repair && loaded.report.warnings.length === 0 && loads === 1) {
        log.info("--repair: the store's files are whole; nothing was dropped", { file });
      }
      view = loaded.data ?? emptyStore();
      // The caller gets its own sections: it applies commits to them, as the view is applied to.
      return loaded.data ? forkDocument(loaded.data) : undefined;
    },
    async commit(set) {
      writable("commit");
      const current = view;
      if (!current) throw new SecretsError("internal", `store ${file}: commit before load`);
      if (set.revision <= current.revision) {
        throw new SecretsError(
          "internal",
          `store ${file}: commit at revision ${set.revision} is not after revision ${current.revision}`,
        );
      }
      if (!snap?.journal) {
        // No snapshot yet (a new store), or one from before journals had ids: write it whole.
        // `next` is ours and its records frozen: what it encodes cannot change meanwhile.
        const next = forkDocument(current);
        applyChangeSet(next, set);
        await settleAll();
        await writeWhole(next, snap !== undefined);
        return;
      }
      // Encoded before the first await, as every write is: the set as handed over.
      const line = encodeEntry(set, current);
      await settle();
      const s = snap as SnapshotState & { journal: SnapshotJournal };
      if (!journal.state.appendable) await journal.start(s.journal.id, s.revision);
      await journal.append(line);
      applyChangeSet(view as StoreData, set);
      if (journal.state.bytes > Math.max(compactAt, s.bytes)) {
        compacting = inBackground("compaction", compact).finally(() => {
          compacting = undefined;
        });
      } else if (!s.journal.required && !requiring) {
        requiring = inBackground("snapshot rewrite", requireJournal).finally(() => {
          requiring = undefined;
        });
      }
    },
    async replace(doc) {
      writable("replace");
      // A copy: the caller's records may be edited after (the serializer caches by object).
      const next = structuredClone(doc);
      await settleAll();
      await writeWhole(next, snap !== undefined);
    },
    async close() {
      await settleAll();
      try {
        // A compaction that fails (a full disk) loses nothing: the journal stays whole.
        const s = snap;
        const entries = journal.state.entries;
        if (!opts.readOnly && view && s?.journal && (entries > 0 || s.journal.required)) {
          await writeWhole(view, true);
        }
      } finally {
        await journal.release();
      }
    },
    report: () => lastReport,
    settled: settleAll,
  };
}
