/**
 * The one write that stores what a provider answered. A refresh token the provider rotated
 * is written in the same durable commit as the access token it came with: nothing is visible
 * (no VM, no reader) before that commit is on disk, and the old refresh token is replaced by
 * that commit and no earlier. A crash before it leaves the old token stored; one after it,
 * the new one (issue #10, test/oauth-crash.test.ts).
 */
import { aborted } from "../../errors.js";
import type { OAuthRecord, SecretRecord } from "../../store/types.js";
import type { Actor } from "../context.js";
import { nextVersion, pruneVersions, sealVersion } from "../records.js";
import type { OAuthDeps } from "./deps.js";
import { sealRefreshToken } from "./host-only.js";

/** Access tokens kept per credential: the current one and two before it (for rollback of damage). */
export const MAX_OAUTH_VERSIONS = 3;

/** What a provider's token response gave. */
export interface TokenGrant {
  accessToken: string;
  /** Seconds, as the provider said; absent when it did not. */
  expiresIn?: number;
  /** A new refresh token; absent when the provider kept the old one (RFC 6749 §6). */
  refreshToken?: string;
}

/**
 * Stores `t` for credential `name`. `mode` "refresh" keeps the stored refresh token when the
 * provider sent none and refuses (ABORTED, nothing written) when the credential's grant is no
 * longer `grant` (a logout or login overtook this refresh); "login" starts a new grant.
 * Resolves once the commit is durable, with the record as committed.
 */
export async function storeTokens(
  deps: OAuthDeps,
  actor: Actor,
  name: string,
  mode: { kind: "refresh"; grant: number } | { kind: "login" },
  t: TokenGrant,
): Promise<SecretRecord> {
  const now = new Date();
  const at = now.toISOString();
  const expiresAt =
    t.expiresIn === undefined
      ? undefined
      : new Date(now.getTime() + t.expiresIn * 1000).toISOString();
  return deps.store.mutate((head, tx) => {
    const rec = head.secrets[name];
    if (!rec?.oauth)
      throw aborted(`oauth credential '${name}' was removed while it was being refreshed`);
    const o = rec.oauth;
    if (mode.kind === "refresh" && o.grant !== mode.grant) {
      throw aborted(
        `oauth credential '${name}' was logged out or in again while it was being refreshed`,
      );
    }
    const version = nextVersion(rec);
    const v = sealVersion(deps.barrier, name, version, t.accessToken, actor, at, {
      ...(expiresAt === undefined ? {} : { expiresAt }),
    });
    const { lastError: _e, lastErrorAt: _a, refreshToken: _r, ...base } = o;
    let oauth: OAuthRecord;
    if (t.refreshToken !== undefined || mode.kind === "login") {
      const grant = o.grant + 1;
      oauth = {
        ...base,
        grant,
        ...(t.refreshToken === undefined
          ? {}
          : { refreshToken: sealRefreshToken(deps, name, grant, t.refreshToken) }),
        state: t.refreshToken === undefined ? "needs_login" : "ok",
        lastRefreshAt: at,
        ...(t.refreshToken === undefined
          ? {
              lastError:
                "the provider issued no refresh token (does the client ask for offline access?): the access token works until it expires",
              lastErrorAt: at,
            }
          : {}),
      };
    } else {
      oauth = { ...o, state: "ok", lastRefreshAt: at };
      delete oauth.lastError;
      delete oauth.lastErrorAt;
    }
    return tx.put("secrets", {
      ...rec,
      oauth,
      versions: pruneVersions([...rec.versions, v], version, MAX_OAUTH_VERSIONS),
      currentVersion: version,
      updatedAt: at,
    });
  });
}

/**
 * Records a failed refresh or login on the credential (state and a plain reason), when its
 * grant is still `grant`. Durable like any change; never holds a token.
 */
export async function storeFailure(
  deps: OAuthDeps,
  name: string,
  grant: number,
  state: OAuthRecord["state"],
  reason: string,
): Promise<void> {
  const now = deps.store.data.secrets[name]?.oauth;
  if (!now || now.grant !== grant || (now.state === state && now.lastError === reason)) return;
  await deps.store.mutate((head, tx) => {
    const rec = head.secrets[name];
    if (!rec?.oauth || rec.oauth.grant !== grant) return;
    tx.put("secrets", {
      ...rec,
      oauth: { ...rec.oauth, state, lastError: reason, lastErrorAt: new Date().toISOString() },
    });
  });
}
