/**
 * Logins run on the host. The device grant (RFC 8628): the user is shown a URL and a code,
 * and secretsd polls the token endpoint at the provider's interval. The code grant with PKCE
 * (RFC 7636, S256) over a loopback redirect (RFC 8252 §7.3): secretsd listens on 127.0.0.1,
 * checks `state` and `iss` (RFC 9207) on the redirect, and exchanges the code. The device
 * code, the PKCE verifier and the state never leave secretsd; a VM that starts a login is
 * shown only the verification URL and the user code.
 *
 * One login per credential at a time; a login's outcome is kept for a while after it ends,
 * for WaitOAuthLogin. Logins live in memory: a restart ends them (the user starts again).
 */
import { randomBytes } from "node:crypto";
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  notFound,
  permissionDenied,
  resourceExhausted,
} from "../../errors.js";
import {
  buildAuthorizationUrl,
  checkCallback,
  createPkce,
  exchangeCode,
  pollDeviceToken,
  randomState,
  startDeviceAuthorization,
  startLoopbackRedirect,
} from "../../oauth/protocol/index.js";
import type { SecretRecord } from "../../store/types.js";
import { actorOf } from "../caller.js";
import type { Actor } from "../context.js";
import { getSecret } from "../records.js";
import type { OAuthDeps } from "./deps.js";
import { storeTokens } from "./persist.js";
import { clientOf, endpointsOf, httpOf, quirksOf, toSecretsError } from "./provider.js";

export type LoginMethod = "device" | "code";
export type LoginState = "pending" | "done" | "failed" | "cancelled";

/** What the person logging in is shown. */
export interface LoginPrompt {
  loginId: string;
  method: LoginMethod;
  verificationUri?: string;
  verificationUriComplete?: string;
  userCode?: string;
  authorizationUrl?: string;
  expiresAt: Date;
}

export interface LoginStatus {
  state: LoginState;
  error?: string;
  version?: number;
  revision?: number;
}

/** Logins pending at once, over all credentials: each holds a poller or a listener. */
const MAX_PENDING = 32;
/** How long an ended login's outcome is kept for WaitOAuthLogin. */
const KEEP_ENDED_MS = 10 * 60 * 1000;
/** The longest one WaitOAuthLogin call waits. */
export const MAX_WAIT_MS = 60_000;

interface Login {
  prompt: LoginPrompt;
  name: string;
  /** Who started it: only they (or the host's admins) may wait for or cancel it. */
  owner: string;
  status: LoginStatus;
  abort: AbortController;
  done: Promise<void>;
}

