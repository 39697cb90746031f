/**
 * Change sets (types.ts `ChangeSet`): what one mutation, or a group commit of several,
 * changed, record by record. The store builds one per mutation from its transaction's ops
 * and merges a group commit's sets in revision order into one durable write; drivers apply
 * them to their own view of the document; the watch feed is derived from them (feed.ts).
 */
import type {
  ChangeSet,
  KeyringRecord,
  RecordDelete,
  RecordPut,
  Section,
  StoreData,
} from "./types.js";

/** Collects puts and deletes; the last op on a name wins, so each name is in the set once. */
export class ChangeSetBuilder {
  private readonly ops = new Map<string, { put: RecordPut } | { del: RecordDelete }>();
  private keyring: Readonly<KeyringRecord> | undefined;

  /** Records that `put.record` is now the record `put.name` of `put.section`. */
  put(put: RecordPut): void {
    this.ops.set(keyOf(put.section, put.name), { put });
  }

  /** Records that `name` is removed from `section`. */
  delete(section: Section, name: string): void {
    this.ops.set(keyOf(section, name), { del: { section, name } });
  }

  /** Records that the keyring is now `keyring`. */
  setKeyring(keyring: Readonly<KeyringRecord>): void {
    this.keyring = keyring;
  }

  /** Adds every op of `set` after the ones already collected. */
  add(set: ChangeSet): void {
    for (const d of set.deletes) this.delete(d.section, d.name);
    for (const p of set.puts) this.put(p);
    if (set.keyring) this.setKeyring(set.keyring);
  }

  /** The collected ops as a set that brings the document to `revision`. */
  build(revision: number): ChangeSet {
    const puts: RecordPut[] = [];
    const deletes: RecordDelete[] = [];
    for (const op of this.ops.values()) {
      if ("put" in op) puts.push(op.put);
      else deletes.push(op.del);
    }
    return this.keyring
      ? { revision, puts, deletes, keyring: this.keyring }
      : { revision, puts, deletes };
  }
}

/**
 * One set equal to applying `sets` in order (they must be in increasing revision order):
 * what a group commit writes. A single set is returned as it is.
 */
export function mergeChangeSets(sets: readonly ChangeSet[]): ChangeSet {
  const last = sets[sets.length - 1];
  if (!last) throw new Error("mergeChangeSets: no sets");
  if (sets.length === 1) return last;
  const b = new ChangeSetBuilder();
  for (const s of sets) b.add(s);
  return b.build(last.revision);
}

/**
 * Applies `set` to `doc` in place (its sections must be its own objects: see
 * forkDocument), sharing the set's frozen records, and brings it to `set.revision`.
 */
export function applyChangeSet(doc: StoreData, set: ChangeSet): void {
  for (const d of set.deletes) delete (doc[d.section] as Record<string, unknown>)[d.name];
  for (const p of set.puts) (doc[p.section] as Record<string, unknown>)[p.name] = p.record;
  if (set.keyring) doc.keyring = set.keyring as KeyringRecord;
  doc.revision = set.revision;
}

/**
 * A document with its own top-level object and sections, sharing `doc`'s records: a view
 * that change sets can be applied to without touching `doc` (records are never edited in
 * place, so sharing them is safe and costs only the section maps).
 */
export function forkDocument(doc: StoreData): StoreData {
  return {
    ...doc,
    secrets: { ...doc.secrets },
    groups: { ...doc.groups },
    vms: { ...doc.vms },
    adminTokens: { ...doc.adminTokens },
    manifests: { ...doc.manifests },
  };
}

// --- internal ---

function keyOf(section: Section, name: string): string {
  // Section names hold no NUL, so the key is unambiguous whatever the record's name holds.
  return `${section}\u0000${name}`;
}
