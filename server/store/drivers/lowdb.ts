/**
 * Deprecated names of the file driver, kept for callers outside server/store that still use
 * them (barrier/master-key.ts's fsyncDir; test/daemon.test.ts and test/damage.test.ts, which
 * re-seal a stopped store with `save`). The driver is drivers/snapshot-journal.ts; new code
 * imports from there (and durable writes from durable.ts).
 */
import type { StoreData } from "../types.js";
import type { SnapshotJournalDriver, SnapshotJournalDriverOptions } from "./snapshot-journal.js";
import { createSnapshotJournalDriver } from "./snapshot-journal.js";

/** Durable writes (durable.ts), re-exported for the master key's files (barrier/master-key.ts). */
export { fsyncDir, writeDurably } from "./durable.js";
/** What a load found (load-report.ts). */
export type { StoreLoadReport } from "./load-report.js";

/** @deprecated Use SnapshotJournalDriverOptions. */
export type LowdbDriverOptions = SnapshotJournalDriverOptions;

/** @deprecated Use SnapshotJournalDriver; `save` is its `replace`. */
export interface LowdbDriver extends SnapshotJournalDriver {
  /** @deprecated Use `replace`: writes `data` as the whole store. */
  save(data: StoreData): Promise<void>;
}

/** @deprecated Use createSnapshotJournalDriver (and `replace` for a whole-document write). */
export function createLowdbDriver(opts: LowdbDriverOptions): LowdbDriver {
  const driver = createSnapshotJournalDriver(opts);
  return { ...driver, save: (data) => driver.replace(data) };
}
