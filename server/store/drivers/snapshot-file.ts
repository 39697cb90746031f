/**
 * The snapshot file (store.json) as a lowdb Adapter: lowdb's `Low` reads and writes the
 * snapshot through it, and its `data` is the snapshot-journal driver's view of the document.
 * lowdb's own DataFile/TextFile (steno) renames a temp file but never fsyncs, and re-encodes
 * the whole document with JSON.stringify on every write; this adapter writes durably
 * (durable.ts: temp, fsync, rename, fsync dir), seals the file with its checksum and journal
 * member (snapshot.ts), and re-encodes only the records that changed since its last write
 * (createStoreSerializer). Never `JSONFilePreset`: in lowdb 7 it silently switches to memory
 * when NODE_ENV=test (STYLE.md §10).
 */
import { readFile } from "node:fs/promises";
import type { Adapter } from "lowdb";
import { Low } from "lowdb";
import type { StoreData } from "../types.js";
import { readIfExists, writeDurably } from "./durable.js";
import type { SnapshotJournal } from "./snapshot.js";
import {
  byteLength,
  createStoreSerializer,
  readSnapshot,
  resealSnapshot,
  sealSnapshot,
} from "./snapshot.js";

/** What the snapshot file holds: the document and the member naming its journal. */
export interface SnapshotImage {
  /** The document. The driver applies its commits to it: it is the driver's view. */
  doc: StoreData;
  /** Which journal follows the snapshot; undefined for a file written before snapshots had one. */
  journal: SnapshotJournal | undefined;
  /**
   * How the file read checked out: `sealed` (its checksum matched), `legacy` (written before
   * snapshots had a checksum) or `mismatch` (its checksum failed: --repair may accept it).
   */
  check: "sealed" | "legacy" | "mismatch";
}

/** lowdb over the snapshot file: `db.read()` loads it, `db.write()` writes `db.data` durably. */
export interface SnapshotDb {
  db: Low<SnapshotImage | null>;
  file: SnapshotFile;
}

/** Opens (reads nothing yet) the snapshot file at `path` through lowdb. */
export function openSnapshotDb(path: string): SnapshotDb {
  const file = new SnapshotFile(path);
  return { db: new Low<SnapshotImage | null>(file, null), file };
}

/** The lowdb Adapter for store.json (see the file comment). */
export class SnapshotFile implements Adapter<SnapshotImage | null> {
  /** The size of the file as this adapter last read or wrote it (0: none). */
  bytes = 0;
  private readonly serialize = createStoreSerializer();

  constructor(readonly path: string) {}

  /**
   * The snapshot, or null when there is none (no file, or a legacy file holding `null`).
   * Throws a SecretsError naming the file when it is not a JSON object (snapshot.ts).
   */
  async read(): Promise<SnapshotImage | null> {
    const bytes = await readIfExists(this.path);
    this.bytes = bytes?.length ?? 0;
    if (!bytes) return null;
    const read = readSnapshot(bytes, this.path);
    if (!read.data) return null;
    return {
      doc: read.data,
      journal: read.kind === "legacy" ? undefined : read.journal,
      check: read.kind,
    };
  }

  /**
   * Writes `image` as the snapshot, sealed with its journal member. The document is encoded
   * before the first await, so the caller may change it as soon as this returns a promise.
   * Throws when `image.journal` is unset: every snapshot written names its journal.
   */
  write(image: SnapshotImage | null): Promise<void> {
    if (!image?.journal) return Promise.reject(new Error("a snapshot is written with its journal"));
    const parts = sealSnapshot(this.serialize(image.doc), image.journal);
    return writeDurably(this.path, parts).then(() => {
      this.bytes = byteLength(parts);
    });
  }

  /**
   * Rewrites the file on disk with another journal member, its document untouched: no
   * re-encoding, one hash to check the old checksum and one for the new. Throws when the
   * file changed since this adapter wrote or read it.
   */
  async reseal(journal: SnapshotJournal): Promise<void> {
    const parts = resealSnapshot(await readFile(this.path), journal);
    if (!parts)
      throw new Error(`store file ${this.path} changed since this store wrote or read it`);
    await writeDurably(this.path, parts);
    this.bytes = byteLength(parts);
  }
}
