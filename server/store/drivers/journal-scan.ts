/**
 * Reads a journal file's lines and tells intact entries, damage and a torn tail apart.
 *
 * A line is appended by one save and fdatasynced before the next is written, so a crash can
 * only tear the last one, and a torn line has no newline yet. Hence:
 * - a COMPLETE line (ending in \n) whose checksum, JSON or shape is bad is damage, wherever it
 *   is, the last line included: something changed the file after it was written;
 * - only an incomplete last line is a torn write. If its checksum is intact, only the newline
 *   is missing: it is whole and may be applied. Otherwise it is a write cut short.
 */
import type { JournalEntry, JournalHeader } from "./journal.js";
import { isEntry, isHeader, parseLine } from "./journal.js";

/** An intact entry and where it is (line numbers are 1-based, offsets in bytes from 0). */
export interface ScannedEntry {
  line: number;
  offset: number;
  entry: JournalEntry;
}

/** The first damaged complete line, and what follows it. */
export interface JournalDamage {
  line: number;
  offset: number;
  reason: string;
  /** The last line number in the file (a torn tail included). */
  lastLine: number;
  /** Revisions named by the damaged line (if it parses) and by the intact entries after it. */
  revisions: number[];
}

/** An incomplete last line. */
export interface TornTail {
  line: number;
  offset: number;
  bytes: number;
  /** The line is intact but for its newline: its entry (or header, on line 1). */
  whole?: JournalEntry | JournalHeader;
}

/** What a journal file holds. */
export interface JournalScan {
  /** Line 1, when it is a header. */
  header?: JournalHeader;
  /** Intact entries before any damage, in file order (not counting a torn tail). */
  entries: ScannedEntry[];
  damage?: JournalDamage;
  /** An incomplete last line after intact ones (absent when there is damage before it). */
  torn?: TornTail;
  /** Where the intact complete lines end (before any damage or torn tail). */
  validBytes: number;
}

/** Scans a journal file's bytes. Never throws: the caller decides what damage means. */
export function scanJournal(text: Buffer): JournalScan {
  const scan: JournalScan = { entries: [], validBytes: 0 };
  let offset = 0;
  for (let line = 1; offset < text.length; line++) {
    const nl = text.indexOf(0x0a, offset);
    const complete = nl !== -1;
    const end = complete ? nl + 1 : text.length;
    const parsed = parseLine(text.toString("utf8", offset, complete ? nl : text.length));
    const value = parsed.ok ? parsed.value : undefined;
    const kind = line === 1 && isHeader(value) ? "header" : isEntry(value) ? "entry" : undefined;
    if (scan.damage) {
      scan.damage.lastLine = line;
      if (kind === "entry") scan.damage.revisions.push((value as JournalEntry).rev);
    } else if (!complete) {
      scan.torn = { line, offset, bytes: end - offset };
      if (kind) scan.torn.whole = value as JournalEntry | JournalHeader;
    } else if (kind === "header") {
      scan.header = value as JournalHeader;
      scan.validBytes = end;
    } else if (kind === "entry") {
      scan.entries.push({ line, offset, entry: value as JournalEntry });
      scan.validBytes = end;
    } else {
      const reason = parsed.ok
        ? line === 1
          ? "it is neither a journal header nor an entry"
          : "it is not a journal entry"
        : parsed.reason;
      const claimed = (value as { rev?: unknown } | undefined)?.rev;
      scan.damage = {
        line,
        offset,
        reason,
        lastLine: line,
        revisions: typeof claimed === "number" ? [claimed] : [],
      };
    }
    offset = end;
  }
  return scan;
}
