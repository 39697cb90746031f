/**
 * Opening the store's files: the snapshot (read through lowdb: snapshot-file.ts), then the
 * journal beside it (journal-scan.ts), checked against each other (load-pairing.ts). Damage
 * is named, never swallowed:
 *
 * | found                                              | plain start            | --repair                                   |
 * |----------------------------------------------------|------------------------|--------------------------------------------|
 * | leftover `.store.json.tmp` / `.store.json.wal.tmp` | removed, info line     | same                                       |
 * | snapshot checksum fails, JSON parses               | refuse                 | accept it; keep the file as evidence       |
 * | snapshot not JSON                                  | refuse                 | refuse                                     |
 * | journal without its snapshot                       | refuse                 | refuse                                     |
 * | a complete journal line damaged (any line)         | refuse: file, line, byte | drop it and all after; keep the journal  |
 * | incomplete last line, checksum intact              | apply, add the newline | same                                       |
 * | incomplete last line, damaged                      | drop it, warn          | same                                       |
 * | journal missing or empty, the snapshot requires it | refuse: both files     | start from the snapshot                    |
 * | journal of another snapshot / no header            | refuse: both files     | set it aside, start from the snapshot      |
 *
 * A refusal changes no file. A --repair start that accepted a loss writes a new snapshot of
 * what it kept, so the next start is a plain one; what it set aside is renamed, never deleted.
 * (About 300 lines: the table is implemented here row by row, each refusal next to its
 * repair; the rules that pair a journal with its snapshot are in load-pairing.ts.)
 */
import { copyFile, rename, stat, unlink } from "node:fs/promises";
import { SecretsError } from "../../errors.js";
import type { Logger } from "../../logger.js";
import type { StoreData } from "../types.js";
import {
  appendDurably,
  evidencePathOf,
  readIfExists,
  tempPathOf,
  truncateDurably,
} from "./durable.js";
import { applyEntry, isEntry, newJournalId } from "./journal.js";
import type { JournalScan } from "./journal-scan.js";
import { scanJournal } from "./journal-scan.js";
import { damagedSnapshot, headerOf, orphanJournal, pair, span } from "./load-pairing.js";
import type { StoreLoadReport } from "./load-report.js";
import { emptyLoadReport } from "./load-report.js";
import type { SnapshotJournal } from "./snapshot.js";
import type { SnapshotDb, SnapshotImage } from "./snapshot-file.js";

/** How to open the files. */
export interface LoadOptions {
  /** The snapshot; the journal is `<file>.wal`. */
  file: string;
  /** lowdb over the snapshot file: it reads the snapshot, and writes the one a repair makes. */
  snapshot: SnapshotDb;
  /** Accept named losses instead of refusing (and write the files that make them final). */
  repair: boolean;
  /** Change no file: no temp removal, no torn-line cut, no repair. */
  readOnly: boolean;
  /** Remove leftover temp files first (the first load of a writer). */
  removeTemps: boolean;
  log: Logger;
}

/** The journal on disk, as the writer needs to know it. */
export interface JournalState {
  /** The id in its header, "legacy" (lines without a header), or null (absent or empty). */
  id: string | null;
  /** It follows the snapshot on disk and ends on an intact line: appends go after it. */
  appendable: boolean;
  /** Its intact bytes. */
  bytes: number;
  /** Its entries after the snapshot's revision. */
  entries: number;
}

/** The snapshot on disk, as the writer needs to know it. */
export interface SnapshotState {
  /** Its journal member; undefined for a legacy snapshot. */
  journal: SnapshotJournal | undefined;
  revision: number;
  bytes: number;
}

/** The loaded document and where the files stand. */
export interface LoadedFiles {
  /** The snapshot's document with the journal applied: `snapshot.db.data.doc`, or null. */
  data: StoreData | null;
  snapshot: SnapshotState | undefined;
  journal: JournalState;
  report: StoreLoadReport;
}

/** A journal state for no journal on disk. */
export const NO_JOURNAL: Readonly<JournalState> = Object.freeze({
  id: null,
  appendable: false,
  bytes: 0,
  entries: 0,
});

/**
 * Loads the document from the snapshot and its journal. Throws a SecretsError whose message
 * names the file(s), what is wrong and what --repair would accept, when the files are damaged
 * and `repair` is off (or the damage is past repair).
 */
