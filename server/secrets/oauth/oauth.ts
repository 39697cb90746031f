/**
 * The OAuth broker's use cases (issue #10): add, list, login, refresh, logout, and the
 * scheduler that refreshes every credential ahead of expiry. Refresh tokens and client
 * secrets stay here, on the host; VMs see access tokens through their views like any value.
 *
 * The scheduler follows the store: every commit that touches an oauth credential (a refresh,
 * a login, a logout, a removal by DeleteSecret) re-times it, so no path can leave it stale.
 */
import cron from "node-cron";
import { failedPrecondition, permissionDenied, resourceExhausted } from "../../errors.js";
import type { CredentialTiming } from "../../oauth/scheduler.js";
import { createRefreshScheduler } from "../../oauth/scheduler.js";
import type { SecretRecord } from "../../store/types.js";
import type { Actor } from "../context.js";
import { getSecret, noAccessToken } from "../records.js";
import { audited } from "../shared.js";
import { checkSecretName } from "../validate.js";
import { computeView } from "../view.js";
import type { AddOAuthInput } from "./credentials.js";
import {
  checkAddInput,
  proveRefreshToken,
  resolveEndpoints,
  revokeAtProvider,
  storeNewCredential,
} from "./credentials.js";
import type { OAuthDeps } from "./deps.js";
import { openRefreshToken } from "./host-only.js";
import type { LoginMethod } from "./login.js";
import { createLogins } from "./login.js";
import { clientOf, endpointsOf } from "./provider.js";
import type { Refreshed } from "./refresh.js";
import { createRefresher } from "./refresh.js";

export type { AddOAuthInput } from "./credentials.js";
export type { LoginMethod, LoginPrompt, LoginStatus } from "./login.js";

/** The scheduler acts as this caller in the audit log. */
const SCHEDULER: Actor = { caller: { kind: "system", name: "oauth-scheduler" }, requestId: "-" };