export function createLogins(deps: OAuthDeps) {
  const logins = new Map<string, Login>();

  const pendingFor = (name: string) =>
    [...logins.values()].find((l) => l.name === name && l.status.state === "pending");

  function ended(login: Login, status: LoginStatus) {
    if (login.status.state !== "pending") return;
    login.status = status;
    setTimeout(() => logins.delete(login.prompt.loginId), KEEP_ENDED_MS).unref();
  }

  /** Checks who may start a login for `rec`, and how. */
  function methodFor(actor: Actor, rec: SecretRecord, asked: LoginMethod | undefined): LoginMethod {
    const o = rec.oauth;
    if (!o) throw failedPrecondition(`secret '${rec.name}' is not an oauth credential`, "name");
    const caller = actor.caller;
    if (caller.kind === "vm") {
      // A VM may log in only a credential bound to it, and only with the device grant: the
      // code grant's redirect lands on the host, and a VM is never shown more than a code.
      if (rec.scope !== `vm:${caller.vm}`) {
        throw permissionDenied(
          `name: a VM may start a login only for an oauth credential scoped to it (vm:${caller.vm}); '${rec.name}' is scoped ${rec.scope}`,
          "name",
        );
      }
      if (asked === "code") {
        throw permissionDenied("method: a VM may only start a device login", "method");
      }
    }
    const method = asked ?? (o.endpoints.deviceAuthorization ? "device" : "code");
    if (method === "device" && !o.endpoints.deviceAuthorization) {
      throw failedPrecondition(
        `method: the provider of '${rec.name}' offers no device authorization endpoint; use the code grant (--browser) on the host`,
        "method",
      );
    }
    if (method === "code" && !o.endpoints.authorization) {
      throw failedPrecondition(
        `method: the provider of '${rec.name}' offers no authorization endpoint; use the device grant`,
        "method",
      );
    }
    return method;
  }

  async function start(actor: Actor, name: string, asked?: LoginMethod): Promise<LoginPrompt> {
    const rec = getSecret(deps.store.data, name);
    const method = methodFor(actor, rec, asked);
    const o = rec.oauth;
    if (!o) throw failedPrecondition(`secret '${name}' is not an oauth credential`, "name");
    const owner = actorOf(actor.caller);
    const pending = pendingFor(name);
    if (pending) {
      // The same person asking again sees the same prompt; anyone else waits their turn.
      if (pending.owner === owner && pending.prompt.method === method) return pending.prompt;
      throw alreadyExists(
        "name",
        `a login for '${name}' is already pending (started by ${pending.owner}); it ends by ${pending.prompt.expiresAt.toISOString()}`,
      );
    }
    if ([...logins.values()].filter((l) => l.status.state === "pending").length >= MAX_PENDING) {
      throw resourceExhausted(`${MAX_PENDING} logins are pending; retry once one ends`);
    }
    const abort = new AbortController();
    const loginId = randomBytes(16).toString("base64url");
    const client = clientOf(deps, name, o);
    const endpoints = endpointsOf(o);
    const http = httpOf(deps, abort.signal);
    const scopes = o.scopes;
    let prompt: LoginPrompt;
    let finish: () => Promise<Awaited<ReturnType<typeof exchangeCode>>>;
    try {
      if (method === "device") {
        const da = await startDeviceAuthorization(endpoints, client, scopes, http);
        const expiresAt = Date.now() + Math.min(da.expiresIn * 1000, deps.oauth.loginTimeoutMs);
        prompt = {
          loginId,
          method,
          verificationUri: da.verificationUri,
          ...(da.verificationUriComplete
            ? { verificationUriComplete: da.verificationUriComplete }
            : {}),
          userCode: da.userCode,
          expiresAt: new Date(expiresAt),
        };
        finish = () =>
          pollDeviceToken(endpoints, client, da.deviceCode, {
            ...http,
            intervalMs: da.intervalMs,
            expiresAt,
            slowDownStepMs: deps.oauth.slowDownStepMs,
            signal: abort.signal,
          });
      } else {
        const pkce = createPkce();
        const state = randomState();
        const redirect = await startLoopbackRedirect({ timeoutMs: deps.oauth.loginTimeoutMs });
        abort.signal.addEventListener("abort", () => void redirect.close(), { once: true });
        const authorizationUrl = buildAuthorizationUrl(endpoints, client, {
          redirectUri: redirect.redirectUri,
          scopes,
          state,
          challenge: pkce.challenge,
          extraParams: quirksOf(o).authParams,
        });
        prompt = {
          loginId,
          method,
          authorizationUrl,
          expiresAt: new Date(Date.now() + deps.oauth.loginTimeoutMs),
        };
        finish = async () => {
          try {
            const cb = await redirect.result;
            const { code } = checkCallback(cb, {
              state,
              ...(o.issuer ? { issuer: o.issuer } : {}),
              issRequired: o.endpoints.issParameterSupported === true,
            });
            return await exchangeCode(
              endpoints,
              client,
              { code, redirectUri: redirect.redirectUri, verifier: pkce.verifier },
              http,
            );
          } finally {
            void redirect.close();
          }
        };
      }
    } catch (err) {
      throw toSecretsError(name, err, `starting a ${method} login`);
    }
    const login: Login = {
      prompt,
      name,
      owner,
      status: { state: "pending" },
      abort,
      done: Promise.resolve(),
    };
    logins.set(loginId, login);
    login.done = complete(login, actor, finish);
    return prompt;
  }

  async function complete(
    login: Login,
    actor: Actor,
    finish: () => Promise<Awaited<ReturnType<typeof exchangeCode>>>,
  ) {
    const { name } = login;
    try {
      const tokens = await finish();
      if (login.abort.signal.aborted) return;
      const rec = await storeTokens(deps, actor, name, { kind: "login" }, tokens);
      ended(login, { state: "done", version: rec.currentVersion, revision: rec.modRevision });
      deps.log.info("oauth login done", { secret: name, version: rec.currentVersion });
      await audit(actor, "oauth.login", name, "ok", login.prompt.method, rec.currentVersion);
    } catch (err) {
      if (login.abort.signal.aborted) {
        ended(login, { state: "cancelled", error: "the login was cancelled" });
        await audit(actor, "oauth.login", name, "cancelled", login.prompt.method);
        return;
      }
      const e = toSecretsError(name, err, "login");
      ended(login, { state: "failed", error: e.message });
      deps.log.warn("oauth login failed", { secret: name, reason: e.message });
      await audit(actor, "oauth.login", name, e.code, login.prompt.method);
    }
  }

  function find(actor: Actor, loginId: string): Login {
    if (loginId === "") throw invalidArgument("login_id", "is required");
    const login = logins.get(loginId);
    // Another caller's login is answered exactly like an unknown one: ids are not guessable,
    // and a VM learns nothing about logins it did not start.
    if (!login || (actor.caller.kind === "vm" && login.owner !== actorOf(actor.caller))) {
      throw notFound("login", loginId.slice(0, 8), "login_id");
    }
    return login;
  }

  async function audit(
    actor: Actor,
    action: string,
    name: string,
    result: string,
    method: LoginMethod,
    version?: number,
  ) {
    await deps.audit
      .record("change", {
        requestId: actor.requestId,
        actor: actorOf(actor.caller),
        action,
        secret: name,
        result,
        detail: method,
        ...(version === undefined ? {} : { version }),
      })
      .catch(() => {});
  }

  return {
    start,

    /** Waits up to `waitMs` (at most MAX_WAIT_MS) for the login to end; its status. */
    async wait(actor: Actor, loginId: string, waitMs: number, signal?: AbortSignal) {
      if (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > MAX_WAIT_MS) {
        throw invalidArgument("wait_ms", `must be 0 to ${MAX_WAIT_MS}`);
      }
      const login = find(actor, loginId);
      if (login.status.state === "pending" && waitMs > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          login.done,
          new Promise<void>((resolve) => {
            timer = setTimeout(resolve, waitMs);
            signal?.addEventListener("abort", () => resolve(), { once: true });
          }),
        ]);
        clearTimeout(timer);
      }
      return login.status;
    },

    cancel(actor: Actor, loginId: string) {
      const login = find(actor, loginId);
      login.abort.abort();
    },

    /** Cancels a pending login of `name` (on logout or removal). */
    cancelFor(name: string) {
      pendingFor(name)?.abort.abort();
    },

    pending: (name: string) => pendingFor(name) !== undefined,

    async close() {
      for (const l of logins.values()) l.abort.abort();
      await Promise.allSettled([...logins.values()].map((l) => l.done));
    },
  };
}

export type Logins = ReturnType<typeof createLogins>;
