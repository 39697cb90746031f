/**
 * The journal file (`<file>.wal`) as the snapshot-journal driver writes it: started (its
 * header alone, written durably and renamed over the old one), appended to (one line, one
 * fdatasync; a partial line taken back), emptied after a whole-document snapshot. Lines are
 * encoded by journal.ts; load.ts reads the file and tells where it stands (`state`).
 */
import type { FileHandle } from "node:fs/promises";
import { open } from "node:fs/promises";
import { exists, readIfExists, truncateDurably, writeDurably } from "./durable.js";
import { encodeJournalHeader, parseLine } from "./journal.js";
import type { JournalState } from "./load.js";
import { NO_JOURNAL } from "./load.js";

/** The journal file at `path`, and where it stands as this writer last left or read it. */
export class JournalFile {
  /** Where the file on disk stands: set by a load, then kept by this writer. */
  state: JournalState = { ...NO_JOURNAL };
  private fh: FileHandle | undefined;

  constructor(readonly path: string) {}

  /** Starts journal `id`, following a snapshot at revision `after`: its header alone. */
  async start(id: string, after: number): Promise<void> {
    await this.release();
    const header = encodeJournalHeader(id, after);
    await writeDurably(this.path, header);
    this.state = { id, appendable: true, bytes: header.length, entries: 0 };
  }

  /**
   * Appends one line and fdatasyncs it. On failure the file is cut back to where it was, so
   * the next line does not follow damage, and the error is thrown.
   */
  async append(line: Buffer): Promise<void> {
    this.fh ??= await open(this.path, "a", 0o600);
    const fh = this.fh;
    const before = this.state.bytes;
    try {
      // write(2) may take only part of the line (a disk about to fill up); the rest then
      // fails with ENOSPC, and the partial line is taken back below.
      for (let off = 0; off < line.length; ) {
        const { bytesWritten } = await fh.write(line, off, line.length - off);
        off += bytesWritten;
      }
      await fh.datasync();
    } catch (err) {
      await fh.truncate(before).catch(() => {});
      throw err;
    }
    this.state.bytes += line.length;
    this.state.entries++;
  }

  /** Empties the file (if there is one): a whole-document snapshot needs no journal. */
  async empty(): Promise<void> {
    await this.release();
    if (await exists(this.path)) await truncateDurably(this.path, 0);
    this.state = { ...NO_JOURNAL };
  }

  /** The id in the header on disk, read without a load: "legacy" for none, null if empty. */
  async idOnDisk(): Promise<string | null> {
    const text = await readIfExists(this.path);
    if (!text || text.length === 0) return null;
    const nl = text.indexOf(0x0a);
    const first = parseLine(text.toString("utf8", 0, nl === -1 ? text.length : nl));
    const id = first.ok ? (first.value as { journal?: unknown }).journal : undefined;
    return typeof id === "string" ? id : "legacy";
  }

  /** Closes the file handle appends use (the next append reopens it). */
  async release(): Promise<void> {
    const fh = this.fh;
    this.fh = undefined;
    await fh?.close();
  }
}