export function createOAuthUseCases(deps: OAuthDeps) {
  const { store } = deps;
  const refresher = createRefresher(deps);
  const logins = createLogins(deps);
  const lastVmRefresh = new Map<string, number>();

  const scheduler = createRefreshScheduler({
    fraction: deps.oauth.refreshFraction,
    idleMaxMs: deps.oauth.idleRefreshMs,
    backoff: { maxMs: deps.oauth.maxBackoffMs },
    async refresh(name, reason) {
      const a = await refresher.attempt(name, SCHEDULER, reason);
      return a.ok ? { kind: "ok" } : a.next;
    },
    // The minute sweep catches what precise timers cannot: a host that slept, a clock that
    // jumped. Timers do the rest.
    sweep(fn) {
      const task = cron.schedule("* * * * *", fn, { noOverlap: true });
      return () => void task.stop();
    },
  });

  /** What the scheduler keeps of each credential, to re-time only on real changes. */
  const timed = new Map<string, string>();
  const sync = (rec: SecretRecord | undefined, name: string) => {
    if (!rec?.oauth) {
      if (timed.delete(name)) scheduler.remove(name);
      logins.cancelFor(name);
      return;
    }
    const t = timingOf(rec);
    // A failure stored on the credential changes neither its token nor its grant: the
    // scheduler's backoff must stand, not be reset by that commit.
    const key = `${t.state}/${rec.oauth.grant}/${rec.currentVersion}`;
    if (timed.get(name) === key) return;
    timed.set(name, key);
    scheduler.upsert(t);
  };
  const unsubscribe = store.onCommit((_rev, changes) => {
    for (const c of changes) {
      if (c.kind === "secret") sync(store.data.secrets[c.name], c.name);
    }
  });

  return {
    /** Starts the scheduler: anything due or expired is refreshed at once. */
    start() {
      for (const rec of Object.values(store.data.secrets)) if (rec.oauth) sync(rec, rec.name);
      scheduler.start();
    },

    async close() {
      unsubscribe();
      scheduler.stop();
      await Promise.all([logins.close(), refresher.close()]);
    },

    async add(actor: Actor, input: AddOAuthInput) {
      return audited(deps, actor, "change", "oauth.add", { secret: input.name }, async () => {
        const cfg = checkAddInput(input);
        if (store.data.secrets[cfg.name]) {
          throw failedPrecondition(`name: secret '${cfg.name}' already exists`, "name");
        }
        const endpoints = await resolveEndpoints(deps, cfg);
        const tokens = cfg.refreshToken ? await proveRefreshToken(deps, cfg, endpoints) : undefined;
        const record = await storeNewCredential(deps, actor, cfg, endpoints, tokens);
        return { record, revision: record.modRevision };
      });
    },

    list() {
      return Object.values(store.data.secrets)
        .filter((s) => s.oauth)
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((record) => ({
          record,
          nextRefreshAt: scheduler.dueAt(record.name),
          loginPending: logins.pending(record.name),
        }));
    },

    async startLogin(actor: Actor, nameIn: string, method?: LoginMethod) {
      return audited(deps, actor, "change", "oauth.login.start", { secret: nameIn }, async () => {
        const name = checkSecretName("name", nameIn);
        return logins.start(actor, name, method);
      });
    },

    waitLogin: logins.wait,
    cancelLogin: logins.cancel,

    /**
     * Refreshes `name` now; resolves once the new access token is durable and on its way to
     * the VMs. A VM may refresh only a credential in its own view, at most once per
     * `vmRefreshIntervalMs`, and one refreshed within that interval is answered as it is.
     */
    async refresh(actor: Actor, nameIn: string): Promise<Refreshed> {
      const name = checkSecretName("name", nameIn);
      const rec = getSecret(store.data, name);
      if (!rec.oauth)
        throw failedPrecondition(`secret '${name}' is not an oauth credential`, "name");
      const caller = actor.caller;
      if (caller.kind === "vm") {
        if (!computeView(store.data, caller.vm).some((e) => e.secret.name === name)) {
          throw permissionDenied(`name: '${name}' is not in the view of vm '${caller.vm}'`, "name");
        }
        const now = Date.now();
        const fresh = freshToken(rec, now, deps.oauth.vmRefreshIntervalMs);
        if (fresh && !refresher.inFlight(name)) return fresh;
        const last = lastVmRefresh.get(caller.vm) ?? 0;
        const waitMs = last + deps.oauth.vmRefreshIntervalMs - now;
        if (waitMs > 0 && !refresher.inFlight(name)) {
          throw resourceExhausted(
            `vm '${caller.vm}' asked for a refresh ${Math.round((now - last) / 1000)} s ago; retry in ${Math.ceil(waitMs / 1000)} s`,
          );
        }
        lastVmRefresh.set(caller.vm, now);
      }
      const a = await refresher.attempt(name, actor, caller.kind === "vm" ? "vm" : "manual");
      if (!a.ok) throw a.error;
      return a.refreshed;
    },

    async logout(actor: Actor, nameIn: string, force: boolean) {
      return audited(deps, actor, "change", "oauth.logout", { secret: nameIn }, async (note) => {
        const name = checkSecretName("name", nameIn);
        const rec = getSecret(store.data, name);
        const o = rec.oauth;
        if (!o) throw failedPrecondition(`secret '${name}' is not an oauth credential`, "name");
        logins.cancelFor(name);
        let refreshToken: string | undefined;
        try {
          refreshToken = openRefreshToken(deps, name, o);
        } catch {
          refreshToken = undefined; // damaged: nothing to revoke, only to forget
        }
        const revoked = await revokeAtProvider(
          deps,
          name,
          endpointsOf(o),
          clientOf(deps, name, o),
          refreshToken,
          force,
        );
        note({ detail: revoked ? "revoked" : "not revoked" });
        const record = await store.mutate((head, tx) => {
          const cur = getSecret(head, name);
          if (!cur.oauth) throw failedPrecondition(`secret '${name}' is not an oauth credential`);
          const { refreshToken: _r, lastError: _e, lastErrorAt: _a, ...rest } = cur.oauth;
          return tx.put("secrets", {
            ...cur,
            oauth: { ...rest, grant: cur.oauth.grant + 1, state: "needs_login" },
            currentVersion: 0,
            versions: [],
            updatedAt: new Date().toISOString(),
          });
        });
        return { revoked, revision: record.modRevision };
      });
    },

    /** When the scheduler will next refresh `name` (tests, status). */
    dueAt: (name: string) => scheduler.dueAt(name),
  };
}

export type OAuthUseCases = ReturnType<typeof createOAuthUseCases>;

// --- internal ---

function timingOf(rec: SecretRecord): CredentialTiming {
  const o = rec.oauth;
  const v = rec.versions.find((x) => x.version === rec.currentVersion);
  const usable = o !== undefined && o.refreshToken !== undefined && o.state !== "needs_login";
  return {
    name: rec.name,
    state: usable ? "ok" : "needs_login",
    ...(v ? { issuedAt: Date.parse(v.createdAt) } : {}),
    ...(v?.expiresAt ? { expiresAt: Date.parse(v.expiresAt) } : {}),
    ...(o?.lastRefreshAt ? { lastRefreshAt: Date.parse(o.lastRefreshAt) } : {}),
  };
}

/** The current token when it was obtained less than `withinMs` ago and has not expired. */
function freshToken(rec: SecretRecord, now: number, withinMs: number): Refreshed | undefined {
  if (rec.currentVersion === 0) throw noAccessToken(rec.name);
  const v = rec.versions.find((x) => x.version === rec.currentVersion);
  if (!v || now - Date.parse(v.createdAt) > withinMs) return undefined;
  if (v.expiresAt && Date.parse(v.expiresAt) <= now) return undefined;
  return { record: rec, version: v.version, expiresAt: v.expiresAt, revision: rec.modRevision };
}
