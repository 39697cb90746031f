/**
 * Expiry of static values (issue #11): a secret may carry `valueExpiresAt`, when its current
 * value stops working (an API key's end date). Nothing is removed or blocked at expiry: the
 * VMs keep the value they have. What changes is what people are told: `list` and `status`
 * show the secret as expiring or expired, and the watcher here writes one log line and one
 * audit entry per secret each time its state changes (valid → expiring → expired), a
 * configurable time before expiry (SECRETSD_EXPIRY_WARNING_MS) and at expiry.
 *
 * What was reported is kept in memory: after a restart each secret already expiring or
 * expired is reported once more, at start (a fresh log says what needs attention).
 */
import { invalidArgument } from "../errors.js";
import type { StoreView } from "../store/store.js";
import { actorOf } from "./caller.js";
import type { Deps } from "./context.js";

/** Where a secret with an expiry stands at one instant. */
export interface ExpiryState {
  secret: string;
  /** ISO 8601, as stored. */
  expiresAt: string;
  /** `expiresAt` in ms since the epoch. */
  at: number;
  /** "expiring": within the warning window; "expired": at or past `at`. */
  state: "valid" | "expiring" | "expired";
}

/**
 * The expiry state of every secret that has one, at `now`, sorted by expiry then name. Pure:
 * the watcher, `status` and the tests share it. A stored time that does not parse is skipped.
 */
export function expiryStates(data: StoreView, now: number, warnMs: number): ExpiryState[] {
  const out: ExpiryState[] = [];
  for (const s of Object.values(data.secrets)) {
    if (s.valueExpiresAt === undefined) continue;
    const at = Date.parse(s.valueExpiresAt);
    if (!Number.isFinite(at)) continue;
    const state = now >= at ? "expired" : now >= at - warnMs ? "expiring" : "valid";
    out.push({ secret: s.name, expiresAt: s.valueExpiresAt, at, state });
  }
  return out.sort((a, b) => a.at - b.at || (a.secret < b.secret ? -1 : 1));
}

/** The first instant after `now` at which one of `states` changes, if any will. */
export function nextExpiryChange(
  states: readonly ExpiryState[],
  now: number,
  warnMs: number,
): number | undefined {
  let next: number | undefined;
  for (const s of states) {
    const t = s.state === "valid" ? s.at - warnMs : s.state === "expiring" ? s.at : undefined;
    if (t !== undefined && t > now && (next === undefined || t < next)) next = t;
  }
  return next;
}

/** "expires in 3d (ISO)" or "expired 2h ago (ISO)": what `status`, the log and audit say. */
export function describeExpiry(s: ExpiryState, now: number): string {
  const iso = new Date(s.at).toISOString();
  return s.state === "expired"
    ? `expired ${span(now - s.at)} ago (${iso})`
    : `expires in ${span(s.at - now)} (${iso})`;
}

/**
 * Checks an expiry given by a person: a real instant between 1970 and 9999, and on create
 * (`allowPast` false) not already past — a past date there is far more often a typo than a
 * value known to be dead on arrival. On update it may be past: recording that a value has
 * already stopped working is what an operator does on learning of it. Returns ISO 8601.
 * @throws INVALID_ARGUMENT naming `field`
 */
export function checkExpiresAt(field: string, at: Date, now: number, allowPast: boolean): string {
  const t = at.getTime();
  if (!Number.isFinite(t) || t < 0 || t > MAX_TIME) {
    throw invalidArgument(field, "must be a time between 1970 and 9999");
  }
  if (!allowPast && t < now) {
    throw invalidArgument(
      field,
      `${at.toISOString()} is in the past; give a future time (an existing secret's expiry may be set in the past with update)`,
    );
  }
  return at.toISOString();
}

export interface ExpiryWatcherOptions {
  /** Warn this long before a value expires (SECRETSD_EXPIRY_WARNING_MS). */
  warningMs: number;
  /** @default Date.now */
  now?: () => number;
  /**
   * The longest wait between checks: the next change is waited for with one timer, which
   * runs on a monotonic clock; this bounds how late a wall-clock jump is noticed.
   * @default 60000
   */
  maxWaitMs?: number;
}

/**
 * Watches the store's expiries: checks at start, after every commit that touches a secret,
 * and when the next state change is due. Each change is logged at warn level and audited as
 * `secret.expiring` / `secret.expired` (kind "change", actor `system:expiry`), once.
 */
export function createExpiryWatcher(
  deps: Pick<Deps, "store" | "audit" | "log">,
  opts: ExpiryWatcherOptions,
) {
  const now = opts.now ?? Date.now;
  const maxWaitMs = opts.maxWaitMs ?? 60_000;
  // name → "state@expiresAt" last reported: a changed expiry is a change of state too.
  const reported = new Map<string, string>();
  const writes = new Set<Promise<void>>();
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;

  function check() {
    const t = now();
    const states = expiryStates(deps.store.data, t, opts.warningMs);
    const live = new Set<string>();
    for (const s of states) {
      if (s.state === "valid") continue;
      live.add(s.secret);
      const key = `${s.state}@${s.expiresAt}`;
      if (reported.get(s.secret) === key) continue;
      reported.set(s.secret, key);
      report(s, describeExpiry(s, t));
    }
    // Cleared, moved out of the window or deleted: reported again if it comes back.
    for (const name of reported.keys()) if (!live.has(name)) reported.delete(name);
    const next = nextExpiryChange(states, t, opts.warningMs);
    schedule(next === undefined ? maxWaitMs : Math.min(next - t + 1, maxWaitMs));
  }

  function report(s: ExpiryState, detail: string) {
    deps.log.warn(s.state === "expired" ? "secret expired" : "secret expiring", {
      secret: s.secret,
      expiresAt: s.expiresAt,
      detail,
    });
    const p = deps.audit
      .record("change", {
        requestId: "-",
        actor: actorOf(SYSTEM),
        action: `secret.${s.state}`,
        secret: s.secret,
        result: "ok",
        detail,
      })
      // A lost entry is logged by the broker; the watcher carries on.
      .catch(() => {})
      .finally(() => writes.delete(p));
    writes.add(p);
  }

  function schedule(ms: number) {
    if (unsubscribe === undefined) return; // closed, or not started
    clearTimeout(timer);
    timer = setTimeout(check, Math.max(0, ms));
    timer.unref();
  }

  return {
    /** Checks now, then follows the store and the clock until `close`. */
    start() {
      unsubscribe = deps.store.onCommit((_revision, changes) => {
        if (changes.some((c) => c.kind === "secret")) schedule(0);
      });
      check();
    },
    /** Stops checking and waits for audit writes in flight. */
    async close() {
      unsubscribe?.();
      unsubscribe = undefined;
      clearTimeout(timer);
      await Promise.all(writes);
    },
  };
}

export type ExpiryWatcher = ReturnType<typeof createExpiryWatcher>;

// --- internal ---

const SYSTEM = { kind: "system", name: "expiry" } as const;

/** 9999-12-31T23:59:59.999Z: the last instant a proto Timestamp (and ISO 8601 year) holds. */
const MAX_TIME = 253_402_300_799_999;

/** A span of ms as its largest unit: `45s`, `12m`, `5h`, `3d` (as the CLI shows times). */
function span(ms: number): string {
  const secs = Math.max(0, Math.round(ms / 1000));
  if (secs < 60) return `${secs}s`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m`;
  if (secs < 86_400) return `${Math.floor(secs / 3600)}h`;
  return `${Math.floor(secs / 86_400)}d`;
}
