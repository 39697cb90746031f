/**
 * Whether the journal on disk belongs to the snapshot beside it (load.ts): by the ids and
 * revisions both name (snapshot.ts, journal.ts), and the refusals that name both files.
 */
import { SecretsError } from "../../errors.js";
import type { JournalHeader } from "./journal.js";
import { isEntry } from "./journal.js";
import type { JournalScan } from "./journal-scan.js";
import type { SnapshotImage } from "./snapshot-file.js";

/**
 * How the journal relates to the snapshot: none to apply, it follows the snapshot, it is a
 * stale one the snapshot superseded, or a problem (a refusal, or with --repair a loss).
 */
export type Pairing = "none" | "follows" | "stale" | { problem: string; repairNote: string };

/** How the journal relates to the snapshot; a problem is a refusal (or a --repair loss). */
export function pair(
  at: { file: string; walFile: string; R: number },
  read: SnapshotImage,
  scan: JournalScan | undefined,
  present: boolean,
): Pairing {
  const { file, walFile, R } = at;
  const header = headerOf(scan);
  const hasLines =
    scan !== undefined &&
    (header !== undefined ||
      scan.entries.length > 0 ||
      scan.damage !== undefined ||
      scan.torn?.whole !== undefined);
  const setAside = `which does not belong to snapshot ${file}`;
  const theirs = header ? ` (journal ${header.journal}, after revision ${header.after})` : "";
  const refuse = (what: string) => ({
    problem: `store journal ${walFile}${theirs} ${what}; refusing to start (put back the matching pair, or start with --repair to set the journal aside and start from the snapshot alone)`,
    repairNote: setAside,
  });
  if (read.check === "legacy") {
    if (!header) return hasLines ? "follows" : "none";
    return refuse(
      `does not belong to snapshot ${file} (revision ${R}, written before journals had ids)`,
    );
  }
  const j = read.journal;
  if (!j) return hasLines ? refuse(`cannot be matched to the damaged snapshot ${file}`) : "none";
  const ours = `snapshot ${file} (revision ${R}, journal ${j.id})`;
  if (!hasLines) {
    if (!j.required) return "none";
    const state = !present ? "missing" : scan ? "without an intact line" : "empty";
    return {
      problem: `store journal ${walFile} is ${state}, but snapshot ${file} (revision ${R}) expects journal ${j.id}: the changes after revision ${R} are in it; refusing to start (put it back, or start with --repair to start from the snapshot alone)`,
      repairNote: `--repair: store journal ${walFile} is ${state}; started from snapshot ${file} at revision ${R}; changes after revision ${R}, if any, are lost`,
    };
  }
  const replaced = header ? header.journal === j.replaces : j.replaces === "legacy";
  if (replaced) {
    const later = laterRevisions(scan as JournalScan, R);
    if (later.length === 0) return "stale";
    return refuse(
      `was superseded by snapshot ${file} (revision ${R}) but holds revisions after it (${span(later)})`,
    );
  }
  if (!header) return refuse(`has no header, so it does not belong to ${ours}`);
  if (header.journal === j.id && header.after === R) return "follows";
  return refuse(`does not belong to ${ours}`);
}

/** The journal's header: its first line, even when that line lacks only its newline. */
export function headerOf(scan: JournalScan | undefined): JournalHeader | undefined {
  if (scan?.header) return scan.header;
  const w = scan?.torn?.line === 1 ? scan.torn.whole : undefined;
  return w !== undefined && !isEntry(w) ? w : undefined;
}

/** "a" or "a–b": a span of revisions. */
export function span([a, b]: number[]): string {
  return a === b ? `${a}` : `${a}–${b}`;
}

/** The refusal of a journal whose snapshot is missing. */
export function orphanJournal(walFile: string, file: string): SecretsError {
  return new SecretsError(
    "failed_precondition",
    `store journal ${walFile} exists but its snapshot ${file} does not; refusing to start on a partial store (restore the snapshot from a backup; --repair does not start an empty store over a journal)`,
  );
}

/** The refusal of a snapshot whose checksum fails. */
export function damagedSnapshot(file: string): SecretsError {
  return new SecretsError(
    "failed_precondition",
    `store file ${file} is damaged: its checksum does not match its content; refusing to start (restore it from a backup, or start with --repair to accept it as it is)`,
  );
}

// --- internal ---

function laterRevisions(scan: JournalScan, R: number): number[] {
  const revs = scan.entries.map((e) => e.entry.rev);
  if (scan.torn?.whole !== undefined && isEntry(scan.torn.whole)) revs.push(scan.torn.whole.rev);
  const later = revs.filter((r) => r > R);
  return later.length ? [Math.min(...later), Math.max(...later)] : [];
}
