/**
 * Keeps manifest-made values current: fetched values are fetched again every `intervalMs`,
 * and secrets with a `rotate` schedule (cron) are regenerated or re-fetched when it fires.
 * A changed value is stored as a new version (sealed, durable) and so reaches the VMs like
 * any rotation; an unchanged one stores nothing; a failed fetch keeps the last value and
 * records the error on the secret (status, log, audit), never the value or the output.
 *
 * It follows the store like the OAuth scheduler: every commit that touches a secret re-reads
 * its schedule, so no path leaves one stale.
 */
import { actorOf } from "../caller.js";
import type { Actor, Deps } from "../context.js";
import { secretAad } from "../context.js";
import { nextVersion, pruneVersions, sealVersion } from "../records.js";
import type { CronClock } from "../schedule/cron-scheduler.js";
import { createCronScheduler } from "../schedule/cron-scheduler.js";
import { fetchValue } from "./fetch.js";
import { matchesFormat } from "./format.js";
import { generateValue } from "./generate.js";
import type { Generator } from "./schema.js";

const SYSTEM: Actor = { caller: { kind: "system", name: "manifest" }, requestId: "-" };

export interface ValueRefresherOptions {
  /** Drives rotation schedules (tests pass a fake one). @default real time */
  clock?: CronClock;
}

export function createValueRefresher(deps: Deps, opts: ValueRefresherOptions = {}) {
  const { store } = deps;
  const intervals = new Map<string, { ms: number; timer: NodeJS.Timeout }>();
  const inFlight = new Map<string, Promise<void>>();
  const cron = createCronScheduler({
    ...(opts.clock ? { clock: opts.clock } : {}),
    onFire: (name) => run(name, "schedule"),
  });

  /** Fetches or regenerates `name` now; one at a time per secret. */
  function run(name: string, reason: string): Promise<void> {
    const cur = inFlight.get(name);
    if (cur) return cur;
    const p = once(name, reason).finally(() => inFlight.delete(name));
    inFlight.set(name, p);
    return p;
  }

  async function once(name: string, reason: string) {
    const rec = store.data.secrets[name];
    if (!rec) return;
    let value: string;
    let source: "generated" | "fetched";
    if (rec.fetch) {
      try {
        value = await fetchValue(rec.fetch);
        source = "fetched";
      } catch (err) {
        await failed(name, (err as Error).message, reason);
        return;
      }
    } else if (rec.generator && reason === "schedule") {
      value = generateValue(rec.generator as unknown as Generator);
      source = "generated";
    } else {
      return;
    }
    await store.mutate((head, tx) => {
      const r = head.secrets[name];
      if (!r) return;
      const v = r.versions.find((x) => x.version === r.currentVersion);
      const same = v !== undefined && source === "fetched" && openOr(r.name, v) === value;
      const { fetchError: _e, fetchErrorAt: _a, ...base } = r;
      if (same) {
        if (r.fetchError !== undefined) tx.put("secrets", base);
        return;
      }
      const now = new Date().toISOString();
      const version = nextVersion(r);
      const malformed = r.format !== undefined && !matchesFormat(r.format, value).ok;
      const sealed = {
        ...sealVersion(deps.barrier, name, version, value, SYSTEM, now),
        source,
        ...(malformed ? { malformed: true } : {}),
      };
      tx.put("secrets", {
        ...base,
        versions: pruneVersions([...r.versions, sealed], version),
        currentVersion: version,
        updatedAt: now,
      });
    });
    await audit(name, `${source === "fetched" ? "fetch" : "regenerate"} (${reason})`, "ok");
  }

  function openOr(name: string, v: { version: number; ciphertext: string }): string | undefined {
    try {
      return deps.barrier.open(secretAad(name, v.version), v.ciphertext);
    } catch {
      return undefined;
    }
  }

  async function failed(name: string, reason: string, why: string) {
    deps.log.warn("fetch failed; the last value is kept", { secret: name, reason });
    await audit(name, `fetch (${why}): ${reason}`, "unavailable");
    const cur = store.data.secrets[name];
    if (!cur || cur.fetchError === reason) return;
    await store.mutate((head, tx) => {
      const r = head.secrets[name];
      if (r)
        tx.put("secrets", { ...r, fetchError: reason, fetchErrorAt: new Date().toISOString() });
    });
  }

  async function audit(name: string, detail: string, result: string) {
    await deps.audit
      .record("change", {
        requestId: "-",
        actor: actorOf(SYSTEM.caller),
        action: "secret.refresh",
        secret: name,
        result,
        detail,
      })
      .catch(() => {});
  }

  /** Re-reads one secret's schedules. */
  function sync(name: string) {
    const rec = store.data.secrets[name];
    const ms = rec?.fetch?.intervalMs;
    const cur = intervals.get(name);
    if (cur && cur.ms !== ms) {
      clearInterval(cur.timer);
      intervals.delete(name);
    }
    if (ms !== undefined && !intervals.has(name)) {
      const timer = setInterval(() => void run(name, "interval"), ms);
      timer.unref();
      intervals.set(name, { ms, timer });
    }
    if (rec?.rotate) cron.set(name, rec.rotate);
    else cron.remove(name);
  }

  const unsubscribe = store.onCommit((_rev, changes) => {
    for (const c of changes) if (c.kind === "secret") sync(c.name);
  });

  return {
    start() {
      for (const name of Object.keys(store.data.secrets)) sync(name);
      cron.start();
    },
    /** Fetches or regenerates now (tests, `rotate` of a fetched secret). */
    refresh: (name: string) => run(name, "manual"),
    nextRotation: (name: string) => cron.nextAt(name),
    async close() {
      unsubscribe();
      cron.stop();
      for (const { timer } of intervals.values()) clearInterval(timer);
      intervals.clear();
      await Promise.allSettled([...inFlight.values()]);
    },
  };
}

export type ValueRefresher = ReturnType<typeof createValueRefresher>;
