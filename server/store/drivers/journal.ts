/**
 * The store's write-ahead journal: one line per durable commit, holding its change set (the
 * store hands the driver what changed; nothing is diffed). A commit that rotates one secret
 * appends that secret's record (~1 KB) and an fdatasync instead of rewriting and fsyncing the
 * whole document (1.2 MB with 5,000 VMs), so the cost of a commit follows the size of the
 * change, not of the store (etcd's WAL, for the same reason). The snapshot (store.json,
 * snapshot.ts) is rewritten from time to time and a new journal started; see
 * snapshot-journal.ts.
 *
 * Every line is `<checksum> <json>\n`, the checksum being the first 16 hex digits of the
 * SHA-256 of the JSON. The first line is a header naming the journal's id and the snapshot
 * revision it follows (`{"journal":"<id>","after":<rev>}`); the snapshot names the same id,
 * so a journal that belongs to another snapshot is told apart. Each later line is an entry
 * (`{"rev":…,"set":{…},"top":{…}}`). A line is written by one commit and fdatasynced before
 * the next is appended, so only the last line can be torn by a crash (journal-scan.ts).
 */
import { createHash, randomBytes } from "node:crypto";
import type { ChangeSet, Section, StoreData } from "../types.js";

/**
 * Secrets and VMs (the large sections) are journaled record by record; groups, admin tokens
 * and manifests (few and small) are journaled as their whole section, and the keyring whole, when a
 * set touches them. That is the format every version of this journal wrote, so an older
 * secretsd still reads what this one writes.
 */
const BY_RECORD = ["secrets", "vms"] as const;
type ByRecord = (typeof BY_RECORD)[number];

/**
 * The journal line for `set`, which brings `view` (the document as of the last durable
 * commit, not yet changed by `set`) to `set.revision`. Encoded at once: `view` moves on
 * after the line is durable. `view` is only read: for the whole small sections.
 */
export function encodeEntry(set: ChangeSet, view: StoreData): Buffer {
  const entry: JournalEntry = { rev: set.revision, set: {} };
  const whole: Partial<Record<"groups" | "adminTokens" | "manifests", Record<string, unknown>>> =
    {};
  const touch = (section: Section, name: string, rec: unknown) => {
    if (section === "secrets" || section === "vms") {
      entry.set[section] ??= {};
      entry.set[section][name] = rec;
      return;
    }
    whole[section] ??= { ...view[section] };
    if (rec === null) delete whole[section][name];
    else whole[section][name] = rec;
  };
  for (const d of set.deletes) touch(d.section, d.name, null);
  for (const p of set.puts) touch(p.section, p.name, p.record);
  const top: Record<string, unknown> = { ...whole };
  if (set.keyring) top.keyring = set.keyring;
  if (Object.keys(top).length > 0) entry.top = top;
  return encodeLine(JSON.stringify(entry));
}

/** One journal entry: the revision it brings the document to, and what changed. */
export interface JournalEntry {
  rev: number;
  /** Changed or added records by section and name; null for a removed one. */
  set: Partial<Record<ByRecord, Record<string, unknown>>>;
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

function checksum(json: string): string {
  return createHash("sha256").update(json).digest("hex").slice(0, 16);
}

function encodeLine(json: string): Buffer {
  return Buffer.from(`${checksum(json)} ${json}\n`);
}
