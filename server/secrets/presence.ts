/**
 * What is known of each VM's shim: connected, what it applied, when it was last seen, and
 * whether it diverged from the store. Kept in memory and rebuilt as shims reconnect; acks
 * from VMs are checked here before they change anything.
 */
import { invalidArgument } from "../errors.js";
import { ENV_NAME } from "./validate.js";

/** What is known of a VM's shim. */
export interface PresenceInfo {
  connected: boolean;
  appliedRevision: number;
  /** The last revision at which this VM's view changed. */
  viewRevision: number;
  lastSeen: Date | undefined;
  clientVersion: string;
  lastRestartedUnits: string[];
  lastError: string;
  /**
   * The shim reported a revision this store does not have (it applied something the store
   * lost, or the store was restored from a backup): a fresh snapshot was sent, and this stays
   * set until the shim acknowledges one.
   */
  diverged: boolean;
}

/** Presence as the transport reads it for `vm list` and `status`. */
export interface Presence {
  of(vm: string): PresenceInfo;
  connectedCount(): number;
  /** Damaged secrets (current version) in the VM's view: its deliveries fail until healed. */
  damagedIn(vm: string): string[];
}

/** An AckEnv from a shim: what it applied (or failed to). */
export interface AckInput {
  vm: string;
  revision: number;
  restartedUnits: string[];
  omitted: string[];
  /** Required manifest entries the shim was told are missing ("MANIFEST/ID ENV"). */
  missing?: string[];
  clientVersion: string;
  error: string;
}

/** A VM never seen since this daemon started. */
export function newPresenceInfo(): PresenceInfo {
  return {
    connected: false,
    appliedRevision: 0,
    viewRevision: 0,
    lastSeen: undefined,
    clientVersion: "",
    lastRestartedUnits: [],
    lastError: "",
    diverged: false,
  };
}

/**
 * Applies a checked ack to `p`. Returns "ahead" when the shim reports a revision past the
 * store's (the caller resyncs it); an ack carrying an error reports a failed apply, so the VM
 * still runs what it had.
 */
export function applyAck(
  p: PresenceInfo,
  a: AckInput,
  storeRevision: number,
): "ahead" | "ok" | "error" {
  p.lastSeen = new Date();
  p.lastRestartedUnits = a.restartedUnits;
  p.lastError = a.error;
  if (a.clientVersion) p.clientVersion = a.clientVersion;
  if (a.revision > storeRevision) {
    p.diverged = true;
    return "ahead";
  }
  if (a.error !== "") return "error";
  if (p.diverged || a.revision > p.appliedRevision) {
    p.appliedRevision = a.revision;
    p.diverged = false;
  }
  return "ok";
}

/** Acks come from VMs: bounded and well-formed, or INVALID_ARGUMENT naming the field. */
export function checkAck(a: AckInput): void {
  if (!Number.isSafeInteger(a.revision) || a.revision < 0) {
    throw invalidArgument("revision", "must be a revision number");
  }
  if (a.restartedUnits.length > 256 || !a.restartedUnits.every((u) => UNIT_NAME.test(u))) {
    throw invalidArgument("restarted_units", "must be at most 256 systemd unit names");
  }
  if (a.omitted.length > 1024 || !a.omitted.every((n) => ENV_NAME.test(n))) {
    throw invalidArgument("omitted", "must be at most 1024 env var names");
  }
  const missing = a.missing ?? [];
  if (missing.length > 1024 || !missing.every((m) => m.length <= 400)) {
    throw invalidArgument("missing", "must be at most 1024 entries of at most 400 characters");
  }
  if (a.error.length > 1024) throw invalidArgument("error", "must be at most 1024 characters");
  checkClientVersion(a.clientVersion);
}

/** A shim's version string: at most 128 characters. */
export function checkClientVersion(v: string): void {
  if (v.length > 128) throw invalidArgument("client_version", "must be at most 128 characters");
}

// --- internal ---

const UNIT_NAME = /^[A-Za-z0-9:_.@\\-]{1,255}$/;
