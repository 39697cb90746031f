/**
 * The snapshot file (store.json): the whole document as one line of JSON that carries its own
 * integrity check and names the journal that follows it:
 *
 *   {"checksum":"sha256:<64 hex>","journal":{"id":"<16 hex>","required":true,"replaces":"<16 hex>"},"schemaVersion":1,"revision":42,…}
 *
 * - `checksum` is the SHA-256 of every byte after it (from `"journal"` to the end of the file),
 *   so checking it needs no parse and no re-encoding: one hash over the file (~6 ms for 8 MB).
 * - `journal.id` is the id the journal beside the snapshot must name in its header line.
 *   `required` says that journal must exist: true for a snapshot written by a compaction
 *   (changes after it are only in the journal), false after a clean close or a whole-document
 *   write, when the snapshot is the whole store and a missing or empty journal loses nothing.
 * - `journal.replaces` is the journal the snapshot superseded (its lines are all at or below the
 *   snapshot's revision): a crash after the snapshot's rename and before the journal is
 *   replaced leaves that one beside it. "legacy" is a journal without a header (written by a
 *   version before this format), null none.
 *
 * A snapshot written before this format has neither member and loads as it is; the next
 * snapshot written adds them. `checksum` and `journal` are the driver's, not the document's.
 */
import { createHash } from "node:crypto";
import { SecretsError } from "../../errors.js";
import type { SecretRecord, StoreData, VmRecord } from "../types.js";

/** The snapshot's `journal` member: which journal follows it. */
export interface SnapshotJournal {
  /** The id the journal's header must carry. */
  id: string;
  /** The journal must exist: the snapshot alone is not the whole store. */
  required: boolean;
  /** The journal this snapshot superseded: its id, "legacy" (no header), or null. */
  replaces: string | null;
}

/** What a snapshot file holds, and whether its checksum matched. */
export type SnapshotRead =
  | { kind: "sealed"; data: StoreData; journal: SnapshotJournal }
  /** Written before snapshots carried a checksum: nothing to check. */
  | { kind: "legacy"; data: StoreData | null }
  /** The checksum does not match (or is itself damaged); `journal` if it still reads. */
  | { kind: "mismatch"; data: StoreData; journal: SnapshotJournal | undefined };

/**
 * The sealed snapshot: the document `body` (from createStoreSerializer) with its checksum and
 * `journal` member, as buffers to write in order (an 8 MB concat costs ~3 ms).
 */
export function sealSnapshot(body: readonly Buffer[], journal: SnapshotJournal): Buffer[] {
  const first = body[0];
  if (first?.[0] !== 0x7b) throw new Error("snapshot body must be a JSON object");
  // The body always has members (schemaVersion, revision, …), so a comma follows `journal`.
  return seal([first.subarray(1), ...body.slice(1)], journal);
}

/**
 * The sealed snapshot `bytes` with another `journal` member, the document untouched: no
 * re-encoding, one hash to check the old checksum and one for the new. Undefined when `bytes`
 * is not an intact sealed snapshot (it changed since it was written or checked).
 */
export function resealSnapshot(bytes: Buffer, journal: SnapshotJournal): Buffer[] | undefined {
  const stored = SEALED_HEAD.exec(bytes.toString("latin1", 0, HEAD_LENGTH))?.[1];
  const rest = bytes.subarray(HEAD_LENGTH);
  if (stored === undefined || sha256(rest) !== stored) return undefined;
  // `"journal":{…},`: the member holds no object or string with a brace in it.
  if (!rest.subarray(0, JOURNAL_MEMBER.length).equals(JOURNAL_MEMBER)) return undefined;
  const end = rest.indexOf("},");
  if (end < 0) return undefined;
  return seal([rest.subarray(end + 2)], journal);
}

/** The byte length of buffers to be written in order. */
export function byteLength(parts: readonly Buffer[]): number {
  let n = 0;
  for (const p of parts) n += p.length;
  return n;
}

/**
 * Reads a snapshot file's bytes. Throws (naming `file`) when they are not a JSON object: no
 * repair can recover that. A checksum that does not match is returned as "mismatch", for the
 * caller to refuse or, with --repair, accept.
 */
