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
 * a restart) and records the op in the mutation's change set (change-set.ts). The driver is
 * handed change sets, never the document: mutations arriving while a commit is in flight are
 * merged in revision order into the next one (group commit). A commit that fails fails every
 * mutation it carried and the ones queued after it; `head` goes back to `committed`, which
 * never held them. Once a commit is durable, each mutation's set is applied to `committed`
 * and the watch feed derived from it (feed.ts) goes to the commit listeners.
 */
import { SecretsError } from "../errors.js";
import { applyChangeSet, forkDocument, mergeChangeSets } from "./change-set.js";
import { changesOf } from "./feed.js";
import type { StoreView, Tx } from "./tx.js";
import { freezeAll, guarded, transaction } from "./tx.js";
import type { Change, ChangeSet, StoreData, StoreDriver } from "./types.js";
import { emptyStore, SCHEMA_VERSION } from "./types.js";

/** The transaction API (tx.ts), re-exported: callers import the store from here. */
export type { RecordInput, StoreView, Tx } from "./tx.js";
/** Re-exported from types.ts, where drivers find them too. */
export type { Change, RecordKinds, Section } from "./types.js";

/** Told each durable commit: its revision and what it changed for watchers (feed.ts). */
export type CommitListener = (revision: number, changes: readonly Change[]) => void;

/** The store a daemon opens over its driver (see the file comment). */
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
  /** Refuses new mutations, waits for the commits in flight, then closes the driver. */
  close(): Promise<void>;
}

/**
 * Opens a store over a driver, creating an empty document if there is none. Throws what the
 * driver's load throws (damage it names), or when the document's schema is newer than this
 * secretsd.
 */
export async function openStore(driver: StoreDriver): Promise<Store> {
  const loaded = (await driver.load()) ?? emptyStore();
  checkSchema(loaded);
  const committed = freezeAll(loaded);
  let head = forkDocument(committed);
  let pending: Pending[] = [];
  let saving: Promise<void> | null = null;
  let closed = false;
  const listeners = new Set<CommitListener>();

  const flush = async () => {
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      try {
        // One durable write for the batch; the driver encodes it before its first await.
        await driver.commit(mergeChangeSets(batch.map((p) => p.set)));
      } catch (cause) {
        const failed = batch.concat(pending);
        pending = [];
        head = forkDocument(committed);
        const err = new SecretsError("unavailable", "store write failed; change not saved", {
          cause,
        });
        for (const p of failed) p.reject(err);
        continue;
      }
      // Each mutation's feed is derived against the records its set replaces, in order.
      const changes = batch.map((p) => {
        const c = changesOf(committed, p.set);
        applyChangeSet(committed, p.set);
        return c;
      });
      batch.forEach((p, i) => {
        for (const l of listeners) l(p.set.revision, changes[i] as Change[]);
        p.resolve();
      });
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
      const { tx, set, undo } = transaction(doc, revision);
      let result: T;
      try {
        result = fn(guarded(doc), tx);
      } catch (err) {
        undo();
        throw err;
      }
      doc.revision = revision;
      return new Promise<T>((resolve, reject) => {
        pending.push({ set: set(), resolve: () => resolve(result), reject });
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

interface Pending {
  set: ChangeSet;
  resolve(): void;
  reject(err: unknown): void;
}

function checkSchema(data: StoreData) {
  if (typeof data.schemaVersion !== "number" || data.schemaVersion > SCHEMA_VERSION) {
    throw new SecretsError(
      "failed_precondition",
      `store schema version ${String(data.schemaVersion)} is newer than this secretsd supports (${SCHEMA_VERSION})`,
    );
  }
  // Schema 1 is the first; migrations from older versions go here, in order. Sections added
  // within schema 1 are absent from documents written before them.
  data.manifests ??= {};
}
