/**
 * What opening the store's files found: the lowdb driver's `report()`, for the daemon's log
 * and `status`. Messages name files, lines, offsets and revisions, never a value, token or key.
 */

/** What loading the store's files found, accepted or repaired. */
export interface StoreLoadReport {
  /** The revision the store loaded at. */
  revision: number;
  /**
   * The snapshot: `sealed` (its checksum matched), `legacy` (written before snapshots had a
   * checksum; the next snapshot written adds it), `accepted` (its checksum failed and --repair
   * took it as it was), or `none` (a new store).
   */
  snapshot: "sealed" | "legacy" | "accepted" | "none";
  /** Journal entries applied over the snapshot. */
  applied: number;
  /** Leftover temp files removed at start. */
  removedTemps: string[];
  /** One line per loss the load named or accepted: a dropped torn line, each --repair drop. */
  warnings: string[];
  /** Damaged files --repair kept as evidence (`<file>.damaged-<time>`). */
  setAside: string[];
}

/** A report for a store with nothing on disk yet. */
export function emptyLoadReport(): StoreLoadReport {
  return {
    revision: 0,
    snapshot: "none",
    applied: 0,
    removedTemps: [],
    warnings: [],
    setAside: [],
  };
}
