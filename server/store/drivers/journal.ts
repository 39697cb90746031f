/**
 * The store's write-ahead journal: one line per durable save, holding only what changed since
 * the previous save. A save that rotates one secret appends that secret's record (~1 KB) and
 * an fdatasync instead of rewriting and fsyncing the whole document (1.2 MB with 5,000 VMs),
 * so the cost of a commit follows the size of the change, not of the store (etcd's WAL, for
 * the same reason). The snapshot (store.json, snapshot.ts) is rewritten from time to time and
 * a new journal started; see lowdb.ts.
 *
 * Every line is `<checksum> <json>\n`, the checksum being the first 16 hex digits of the
 * SHA-256 of the JSON. The first line is a header naming the journal's id and the snapshot
 * revision it follows (`{"journal":"<id>","after":<rev>}`); the snapshot names the same id,
 * so a journal that belongs to another snapshot is told apart. Each later line is an entry
 * (`{"rev":…,"set":{…},"top":{…}}`). A line is written by one save and fdatasynced before
 * the next is appended, so only the last line can be torn by a crash (journal-scan.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import type { StoreData } from "../types.js";

/**
 * Secrets and VMs (the large sections) are journaled record by record, compared with the last
 * durable save by object and `modRevision`; every other top-level key (keyring, groups, admin
 * tokens: few and small) is journaled whole when its JSON changed.
 */
const BY_RECORD = ["secrets", "vms"] as const;
type Section = (typeof BY_RECORD)[number];

/** Names that may have been added since the last save, from the mutations' reported changes. */
export type Added = Record<Section, Iterable<string>>;

interface Mark {
  obj: object;
  rev: number | undefined;
}

/**
 * What was last made durable, to tell what a save must journal.
 *
 * Changed and removed records are found by walking the baseline (a Map walk: ~0.25 ms for
 * 15,000 records) and comparing object and `modRevision`, which every change bumps
 * (secrets.ts, access.ts; the contract createStoreSerializer relies on too). Added records
 * are taken from the mutations' reported changes (`Added`): enumerating the keys of a
 * 15,000-key object costs ~1.4 ms a save, more than the fdatasync. Every mutation reports what
 * it adds (watchers need it too); without `added`, all keys are enumerated. lowdb.test.ts
 * replays the journal after every kind of change and compares it with the document.
 */
export class JournalBaseline {
  private records: Record<Section, Map<string, Mark>> = { secrets: new Map(), vms: new Map() };
  private top = new Map<string, string>();

  /** A baseline equal to `data` (after a load or a snapshot). */
  static of(data: StoreData): JournalBaseline {
    const b = new JournalBaseline();
    for (const section of BY_RECORD) {
      const cur = data[section] as Record<string, { modRevision?: number }>;
      const marks = b.records[section];
      for (const name in cur) {
        const rec = cur[name] as { modRevision?: number };
        marks.set(name, { obj: rec, rev: rec.modRevision });
      }
    }
    for (const key of topKeys(data)) b.top.set(key, JSON.stringify(data[key]));
    return b;
  }

  /**
   * The journal line that brings the last durable document to `data`. Encoded at once,
   * because records are later changed in place; the baseline moves only when `commit` is
   * called, after the line is durable.
   */
  diff(data: StoreData, added?: Added): { line: Buffer; commit(): void } {
    const entry: JournalEntry = { rev: data.revision, set: {} };
    const moves: (() => void)[] = [];
    for (const section of BY_RECORD) {
      const marks = this.records[section];
      const cur = data[section] as Record<string, { modRevision?: number }>;
      let changed: Record<string, unknown> | undefined;
      const put = (name: string, rec: { modRevision?: number } | undefined) => {
        changed ??= {};
        changed[name] = rec ?? null;
        if (rec) {
          const mark = { obj: rec, rev: rec.modRevision };
          moves.push(() => marks.set(name, mark));
        } else {
          moves.push(() => marks.delete(name));
        }
      };
      for (const [name, was] of marks) {
        const rec = cur[name];
        if (rec === undefined || !Object.hasOwn(cur, name)) put(name, undefined);
        else if (was.obj !== rec || was.rev !== rec.modRevision) put(name, rec);
      }
      for (const name of added ? added[section] : Object.keys(cur)) {
        if (marks.has(name) || (changed && Object.hasOwn(changed, name))) continue;
        const rec = Object.hasOwn(cur, name) ? cur[name] : undefined;
        if (rec) put(name, rec);
      }
      if (changed) entry.set[section] = changed;
    }
    for (const key of topKeys(data)) {
      const json = JSON.stringify(data[key]);
      if (this.top.get(key) === json) continue;
      entry.top ??= {};
      entry.top[key] = data[key];
      moves.push(() => this.top.set(key, json));
    }
    const line = encodeLine(JSON.stringify(entry));
    return {
      line,
      commit: () => {
        for (const m of moves) m();
      },
    };
  }
}