export function readSnapshot(bytes: Buffer, file: string): SnapshotRead {
  let parsed: unknown;
  try {
    parsed = JSON.parse(bytes.toString("utf8"));
  } catch {
    // The parser's message quotes the file's text: not in an error that may be logged.
    throw new SecretsError(
      "failed_precondition",
      `store file ${file} is not valid JSON; refusing to start (restore it from a backup: --repair cannot read it either)`,
    );
  }
  if (parsed === null) return { kind: "legacy", data: null };
  if (typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new SecretsError(
      "failed_precondition",
      `store file ${file} does not hold a store document; refusing to start (restore it from a backup)`,
    );
  }
  const doc = parsed as Record<string, unknown>;
  const stored = SEALED_HEAD.exec(bytes.toString("latin1", 0, HEAD_LENGTH))?.[1];
  const journal = snapshotJournalOf(doc.journal);
  const legacy = isLegacyDocument(doc);
  delete doc.checksum;
  delete doc.journal;
  const data = doc as unknown as StoreData;
  if (legacy) return { kind: "legacy", data };
  if (stored !== undefined && journal && sha256(bytes.subarray(HEAD_LENGTH)) === stored) {
    return { kind: "sealed", data, journal };
  }
  return { kind: "mismatch", data, journal };
}

/**
 * Serialises the document to UTF-8 JSON as a list of buffers (their concatenation is the
 * JSON), re-encoding only the secrets and VMs that changed since the last call. Re-stringifying
 * 10,000 secrets (~8 MB) took ~30 ms a write, most of a write's latency, and 5,000 VMs with
 * their token hashes most of a rotation's commit. Every put stamps a new `modRevision` on a
 * new frozen record (store.ts), so a record whose object and modRevision are the same as at
 * the last call has the same bytes. lowdb.test.ts checks the output against JSON.stringify
 * after every kind of change.
 */
export function createStoreSerializer(): (data: StoreData) => Buffer[] {
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
    return [
      Buffer.from(`${head.slice(0, -1)}${head.length > 2 ? "," : ""}"secrets":{`),
      section("secrets", secrets),
      Buffer.from('},"vms":{'),
      section("vms", vms),
      CLOSE,
    ];
  };
}

// --- internal ---

const PREFIX = '{"checksum":"sha256:';
/** `{"checksum":"sha256:<64 hex>",`: everything after it is covered by the checksum. */
const HEAD_LENGTH = PREFIX.length + 64 + 2;
const SEALED_HEAD = /^\{"checksum":"sha256:([0-9a-f]{64})",$/;
const JOURNAL_MEMBER = Buffer.from('"journal":{');
const COMMA = Buffer.from(",");
const CLOSE = Buffer.from("}}");

/** The members of a document written before snapshots were sealed. */
const LEGACY_KEYS = new Set([
  "schemaVersion",
  "revision",
  "keyring",
  "secrets",
  "groups",
  "vms",
  "adminTokens",
  // Not written by that version, but a section added since that tests' legacy documents
  // (made from today's empty document) carry: never a sign of damage.
  "manifests",
]);

/** `{"checksum":"sha256:<hex>","journal":<journal>,` + the document's members (`members`). */
function seal(members: readonly Buffer[], journal: SnapshotJournal): Buffer[] {
  const covered = [Buffer.from(`"journal":${JSON.stringify(journal)},`), ...members];
  const hash = createHash("sha256");
  for (const b of covered) hash.update(b);
  return [Buffer.from(`${PREFIX}${hash.digest("hex")}",`), ...covered];
}

function sha256(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex");
}

/**
 * A legacy document has only the members the previous version wrote: one with any other
 * member (such as a `checksum` whose name took a bit flip) is a damaged sealed snapshot.
 */
function isLegacyDocument(doc: object): boolean {
  return Object.keys(doc).every((k) => LEGACY_KEYS.has(k));
}

function snapshotJournalOf(v: unknown): SnapshotJournal | undefined {
  if (typeof v !== "object" || v === null) return undefined;
  const j = v as Record<string, unknown>;
  if (typeof j.id !== "string" || typeof j.required !== "boolean") return undefined;
  if (j.replaces !== null && typeof j.replaces !== "string") return undefined;
  return { id: j.id, required: j.required, replaces: j.replaces };
}