export async function loadStoreFiles(opts: LoadOptions): Promise<LoadedFiles> {
  const { file } = opts;
  const walFile = `${file}.wal`;
  const report = emptyLoadReport();
  if (opts.removeTemps && !opts.readOnly) {
    for (const tmp of [tempPathOf(file), tempPathOf(walFile)]) await removeTemp(tmp, opts, report);
  }
  // The journal before the snapshot: a compaction renames the new snapshot before it replaces
  // the journal, so this order never pairs an old snapshot with a newer journal.
  const wal = await readIfExists(walFile);
  const { db } = opts.snapshot;
  db.data = null;
  await db.read();
  const read = db.data as SnapshotImage | null;
  if (!read) {
    if (wal && wal.length > 0) throw orphanJournal(walFile, file);
    return { data: null, snapshot: undefined, journal: { ...NO_JOURNAL }, report };
  }
  const repair = opts.repair && !opts.readOnly;
  if (read.check === "mismatch" && !repair) throw damagedSnapshot(file);
  // Entries are applied to the snapshot's document in place: lowdb's data is the whole store.
  const ctx: Ctx = { opts, walFile, report, repair, data: read.doc, R: read.doc.revision };
  report.snapshot = read.check === "mismatch" ? "accepted" : read.check;
  const scan = wal && wal.length > 0 ? scanJournal(wal) : undefined;
  const journal = await useJournal(ctx, read, scan, wal !== undefined);
  report.revision = ctx.data.revision;
  const snapshot: SnapshotState = {
    journal: read.journal,
    revision: ctx.R,
    bytes: opts.snapshot.file.bytes,
  };
  if (read.check === "mismatch" || ctx.setAside !== undefined || ctx.lost) {
    return { data: ctx.data, ...(await finishRepair(ctx, read.check === "mismatch")), report };
  }
  return { data: ctx.data, snapshot, journal, report };
}

// --- internal ---

interface Ctx {
  opts: LoadOptions;
  walFile: string;
  report: StoreLoadReport;
  repair: boolean;
  data: StoreData;
  /** The snapshot's revision. */
  R: number;
  /** Why the journal is to be set aside (repair). */
  setAside?: string;
  /** A loss accepted that needs a new snapshot (a missing journal, dropped lines). */
  lost?: boolean;
}

/** Checks the journal against the snapshot, applies it, and says where it stands. */
async function useJournal(
  ctx: Ctx,
  read: SnapshotImage,
  scan: JournalScan | undefined,
  present: boolean,
): Promise<JournalState> {
  const pairing = pair(
    { file: ctx.opts.file, walFile: ctx.walFile, R: ctx.R },
    read,
    scan,
    present,
  );
  if (typeof pairing === "object") {
    if (!ctx.repair) throw new SecretsError("failed_precondition", pairing.problem);
    if (scan) ctx.setAside = pairing.repairNote;
    else {
      ctx.lost = true;
      warn(ctx, pairing.repairNote, { file: ctx.walFile });
    }
    return { ...NO_JOURNAL };
  }
  if (!scan || pairing === "none") return { ...NO_JOURNAL, id: scan?.header?.journal ?? null };
  if (scan.damage) return dropDamagedLines(ctx, scan, pairing);
  if (pairing === "stale") {
    return { ...NO_JOURNAL, id: scan.header?.journal ?? "legacy" };
  }
  let applied = 0;
  for (const { entry } of scan.entries) {
    if (entry.rev > ctx.R) {
      applyEntry(ctx.data, entry);
      applied++;
    }
  }
  const bytes = await settleTail(ctx, scan, () => applied++);
  ctx.report.applied = applied;
  const id = headerOf(scan)?.journal;
  return { id: id ?? "legacy", appendable: id !== undefined, bytes, entries: applied };
}

/** A damaged complete line: refuse, or (--repair) keep what is before it. */
function dropDamagedLines(ctx: Ctx, scan: JournalScan, pairing: "follows" | "stale"): JournalState {
  const d = scan.damage as NonNullable<JournalScan["damage"]>;
  let kept = ctx.R;
  if (pairing === "follows") {
    for (const { entry } of scan.entries) if (entry.rev > ctx.R) kept = entry.rev;
  }
  const lostFrom = kept + 1;
  const lostTo = Math.max(lostFrom, ...d.revisions);
  const revisions =
    pairing === "follows"
      ? `revision${lostTo > lostFrom ? "s" : ""} ${span([lostFrom, lostTo])}`
      : "";
  const after = d.lastLine - d.line;
  if (!ctx.repair) {
    const more = after > 0 ? ` and the ${after} line${after > 1 ? "s" : ""} after it` : "";
    throw new SecretsError(
      "failed_precondition",
      `store journal ${ctx.walFile} is damaged at line ${d.line} (byte ${d.offset}): ${d.reason}; refusing to start (start with --repair to drop line ${d.line}${more}${revisions ? `, ${revisions}` : ""})`,
    );
  }
  if (pairing === "follows") {
    for (const { entry } of scan.entries) if (entry.rev > ctx.R) applyEntry(ctx.data, entry);
    // The lost revisions were handed out: the store goes on after them, never reusing one.
    ctx.data.revision = Math.max(ctx.data.revision, lostTo);
  }
  const lines = after > 0 ? `lines ${d.line}–${d.lastLine}` : `line ${d.line}`;
  ctx.setAside = `--repair: dropped ${lines} of store journal ${ctx.walFile} from byte ${d.offset} (line ${d.line}: ${d.reason}${revisions ? `; ${revisions} lost, not to be reused` : ""})`;
  return { ...NO_JOURNAL };
}

