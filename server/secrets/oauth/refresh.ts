/**
 * The refresh coordinator: the one place a refresh token is presented. At most one refresh
 * is in flight per credential, shared by the scheduler, `oauth refresh` and VMs asking for
 * one; concurrent callers get the same result. What a refresh ends in:
 *   - ok: the new tokens are stored in one durable commit (persist.ts), which is what puts
 *     the access token on its way to every VM that sees it;
 *   - invalid_grant (or a refresh token that does not decrypt): "needs login", stored and
 *     audited; nothing retries it, so no storm reaches the provider. After a refresh whose
 *     answer was lost (a 5xx or a timeout once the request was sent), the provider may have
 *     rotated the token already and refuses the old one: that ends here too, said plainly;
 *   - anything that may pass (network, 5xx, 429): the access token is kept, the failure is
 *     stored, and the scheduler retries with capped backoff (Retry-After is a floor).
 */
import type { SecretsError } from "../../errors.js";
import { failedPrecondition } from "../../errors.js";
import { isOAuthError, refreshGrant } from "../../oauth/protocol/index.js";
import type { RefreshOutcome } from "../../oauth/scheduler.js";
import type { SecretRecord } from "../../store/types.js";
import { actorOf } from "../caller.js";
import type { Actor } from "../context.js";
import type { OAuthDeps } from "./deps.js";
import { openRefreshToken } from "./host-only.js";
import { storeFailure, storeTokens } from "./persist.js";
import { clientOf, endpointsOf, httpOf, quirksOf, toSecretsError } from "./provider.js";

/** A refresh that worked: the record as committed. */
export interface Refreshed {
  record: SecretRecord;
  version: number;
  expiresAt: string | undefined;
  revision: number;
}

/** How a refresh ended, for the caller (an answer) and the scheduler (what next). */
export type Attempt =
  | { ok: true; refreshed: Refreshed }
  | { ok: false; error: SecretsError; next: RefreshOutcome };

export interface Refresher {
  /** Refreshes `name`, joining a refresh already in flight for it. Never rejects. */
  attempt(name: string, actor: Actor, reason: string): Promise<Attempt>;
  /** Whether a refresh of `name` is in flight. */
  inFlight(name: string): boolean;
  /** Lets refreshes in flight store their answer (a few seconds at most), then aborts them. */
  close(): Promise<void>;
}

