/**
 * The store: committed state for readers, and a transaction API for writers.
 *
 * Two documents share every record object:
 * - `committed` (what `store.data` returns) holds only changes whose save is durable. Readers
 *   (GetEnv, GetSecretValue, the watch hub's fan-out, token checks) see nothing else, so no
 *   caller, stream or VM can be handed a value that a crash would take back (issue #8).
 * - `head` is committed plus the mutations still waiting for, or inside, a save. Mutators run
 *   against it, so a burst of writes validates against each other (two creates of one name).
 *
 * Mutators change records only through `tx.put` / `tx.delete` / `tx.setKeyring`: the store
 * stamps the revision, freezes the record (an edit in place throws instead of being lost after
 * a restart) and records the change for the driver and the commit listeners. Mutations arriving
 * while a save is in flight are written together by the next save (group commit). A save that
 * fails fails every mutation it carried and the ones queued after it; `head` goes back to
 * `committed`, which never held them.
 */
import { SecretsError } from "../errors.js";
import type {
  AdminTokenRecord,
  Change,
  GroupRecord,
  KeyringRecord,
  SecretRecord,
  StoreData,
  StoreDriver,
  VmRecord,
} from "./types.js";
import { emptyStore, SCHEMA_VERSION } from "./types.js";

export type { Change } from "./types.js";

/** The record kinds, by the document section that holds them (keyed by `name`). */
export interface RecordKinds {
  secrets: SecretRecord;
  groups: GroupRecord;
  vms: VmRecord;
  adminTokens: AdminTokenRecord;
}
export type Section = keyof RecordKinds;

/**
 * A read-only view of the document: sections cannot be assigned to (types) and records are
 * frozen (run time).
 */
export interface StoreView {
  readonly schemaVersion: number;
  readonly revision: number;
  readonly keyring: Readonly<KeyringRecord> | null;
  readonly secrets: Readonly<Record<string, SecretRecord>>;
  readonly groups: Readonly<Record<string, GroupRecord>>;
  readonly vms: Readonly<Record<string, VmRecord>>;
  readonly adminTokens: Readonly<Record<string, AdminTokenRecord>>;
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
  setKeyring(keyring: KeyringRecord): void;
}

export type CommitListener = (revision: number, changes: readonly Change[]) => void;

export interface Store {
  /** The committed document: only what is durable. Never changed by callers. */
  readonly data: StoreView;
  /**
   * Runs `fn` against the head (committed plus pending) and resolves once its changes are
   * durable, and visible in `data`. A mutator that throws changes nothing: its puts are undone.
   */
  mutate<T>(fn: (head: StoreView, tx: Tx) => T): Promise<T>;
  /** Called after each durable commit, in revision order. Returns an unsubscribe function. */
  onCommit(listener: CommitListener): () => void;
  close(): Promise<void>;
}

/** Opens a store over a driver, creating an empty document if there is none. */
export async function openStore(driver: StoreDriver): Promise<Store> {
  const loaded = (await driver.load()) ?? emptyStore();
  checkSchema(loaded);
  const committed = freezeAll(loaded);
  let head = forkOf(committed);
  let pending: Pending[] = [];
  let saving: Promise<void> | null = null;
  let closed = false;
  const listeners = new Set<CommitListener>();

  const flush = async () => {
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      try {
        // The driver encodes `head` before its first await: exactly committed + this batch.
        await driver.save(
          head,
          batch.flatMap((p) => p.changes),
        );
      } catch (cause) {
        const failed = batch.concat(pending);
        pending = [];
        head = forkOf(committed);
        const err = new SecretsError("unavailable", "store write failed; change not saved", {
          cause,
        });
        for (const p of failed) p.reject(err);
        continue;
      }
      for (const p of batch) {
        for (const op of p.ops) applyOp(committed, op);
        committed.revision = p.revision;
      }
      for (const p of batch) {
        for (const l of listeners) l(p.revision, p.changes);
        p.resolve();
      }
    }
  };

  // A mutation may arrive after flush's loop saw an empty queue but before `saving` is
  // cleared (its caller resumes first): re-check the queue whenever a flush ends.
  const kick = () => {
    if (saving) return;
    saving = flush().finally(() => {
      saving = null;
      if (pending.length > 0) kick();
    });
  };

  return {
    get data(): StoreView {
      return committed;
    },
    mutate<T>(fn: (d: StoreView, tx: Tx) => T): Promise<T> {
      if (closed) return Promise.reject(new SecretsError("unavailable", "store is closed"));
      const doc = head;
      const revision = doc.revision + 1;
      const ops: Op[] = [];
      const changes: Change[] = [];
      const undo: (() => void)[] = [];
      const tx: Tx = {
        revision,
        put(section, input) {
          const record = deepFreeze({
            ...input,
            modRevision: revision,
          }) as RecordKinds[typeof section];
          const sec = doc[section] as Record<string, unknown>;
          const name = record.name;
          const before = Object.hasOwn(sec, name) ? sec[name] : undefined;
          sec[name] = record;
          undo.push(() => restore(sec, name, before));
          ops.push({ section, name, record });
          changes.push(...changesOf(section, before as never, record));
          return record;
        },
        delete(section, name) {
          const sec = doc[section] as Record<string, unknown>;
          if (!Object.hasOwn(sec, name)) return;
          const before = sec[name];
          delete sec[name];
          undo.push(() => restore(sec, name, before));
          ops.push({ section, name, record: undefined });
          changes.push(...changesOf(section, before as never, undefined));
        },
        setKeyring(keyring) {
          const before = doc.keyring;
          const frozen = deepFreeze(structuredClone(keyring));
          doc.keyring = frozen;
          undo.push(() => {
            doc.keyring = before;
          });
          ops.push({ section: "keyring", record: frozen });
          changes.push({ kind: "keyring" });
        },
      };
      let result: T;
      try {
        result = fn(doc, tx);
      } catch (err) {
        for (const u of undo.reverse()) u();
        throw err;
      }
      doc.revision = revision;
      return new Promise<T>((resolve, reject) => {
        pending.push({ revision, ops, changes, resolve: () => resolve(result), reject });
        kick();
      });
    },
    onCommit(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      closed = true;
      while (saving) await saving;
      await driver.close();
    },
  };
}

