/**
 * What is known of each VM's shim: connected, what it applied, when it was last seen, whether
 * it diverged from the store, and its unit map. Kept in memory and rebuilt as shims reconnect
 * and ack (a restarted secretsd knows no unit map until each shim acks again); acks from VMs
 * are checked here before they change anything.
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
  /**
   * The units the shim restarts or reloads, and for which env vars, as its last ack said;
   * undefined until a shim that reports it acks (`rotate --plan`).
   */
  units: readonly UnitKeys[] | undefined;
}

/** One dependent unit of a shim, as acked: the env vars it reads and what a change does. */
export interface UnitKeys {
  name: string;
  /** Env var names; empty means every key. */
  keys: readonly string[];
  action: "restart" | "reload";
}

/** At most this many units in an ack's unit map, and keys per unit. */
export const MAX_ACK_UNITS = 256;

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
  /** The shim's whole unit map; undefined when the ack does not report one. */
  units?: readonly { name: string; keys: readonly string[]; action: string }[] | undefined;
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
    units: undefined,
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
  // checkAck has made sure every action is one of the two.
  if (a.units !== undefined) p.units = a.units as readonly UnitKeys[];
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

/** A missing manifest entry as snapshots name it: "MANIFEST/ID" and its env var. */
const MISSING_ENTRY = /^[a-z][a-z0-9-]{0,23}\/[a-z][a-z0-9_]{0,31}( [A-Z_][A-Z0-9_]{0,254})?$/;

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
  // What the server sent (MANIFEST/ID ENV), nothing freer: it lands in the audit line.
  if (missing.length > 256 || !missing.every((m) => MISSING_ENTRY.test(m))) {
    throw invalidArgument("missing", "must be at most 256 entries 'MANIFEST/ID ENV'");
  }
  if (a.error.length > 1024) throw invalidArgument("error", "must be at most 1024 characters");
  checkClientVersion(a.clientVersion);
  if (a.units !== undefined) checkUnits(a.units);
}

/** A shim's version string: at most 128 characters. */
export function checkClientVersion(v: string): void {
  if (v.length > 128) throw invalidArgument("client_version", "must be at most 128 characters");
}

// --- internal ---

const UNIT_NAME = /^[A-Za-z0-9:_.@\\-]{1,255}$/;

/** A unit map: at most MAX_ACK_UNITS units, each a unit name, env var keys and an action. */
function checkUnits(units: NonNullable<AckInput["units"]>): void {
  const bad = (why: string) =>
    invalidArgument(
      "units",
      `${why} (at most ${MAX_ACK_UNITS} units of at most ${MAX_ACK_UNITS} keys each)`,
    );
  if (units.length > MAX_ACK_UNITS) throw bad(`${units.length} units`);
  for (const [i, u] of units.entries()) {
    if (!UNIT_NAME.test(u.name)) throw bad(`units[${i}].name must be a systemd unit name`);
    if (u.keys.length > MAX_ACK_UNITS) throw bad(`units[${i}] has ${u.keys.length} keys`);
    if (!u.keys.every((k) => ENV_NAME.test(k))) {
      throw bad(`units[${i}].keys must be env var names`);
    }
    if (u.action !== "restart" && u.action !== "reload") {
      throw bad(`units[${i}].action must be "restart" or "reload"`);
    }
  }
}
