/**
 * The audit log is not logging: every read or delivery of a value, every change and every
 * refused call goes to every audit device. Whether a call fails when no device records its
 * entry is decided by the entry's kind (AuditKind). Entries never hold a value or token.
 */
import { SecretsError } from "../errors.js";
import type { Logger } from "../logger.js";

/**
 * What an audited call did. The kind alone decides what a lost entry (no device recorded it)
 * does to the call, never the action's name. A lost entry is always logged; besides:
 * - `read`: a value returned to the caller (GetSecretValue, GetEnv). Fails closed: the value
 *   is returned only once its entry is recorded, so a lost entry fails the call (UNAVAILABLE)
 *   and the value is never sent.
 * - `delivery`: a value pushed down a WatchEnv stream (the first snapshot, and each change
 *   fanned out). The value goes first and its entry follows (batched for a fan-out), so no
 *   stream waits for the disk; a lost entry does not end the stream: its bytes are already
 *   sent, and ending it would only make the shim reconnect and be sent them again.
 * - `report`: what a VM says it applied (AckEnv). A lost entry fails the call: the shim sends
 *   a failed ack again, and the retry records it.
 * - `change`: a change, committed durably before its entry is written. A lost entry does not
 *   fail the call: an error would make the client retry a change that already happened.
 * - `refusal`: a call the transport refused (authentication, permission); it fails anyway.
 * A call that failed on its own keeps its own error, whatever the kind.
 */
export type AuditKind = "read" | "delivery" | "report" | "change" | "refusal";

/** An entry as callers give it; the broker adds the time. */
export type AuditInput = Omit<AuditEntry, "time">;

export interface AuditEntry {
  time: string;
  requestId: string;
  actor: string;
  action: string;
  result: string;
  secret?: string;
  vm?: string;
  version?: number;
  revision?: number;
  /** Non-secret detail, such as a field name or a count. */
  detail?: string;
  /** The TCP peer's address, for calls refused before the caller was known. */
  peer?: string;
}

export interface AuditQuery {
  limit: number;
  /**
   * Only entries at or after this time (ISO 8601). The file device reads newest first and
   * stops a little past it (lines are in time order, give or take a batch's milliseconds),
   * so a query over a recent window costs the window, not the whole log.
   */
  since?: string;
  secret?: string;
  vm?: string;
  action?: string;
}

/** A place audit entries go; `log` resolves once the entry is handed to the OS. */
export interface AuditDevice {
  log(entry: AuditEntry): Promise<void>;
  /**
   * Many entries sharing one time (a fan-out's deliveries): one promise, and no entry object
   * made per entry to add the time.
   */
  logMany?(time: string, entries: readonly AuditInput[]): Promise<void>;
  /** The newest entries matching the query, oldest first (devices that can be read). */
  query?(q: AuditQuery): Promise<AuditEntry[]>;
  /**
   * Closes and reopens the device's file at its path (SIGHUP after logrotate moved it away).
   * Entries already handed in go to the old file; none is lost or written twice.
   * @throws when the path cannot be opened; the device then keeps writing to the old file
   */
  reopen?(): void;
  close(): Promise<void>;
}

/**
 * Fans each entry out to every device. An entry no device recorded is logged, and fails the
 * call (rejects with UNAVAILABLE) only when its kind says so (AuditKind).
 */
export interface AuditBroker {
  record(kind: AuditKind, entry: AuditInput): Promise<void>;
  /** Records many entries of one kind with one timestamp (a fan-out's deliveries). */
  recordMany(kind: AuditKind, entries: readonly AuditInput[]): Promise<void>;
  query(q: AuditQuery): Promise<AuditEntry[]>;
  /** Reopens every device that has a file (SIGHUP); throws the first failure after trying all. */
  reopen(): void;
  close(): Promise<void>;
}

/** A broker over `devices`; `log` gets every entry that no device recorded. */
export function createAuditBroker(devices: AuditDevice[], log: Logger): AuditBroker {
  const settle = async (kind: AuditKind, action: string, writes: Promise<void>[]) => {
    const results = await Promise.allSettled(writes);
    const failed = results.find((r) => r.status === "rejected");
    if (!failed || results.some((r) => r.status === "fulfilled")) return;
    log.error("audit write failed", { kind, action, err: failed.reason });
    if (FAILS_CALL[kind]) {
      throw new SecretsError("unavailable", "audit log could not record the request", {
        cause: failed.reason,
      });
    }
  };
  return {
    record(kind, partial) {
      const entry: AuditEntry = { time: new Date().toISOString(), ...partial };
      return settle(
        kind,
        entry.action,
        devices.map((d) => d.log(entry)),
      );
    },
    recordMany(kind, partials) {
      const time = new Date().toISOString();
      return settle(
        kind,
        partials[0]?.action ?? "",
        devices.map((d) =>
          d.logMany
            ? d.logMany(time, partials)
            : Promise.all(partials.map((p) => d.log({ time, ...p }))).then(() => {}),
        ),
      );
    },
    async query(q) {
      const reader = devices.find((d) => d.query);
      return reader?.query ? reader.query(q) : [];
    },
    reopen() {
      const errors: unknown[] = [];
      for (const d of devices) {
        try {
          d.reopen?.();
        } catch (err) {
          errors.push(err);
        }
      }
      if (errors.length > 0) throw errors[0];
    },
    async close() {
      await Promise.all(devices.map((d) => d.close()));
    },
  };
}

// --- internal ---

/** AuditKind's policy: whether an entry no device recorded fails its call. */
const FAILS_CALL: Record<AuditKind, boolean> = {
  read: true,
  report: true,
  delivery: false,
  change: false,
  refusal: false,
};