// --- internal ---

type Op =
  | { section: Section; name: string; record: object | undefined }
  | { section: "keyring"; record: KeyringRecord };

interface Pending {
  revision: number;
  ops: Op[];
  changes: Change[];
  resolve(): void;
  reject(err: unknown): void;
}

function applyOp(doc: StoreData, op: Op) {
  if (op.section === "keyring") {
    doc.keyring = op.record;
    return;
  }
  restore(doc[op.section] as Record<string, unknown>, op.name, op.record);
}

function restore(sec: Record<string, unknown>, name: string, record: unknown) {
  if (record === undefined) delete sec[name];
  else sec[name] = record;
}

/** A head document over `committed`: its own section objects, the same (frozen) records. */
function forkOf(committed: StoreData): StoreData {
  return {
    ...committed,
    secrets: { ...committed.secrets },
    groups: { ...committed.groups },
    vms: { ...committed.vms },
    adminTokens: { ...committed.adminTokens },
  };
}

/**
 * Freezes every record of a loaded document; the document and its sections stay ours.
 * Records written before the store stamped every kind get revision 0.
 */
function freezeAll(data: StoreData): StoreData {
  for (const section of SECTIONS) {
    for (const rec of Object.values(data[section]) as { modRevision?: number }[]) {
      rec.modRevision ??= 0;
      deepFreeze(rec);
    }
  }
  if (data.keyring) deepFreeze(data.keyring);
  return data;
}

const SECTIONS: readonly Section[] = ["secrets", "groups", "vms", "adminTokens"];

function deepFreeze<T>(value: T): T {
  if (value && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** What watchers need to know of one record change: which VMs' views it may touch. */
function changesOf<S extends Section>(
  section: S,
  before: RecordKinds[S] | undefined,
  after: RecordKinds[S] | undefined,
): Change[] {
  switch (section) {
    case "secrets": {
      const b = before as SecretRecord | undefined;
      const a = after as SecretRecord | undefined;
      const scopes = [...new Set([b?.scope, a?.scope].filter((s) => s !== undefined))];
      return [{ kind: "secret", name: (a ?? b)?.name ?? "", scopes }];
    }
    case "vms": {
      const b = before as VmRecord | undefined;
      const a = after as VmRecord | undefined;
      const vm = (a ?? b)?.name ?? "";
      const out: Change[] = [{ kind: "vm", vm }];
      if (!a || (b && b.tokens !== a.tokens)) out.push({ kind: "token", vm });
      return out;
    }
    case "groups": {
      const group = ((after ?? before) as GroupRecord | undefined)?.name ?? "";
      // Members' views change through their own VM records (access.ts puts each one).
      return [{ kind: "group", group, vms: [] }];
    }
    default: {
      const admin = ((after ?? before) as AdminTokenRecord | undefined)?.name;
      return [admin === undefined ? { kind: "token" } : { kind: "token", admin }];
    }
  }
}

function checkSchema(data: StoreData) {
  if (typeof data.schemaVersion !== "number" || data.schemaVersion > SCHEMA_VERSION) {
    throw new SecretsError(
      "failed_precondition",
      `store schema version ${String(data.schemaVersion)} is newer than this secretsd supports (${SCHEMA_VERSION})`,
    );
  }
  // Schema 1 is the first; migrations from older versions go here, in order.
}
