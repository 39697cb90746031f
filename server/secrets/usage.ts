/**
 * `secretsctl usage NAME` (issue #13, "Usage"): which VMs hold a secret now, when each last
 * applied it, and how often it was delivered or read over a window. Reads metadata and the
 * audit log only: no value is opened, nothing is written or audited (like `rotate --plan`).
 *
 * The VMs are rotation-plan.ts's (those whose current view takes an env var from the secret).
 * What a VM holds comes from its last successful ack: presence (in memory, since secretsd
 * started) or, after a restart, the newest `env.ack` line the audit log still holds. An ack at
 * or after the secret record's last put means the current version; before it, the VM may be
 * behind. Counts come from the audit log's `env.watch` (deliveries) and `env.get` lines of
 * those VMs (a VM's env holds the secret, so each one carried it) and its `secret.read` lines
 * (host-side reads). Each query reads at most QUERY_LIMIT entries: bounded, and said when hit.
 */
import type { AuditBroker, AuditEntry } from "../audit/audit.js";
import { invalidArgument } from "../errors.js";
import type { Deps } from "./context.js";
import type { Presence } from "./presence.js";
import { getSecret } from "./records.js";
import { planRotation } from "./rotation-plan.js";

export const DEFAULT_WINDOW_SECONDS = 7 * 24 * 3600;
export const MAX_WINDOW_SECONDS = 30 * 24 * 3600;
/** Entries one audit query returns at most (each query scans the log's files once). */
export const QUERY_LIMIT = 20_000;

export type Holding = "current" | "behind" | "unknown";

export interface VmUsage {
  vm: string;
  env: string;
  holding: Holding;
  /** The current version when holding is "current"; 0 otherwise. */
  version: number;
  lastReceived: Date | undefined;
  ackedRevision: number;
  connected: boolean;
  deliveries: number;
  reads: number;
}

export interface SecretUsage {
  secret: string;
  revision: number;
  windowSeconds: number;
  /** Sorted by VM name. */
  vms: VmUsage[];
  /** Host-side GetSecretValue callers, most reads first. */
  hostReaders: { actor: string; reads: number }[];
  /** A query hit QUERY_LIMIT inside the window: counts are lower bounds. */
  truncated: boolean;
}

/**
 * The usage of `name` over the last `windowSeconds` (0: DEFAULT_WINDOW_SECONDS).
 * @throws INVALID_ARGUMENT naming window_seconds or name, NOT_FOUND naming name
 */
export async function secretUsage(
  deps: Pick<Deps, "store"> & { audit: Pick<AuditBroker, "query"> },
  presence: Pick<Presence, "of">,
  name: string,
  windowSeconds: number,
  now = new Date(),
): Promise<SecretUsage> {
  const window = checkWindow(windowSeconds);
  const data = deps.store.data;
  const plan = planRotation(data, presence, name); // checks the name; NOT_FOUND when unknown
  const changedAt = getSecret(data, plan.secret).modRevision;
  const current = getSecret(data, plan.secret).currentVersion;
  const since = new Date(now.getTime() - window * 1000).toISOString();
  const vms = new Set(plan.targets.map((t) => t.vm));

  const [acks, watches, gets, reads] = await Promise.all([
    windowed(deps.audit, { action: "env.ack" }, ""),
    windowed(deps.audit, { action: "env.watch" }, since),
    windowed(deps.audit, { action: "env.get" }, since),
    windowed(deps.audit, { action: "secret.read", secret: plan.secret }, since),
  ]);
  const lastAck = new Map<string, AuditEntry>();
  for (const e of acks.entries) {
    if (e.result === "ok" && e.vm && vms.has(e.vm)) lastAck.set(e.vm, e); // oldest first
  }
  const deliveries = countBy(watches.entries, (e) => e.vm);
  const vmReads = countBy(gets.entries, (e) => (e.result === "ok" ? e.vm : undefined));
  const hostReads = countBy(reads.entries, (e) => (e.result === "ok" ? e.actor : undefined));

  const out: VmUsage[] = plan.targets.map((t) => {
    const p = presence.of(t.vm);
    const logged = lastAck.get(t.vm);
    const ackedRevision = Math.max(p.appliedRevision, logged?.revision ?? 0);
    const holding: Holding =
      ackedRevision === 0 ? "unknown" : ackedRevision >= changedAt ? "current" : "behind";
    return {
      vm: t.vm,
      env: t.env,
      holding,
      version: holding === "current" ? current : 0,
      lastReceived: logged ? new Date(logged.time) : undefined,
      ackedRevision,
      connected: t.connected,
      deliveries: deliveries.get(t.vm) ?? 0,
      reads: vmReads.get(t.vm) ?? 0,
    };
  });
  const hostReaders = [...hostReads.entries()]
    .map(([actor, n]) => ({ actor, reads: n }))
    .sort((a, b) => b.reads - a.reads || (a.actor < b.actor ? -1 : 1));
  return {
    secret: plan.secret,
    revision: plan.revision,
    windowSeconds: window,
    vms: out,
    hostReaders,
    truncated: watches.truncated || gets.truncated || reads.truncated,
  };
}

/** Usage over the live store, audit log and the hub's presence (the transport's view). */
export function createUsageReporter(
  deps: Pick<Deps, "store" | "audit">,
  presence: Pick<Presence, "of">,
) {
  return {
    /** @see secretUsage */
    usage: (name: string, windowSeconds: number) =>
      secretUsage(deps, presence, name, windowSeconds),
  };
}

export type UsageReporter = ReturnType<typeof createUsageReporter>;

// --- internal ---

/** 0 means the default; otherwise 1 second to 30 days. */
function checkWindow(s: number): number {
  if (s === 0) return DEFAULT_WINDOW_SECONDS;
  if (!Number.isSafeInteger(s) || s < 0 || s > MAX_WINDOW_SECONDS) {
    throw invalidArgument("window_seconds", `must be at most ${MAX_WINDOW_SECONDS} (30 days)`);
  }
  return s;
}

/** The entries of one bounded query at or after `since` (ISO 8601; "" for all it returns). */
async function windowed(
  audit: Pick<AuditBroker, "query">,
  q: { action: string; secret?: string },
  since: string,
) {
  const all = await audit.query({ ...q, limit: QUERY_LIMIT, ...(since && { since }) });
  const entries = all.filter((e) => e.time >= since);
  // Oldest first: a full answer whose oldest entry is still inside the window may miss some.
  const truncated = all.length >= QUERY_LIMIT && entries.length === all.length;
  return { entries, truncated };
}

function countBy(entries: readonly AuditEntry[], key: (e: AuditEntry) => string | undefined) {
  const m = new Map<string, number>();
  for (const e of entries) {
    const k = key(e);
    if (k !== undefined) m.set(k, (m.get(k) ?? 0) + 1);
  }
  return m;
}