export function createRefresher(deps: OAuthDeps): Refresher {
  const flights = new Map<string, Promise<Attempt>>();
  /** Credentials whose last attempt may have reached the provider without an answer. */
  const lost = new Set<string>();
  const closing = new AbortController();

  async function run(name: string, actor: Actor, reason: string): Promise<Attempt> {
    const rec = deps.store.data.secrets[name];
    if (!rec?.oauth) {
      return fail(failedPrecondition(`oauth credential '${name}' does not exist`, "name"), "stop");
    }
    const o = rec.oauth;
    const grant = o.grant;
    if (o.refreshToken === undefined || o.state === "needs_login") {
      // Never presented again once refused: a person has to log in (no retry storm).
      const why = o.lastError ? `: ${o.lastError}` : "";
      return fail(needsLogin(name, why), "stop");
    }
    let refreshToken: string | undefined;
    try {
      refreshToken = openRefreshToken(deps, name, o);
    } catch (err) {
      await record(actor, name, reason, "failed_precondition");
      await storeFailure(deps, name, grant, "needs_login", (err as Error).message);
      return fail(err as SecretsError, "stop");
    }
    let tokens: Awaited<ReturnType<typeof refreshGrant>>;
    try {
      tokens = await refreshGrant(endpointsOf(o), clientOf(deps, name, o), refreshToken as string, {
        ...httpOf(deps, closing.signal),
        quirks: quirksOf(o),
        ...(o.scopes.length > 0 ? { scope: o.scopes.join(" ") } : {}),
      });
    } catch (err) {
      return failed(name, actor, reason, grant, err);
    }
    lost.delete(name);
    let committed: SecretRecord;
    try {
      committed = await storeTokens(deps, actor, name, { kind: "refresh", grant }, tokens);
    } catch (err) {
      // Overtaken by a logout or a new login (ABORTED), or the store refused the write: the
      // tokens just obtained are not ours to keep. Never logged: they are secrets.
      const e = toSecretsError(name, err, "storing the refreshed token");
      await record(actor, name, reason, e.code);
      return fail(e, "stop");
    }
    await record(actor, name, reason, "ok", committed);
    const v = committed.versions.find((x) => x.version === committed.currentVersion);
    return {
      ok: true,
      refreshed: {
        record: committed,
        version: committed.currentVersion,
        expiresAt: v?.expiresAt,
        revision: committed.modRevision,
      },
    };
  }

  /** A provider call failed: classify, store the state, audit. */
  async function failed(name: string, actor: Actor, reason: string, grant: number, err: unknown) {
    if (isOAuthError(err) && err.kind === "invalid_grant") {
      const after = lost.has(name)
        ? " after an earlier refresh got no answer (the provider had already rotated the refresh token, and a rotated token cannot be presented twice)"
        : " (it was revoked, expired or already used)";
      lost.delete(name);
      const reasonText = `the provider refused the refresh token${after}`;
      deps.log.warn("oauth credential needs login", { secret: name, reason: reasonText });
      await record(actor, name, reason, "failed_precondition", undefined, "needs login");
      await storeFailure(deps, name, grant, "needs_login", reasonText);
      return fail(needsLogin(name, `: ${reasonText}`), "stop");
    }
    const e = toSecretsError(name, err, "refresh");
    const transient = isOAuthError(err) && (err.kind === "transient" || err.kind === "protocol");
    if (isOAuthError(err) && err.kind === "transient") lost.add(name);
    deps.log.warn("oauth refresh failed", { secret: name, reason: e.message, retry: transient });
    await record(actor, name, reason, e.code);
    await storeFailure(deps, name, grant, "error", e.message);
    if (transient) {
      const retryAfterMs = isOAuthError(err) ? err.retryAfterMs : undefined;
      return fail(
        e,
        retryAfterMs === undefined ? { kind: "retry" } : { kind: "retry", retryAfterMs },
      );
    }
    return fail(e, "stop");
  }

  /** The audit line of one attempt: who asked, why, how it ended; never a token. */
  async function record(
    actor: Actor,
    name: string,
    reason: string,
    result: string,
    rec?: SecretRecord,
    more?: string,
  ) {
    await deps.audit
      .record("change", {
        requestId: actor.requestId,
        actor: actorOf(actor.caller),
        action: "oauth.refresh",
        secret: name,
        result,
        detail: more ? `${reason}; ${more}` : reason,
        ...(rec ? { version: rec.currentVersion, revision: rec.modRevision } : {}),
      })
      .catch(() => {});
  }

  return {
    attempt(name, actor, reason) {
      const cur = flights.get(name);
      if (cur) return cur;
      const p = run(name, actor, reason)
        .catch((err): Attempt => fail(toSecretsError(name, err, "refresh"), { kind: "retry" }))
        .finally(() => flights.delete(name));
      flights.set(name, p);
      return p;
    },
    inFlight: (name) => flights.has(name),
    async close() {
      // A refresh in flight may already have been answered with a rotated token: let it
      // store that before the store closes, rather than lose it, for a few seconds.
      const settled = Promise.allSettled([...flights.values()]);
      let timer: NodeJS.Timeout | undefined;
      const waited = new Promise((r) => {
        timer = setTimeout(r, CLOSE_WAIT_MS);
      });
      await Promise.race([settled, waited]);
      clearTimeout(timer);
      closing.abort(new Error("secretsd is stopping"));
      await settled;
    },
  };
}

/** How long stopping waits for refreshes in flight before it aborts them. */
const CLOSE_WAIT_MS = 5000;

/** FAILED_PRECONDITION for a credential that cannot refresh until someone logs in. */
export function needsLogin(name: string, why = ""): SecretsError {
  return failedPrecondition(
    `oauth credential '${name}' needs login${why}; run 'secretsctl oauth login ${name}'`,
    "name",
  );
}

// --- internal ---

function fail(error: SecretsError, next: RefreshOutcome | "stop"): Attempt {
  return { ok: false, error, next: next === "stop" ? { kind: "stop" } : next };
}