/** One journal entry: the revision it brings the document to, and what changed. */
export interface JournalEntry {
  rev: number;
  /** Changed or added records by section and name; null for a removed one. */
  set: Partial<Record<Section, Record<string, unknown>>>;
  /** Other top-level keys whose value changed, whole. */
  top?: Record<string, unknown>;
}

/** A journal's first line: its id (named by the snapshot) and the revision it follows. */
export interface JournalHeader {
  journal: string;
  after: number;
}

/** A new random journal id: 16 hex digits. */
export function newJournalId(): string {
  return randomBytes(8).toString("hex");
}

/** The header line of a journal `id` that follows a snapshot at revision `after`. */
export function encodeJournalHeader(id: string, after: number): Buffer {
  return encodeLine(JSON.stringify({ journal: id, after } satisfies JournalHeader));
}

/** What one complete line holds, or why it cannot be read. */
export type ParsedLine = { ok: true; value: unknown } | { ok: false; reason: string };

/** Checks and parses one line (without its newline). */
export function parseLine(line: string): ParsedLine {
  const sp = line.indexOf(" ");
  if (sp !== 16 || !/^[0-9a-f]{16}$/.test(line.slice(0, 16))) {
    return { ok: false, reason: "it does not start with a checksum" };
  }
  const json = line.slice(17);
  if (checksum(json) !== line.slice(0, 16)) {
    return { ok: false, reason: "its checksum does not match" };
  }
  try {
    return { ok: true, value: JSON.parse(json) as unknown };
  } catch {
    return { ok: false, reason: "it is not valid JSON" };
  }
}

/** True when `v` is a journal entry. */
export function isEntry(v: unknown): v is JournalEntry {
  const e = v as Partial<JournalEntry> | null;
  return (
    typeof e === "object" &&
    e !== null &&
    typeof e.rev === "number" &&
    typeof e.set === "object" &&
    e.set !== null
  );
}

/** True when `v` is a journal header. */
export function isHeader(v: unknown): v is JournalHeader {
  const h = v as Partial<JournalHeader> | null;
  return (
    typeof h === "object" &&
    h !== null &&
    typeof h.journal === "string" &&
    typeof h.after === "number"
  );
}

/** Applies one entry to `data` in place, bringing it to the entry's revision. */
export function applyEntry(data: StoreData, entry: JournalEntry): void {
  for (const section of BY_RECORD) {
    const changes = entry.set[section];
    if (!changes) continue;
    const target = data[section] as Record<string, unknown>;
    for (const [name, rec] of Object.entries(changes)) {
      if (rec === null) delete target[name];
      else target[name] = rec;
    }
  }
  if (entry.top) Object.assign(data, entry.top);
  data.revision = entry.rev;
}

// --- internal ---

/** Top-level keys journaled whole: all but the per-record sections and the revision. */
function topKeys(data: StoreData): (keyof StoreData)[] {
  return (Object.keys(data) as (keyof StoreData)[]).filter(
    (k) => k !== "secrets" && k !== "vms" && k !== "revision",
  );
}

function checksum(json: string): string {
  return createHash("sha256").update(json).digest("hex").slice(0, 16);
}

function encodeLine(json: string): Buffer {
  return Buffer.from(`${checksum(json)} ${json}\n`);
}