/** Applies a whole torn tail and restores its newline, or cuts a torn one off with a warning. */
async function settleTail(ctx: Ctx, scan: JournalScan, onApplied: () => void): Promise<number> {
  const t = scan.torn;
  if (!t) return scan.validBytes;
  const { walFile } = ctx;
  if (t.whole !== undefined) {
    if (isEntry(t.whole) && t.whole.rev > ctx.data.revision) {
      applyEntry(ctx.data, t.whole);
      onApplied();
    }
    if (!ctx.opts.readOnly) await appendDurably(walFile, Buffer.from("\n"));
    ctx.opts.log.info(
      `store journal ${walFile}: last line ${t.line} at byte ${t.offset} was whole but for its newline; applied it and restored the newline`,
      { file: walFile, line: t.line, offset: t.offset },
    );
    return t.offset + t.bytes + 1;
  }
  const next = ctx.data.revision + 1;
  warn(
    ctx,
    `store journal ${walFile}: dropped incomplete last line ${t.line} at byte ${t.offset} (${t.bytes} bytes): a write cut short by a crash, never acknowledged; or a journal cut short, losing revision ${next} and any after it`,
    { file: walFile, offset: t.offset, bytes: t.bytes, line: t.line },
  );
  // Cut it off so that the next entry does not follow damage.
  if (!ctx.opts.readOnly) await truncateDurably(walFile, t.offset);
  return t.offset;
}

/**
 * Makes a --repair start final: keeps the damaged files as evidence (renamed or copied, never
 * deleted) and writes a snapshot of what was kept, with no journal required after it.
 */
async function finishRepair(
  ctx: Ctx,
  snapshotDamaged: boolean,
): Promise<{ snapshot: SnapshotState; journal: JournalState }> {
  const { file } = ctx.opts;
  if (snapshotDamaged) {
    const aside = await evidencePathOf(file);
    await copyFile(file, aside);
    ctx.report.setAside.push(aside);
    warn(
      ctx,
      `--repair: accepted store file ${file} although its checksum does not match; the file as it was is kept as ${aside}`,
      { file, keptAs: aside },
    );
  }
  if (ctx.setAside !== undefined) {
    const aside = await evidencePathOf(ctx.walFile);
    await rename(ctx.walFile, aside);
    ctx.report.setAside.push(aside);
    const msg = ctx.setAside.startsWith("--repair:")
      ? `${ctx.setAside}; the journal as it was is kept as ${aside}`
      : `--repair: set aside store journal ${ctx.walFile}, ${ctx.setAside}, as ${aside}; started from the snapshot at revision ${ctx.R}`;
    warn(ctx, msg, { file: ctx.walFile, keptAs: aside });
  }
  const journal: SnapshotJournal = { id: newJournalId(), required: false, replaces: null };
  const { db, file: adapter } = ctx.opts.snapshot;
  db.data = { doc: ctx.data, journal, check: "sealed" };
  await db.write();
  ctx.report.revision = ctx.data.revision;
  return {
    snapshot: { journal, revision: ctx.data.revision, bytes: adapter.bytes },
    journal: { ...NO_JOURNAL },
  };
}

async function removeTemp(tmp: string, opts: LoadOptions, report: StoreLoadReport) {
  const st = await stat(tmp).catch(() => undefined);
  if (!st?.isFile()) return;
  await unlink(tmp);
  report.removedTemps.push(tmp);
  opts.log.info("removed a leftover temp file", { file: tmp, bytes: st.size });
}

function warn(ctx: Ctx, msg: string, meta: Record<string, unknown>) {
  ctx.opts.log.warn(msg, meta);
  ctx.report.warnings.push(msg);
}
