/**
 * The store: the document in memory, changed only through `mutate`, which is serialised and
 * acknowledged only once a driver save that includes the change is durable. Mutations that
 * arrive while a save is in flight are written together by the next save (group commit), so
 * a burst of N writes costs far fewer than N fsyncs.
 *
 * Contract for mutators: validate everything first and throw before touching the document;
 * a mutator that throws must have changed nothing. A save that fails rolls the document back
 * to the last durable state and fails every mutation it carried.
 */
import { SecretsError } from "../errors.js";
import type { Change, StoreData, StoreDriver } from "./types.js";
import { emptyStore, SCHEMA_VERSION } from "./types.js";

export type { Change } from "./types.js";

export interface MutationContext {
  /** The revision this mutation commits as. */
  readonly revision: number;
  /**
   * Records what changed, for commit listeners and the driver: every record a mutation adds,
   * changes or removes must be reported (the journal finds added records only this way).
   */
  change(c: Change): void;
}

export type CommitListener = (revision: number, changes: readonly Change[]) => void;

export interface Store {
  /** The current document. Read-only for callers: change it only inside `mutate`. */
  readonly data: Readonly<StoreData>;
  /** Applies `fn`, bumps the revision and resolves once the change is durable. */
  mutate<T>(fn: (data: StoreData, tx: MutationContext) => T): Promise<T>;
  /** Called after each durable commit, in revision order. Returns an unsubscribe function. */
  onCommit(listener: CommitListener): () => void;
  close(): Promise<void>;
}

/** Opens a store over a driver, creating an empty document if there is none. */
export async function openStore(driver: StoreDriver): Promise<Store> {
  let data = (await driver.load()) ?? emptyStore();
  checkSchema(data);
  let pending: Pending[] = [];
  let saving: Promise<void> | null = null;
  let closed = false;
  let reloading = false;
  const listeners = new Set<CommitListener>();

  const flush = async () => {
    while (pending.length > 0) {
      const batch = pending;
      pending = [];
      try {
        await driver.save(
          data,
          batch.flatMap((p) => p.changes),
        );
      } catch (cause) {
        const failed = batch.concat(pending);
        pending = [];
        // Mutations are refused while the last durable document is read back, so none
        // is applied to the document that is about to be replaced.
        reloading = true;
        data = (await driver.load().catch(() => undefined)) ?? data;
        reloading = false;
        const err = new SecretsError("unavailable", "store write failed; change not saved", {
          cause,
        });
        for (const p of failed) p.reject(err);
        continue;
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
    get data() {
      return data;
    },
    mutate<T>(fn: (d: StoreData, tx: MutationContext) => T): Promise<T> {
      if (closed) return Promise.reject(new SecretsError("unavailable", "store is closed"));
      if (reloading) {
        return Promise.reject(
          new SecretsError("unavailable", "store is recovering from a failed write"),
        );
      }
      const revision = data.revision + 1;
      const changes: Change[] = [];
      const result = fn(data, { revision, change: (c) => changes.push(c) });
      data.revision = revision;
      return new Promise<T>((resolve, reject) => {
        pending.push({ revision, changes, resolve: () => resolve(result), reject });
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
  revision: number;
  changes: Change[];
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
  // Schema 1 is the first; migrations from older versions go here, in order.
}
