/**
 * The transaction API: the only way the store's document changes (issue #9). A mutator gets
 * the head read-only (`guarded`: sections refuse assignment, records are frozen) and a `Tx`
 * whose ops change the head at once, stamp `modRevision` and record the op in the
 * mutation's change set (change-set.ts), which is what the driver persists and the watch
 * feed is derived from. An edit made any other way throws (frozen.test.ts) instead of being
 * acknowledged and lost after a restart.
 */
import { ChangeSetBuilder } from "./change-set.js";
import type {
  AdminTokenRecord,
  ChangeSet,
  GroupRecord,
  KeyringRecord,
  ManifestRecord,
  RecordKinds,
  SecretRecord,
  Section,
  StoreData,
  VmRecord,
} from "./types.js";
import { SECTIONS } from "./types.js";

/**
 * A read-only view of the document: sections cannot be assigned to (types; and at run time
 * in the head a mutator gets) and records are frozen (run time).
 */
export interface StoreView {
  readonly schemaVersion: number;
  readonly revision: number;
  readonly keyring: Readonly<KeyringRecord> | null;
  readonly secrets: Readonly<Record<string, SecretRecord>>;
  readonly groups: Readonly<Record<string, GroupRecord>>;
  readonly vms: Readonly<Record<string, VmRecord>>;
  readonly adminTokens: Readonly<Record<string, AdminTokenRecord>>;
  readonly manifests: Readonly<Record<string, ManifestRecord>>;
}

/** What a record is put as: the store stamps `modRevision`. */
export type RecordInput<S extends Section> = Omit<RecordKinds[S], "modRevision">;

/** One mutation's handle on the document. */
export interface Tx {
  /** The revision this mutation commits as. */
  readonly revision: number;
  /** Adds or replaces `record` (keyed by its name), stamped with `revision`, frozen. */
  put<S extends Section>(section: S, record: RecordInput<S>): RecordKinds[S];
  /** Removes the record `name`; a no-op when there is none. */
  delete(section: Section, name: string): void;
  /** Replaces the keyring (a copy is frozen and committed). */
  setKeyring(keyring: KeyringRecord): void;
}

/** A mutation in progress: its Tx, its change set once it returns, and its undo. */
export interface Transaction {
  tx: Tx;
  /** The mutation's change set (call once its mutator has returned). */
  set(): ChangeSet;
  /** Takes every op back, for a mutator that throws. */
  undo(): void;
}

/**
 * A mutation's handle on `doc` (the head): each op changes the head at once (later mutators
 * of the same burst see it) and is recorded in the mutation's change set. `undo` takes every
 * op back, for a mutator that throws.
 */
export function transaction(doc: StoreData, revision: number): Transaction {
  const ops = new ChangeSetBuilder();
  const undos: (() => void)[] = [];
  const swap = (sec: Record<string, unknown>, name: string, record: unknown) => {
    const before = Object.hasOwn(sec, name) ? sec[name] : undefined;
    restore(sec, name, record);
    undos.push(() => restore(sec, name, before));
  };
  const tx: Tx = {
    revision,
    put(section, input) {
      const record = deepFreeze({ ...input, modRevision: revision }) as RecordKinds[typeof section];
      swap(doc[section] as Record<string, unknown>, record.name, record);
      ops.put({ section, name: record.name, record });
      return record;
    },
    delete(section, name) {
      const sec = doc[section] as Record<string, unknown>;
      if (!Object.hasOwn(sec, name)) return;
      swap(sec, name, undefined);
      ops.delete(section, name);
    },
    setKeyring(keyring) {
      const before = doc.keyring;
      const frozen = deepFreeze(structuredClone(keyring));
      doc.keyring = frozen;
      undos.push(() => {
        doc.keyring = before;
      });
      ops.setKeyring(frozen);
    },
  };
  return {
    tx,
    set: () => ops.build(revision),
    undo: () => {
      for (const u of undos.reverse()) u();
    },
  };
}

function restore(sec: Record<string, unknown>, name: string, record: unknown) {
  if (record === undefined) delete sec[name];
  else sec[name] = record;
}

/**
 * The head as a mutator sees it: its sections refuse assignment and delete (a TypeError, as
 * a frozen record does), so a record put in place of the transaction API cannot be lost
 * after a restart. Reads pass through; only mutators pay for the proxy.
 */
export function guarded(doc: StoreData): StoreView {
  const view = { ...doc } as Record<string, unknown>;
  for (const section of SECTIONS) view[section] = new Proxy(doc[section], READ_ONLY);
  // The revision and keyring are read from the head itself: tx ops change them.
  Object.defineProperty(view, "keyring", { get: () => doc.keyring });
  Object.defineProperty(view, "revision", { get: () => doc.revision });
  return Object.freeze(view) as unknown as StoreView;
}

const refuse = (): never => {
  throw new TypeError("the store's document is changed only through tx.put / tx.delete");
};
const READ_ONLY: ProxyHandler<object> = {
  set: refuse,
  defineProperty: refuse,
  deleteProperty: refuse,
};

/**
 * Freezes every record of a loaded document; the document and its sections stay ours.
 * Records written before the store stamped every kind get revision 0.
 */
export function freezeAll(data: StoreData): StoreData {
  for (const section of SECTIONS) {
    for (const rec of Object.values(data[section]) as { modRevision?: number }[]) {
      rec.modRevision ??= 0;
      deepFreeze(rec);
    }
  }
  if (data.keyring) deepFreeze(data.keyring);
  return data;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}
