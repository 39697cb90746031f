/**
 * The audit log is not logging: every read of a value and every change goes to every audit
 * device, and a request fails when no device records it. Entries never hold a value or token.
 */
import { SecretsError } from "../errors.js";

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
  logMany?(time: string, entries: readonly Omit<AuditEntry, "time">[]): Promise<void>;
  /** The newest entries matching the query, oldest first (devices that can be read). */
  query?(q: AuditQuery): Promise<AuditEntry[]>;
  close(): Promise<void>;
}

/** Fans each entry out to every device; fails when none recorded it. */
export interface AuditBroker {
  record(entry: Omit<AuditEntry, "time">): Promise<void>;
  /** Records many entries with one timestamp; fails when no device recorded them. */
  recordMany(entries: readonly Omit<AuditEntry, "time">[]): Promise<void>;
  query(q: AuditQuery): Promise<AuditEntry[]>;
  close(): Promise<void>;
}

export function createAuditBroker(devices: AuditDevice[]): AuditBroker {
  return {
    async record(partial) {
      const entry: AuditEntry = { time: new Date().toISOString(), ...partial };
      const results = await Promise.allSettled(devices.map((d) => d.log(entry)));
      if (devices.length > 0 && results.every((r) => r.status === "rejected")) {
        throw new SecretsError("unavailable", "audit log could not record the request");
      }
    },
    async recordMany(partials) {
      const time = new Date().toISOString();
      const results = await Promise.allSettled(
        devices.map((d) =>
          d.logMany
            ? d.logMany(time, partials)
            : Promise.all(partials.map((p) => d.log({ time, ...p }))),
        ),
      );
      if (devices.length > 0 && results.every((r) => r.status === "rejected")) {
        throw new SecretsError("unavailable", "audit log could not record the request");
      }
    },
    async query(q) {
      const reader = devices.find((d) => d.query);
      return reader?.query ? reader.query(q) : [];
    },
    async close() {
      await Promise.all(devices.map((d) => d.close()));
    },
  };
}
