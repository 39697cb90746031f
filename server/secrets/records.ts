/**
 * Rules on secret records that more than one use case applies: lookups that answer NOT_FOUND
 * naming the field, the scope and env-var checks every write runs, and version bookkeeping.
 * Plain secrets (secrets.ts) and oauth credentials (oauth/) share them.
 */

import type { Barrier } from "../barrier/barrier.js";
import { alreadyExists, failedPrecondition, notFound } from "../errors.js";
import type { StoreView } from "../store/store.js";
import type { SecretRecord, SecretVersionRecord } from "../store/types.js";
import { actorOf } from "./caller.js";
import type { Actor } from "./context.js";
import { secretAad } from "./context.js";
import type { Scope } from "./validate.js";

/** Keep at most this many versions of a secret; the oldest non-current ones go first. */
export const MAX_VERSIONS = 100;

/** The secret `name` in `data`; NOT_FOUND naming the `name` field. */
export function getSecret(data: StoreView, name: string): SecretRecord {
  const rec = data.secrets[name];
  if (!rec) throw notFound("secret", name, "name");
  return rec;
}

/** Version `version` of `rec`; NOT_FOUND naming the `version` field. */
export function findVersion(rec: SecretRecord, version: number): SecretVersionRecord {
  if (version === 0 && rec.oauth) throw noAccessToken(rec.name);
  const v = rec.versions.find((x) => x.version === version);
  if (!v) throw notFound("version", `${rec.name}@${version}`, "version");
  return v;
}

/** FAILED_PRECONDITION for an oauth credential that holds no access token. */
export function noAccessToken(name: string) {
  return failedPrecondition(
    `oauth credential '${name}' holds no access token: log in with 'secretsctl oauth login ${name}'`,
    "name",
  );
}

/** NOT_FOUND when `scope` names a group or VM that does not exist. */
export function checkScopeExists(data: StoreView, scope: Scope) {
  if (scope.kind === "group" && !data.groups[scope.name])
    throw notFound("group", scope.name, "scope");
  if (scope.kind === "vm" && !data.vms[scope.name]) throw notFound("vm", scope.name, "scope");
}

/** The env vars a secret gives: its own, and an oauth credential's expiry var. */
export function envsOf(s: SecretRecord): string[] {
  return s.oauth?.expiresEnv ? [s.env, s.oauth.expiresEnv] : [s.env];
}

/**
 * Two secrets may not give the same env var at the same scope: which would win? `envs` are
 * the vars secret `self` would give, checked against every other secret; `field` is named.
 */
export function checkEnvFree(
  data: StoreView,
  envs: readonly { field: string; env: string }[],
  scope: string,
  self: string,
) {
  for (const s of Object.values(data.secrets)) {
    if (s.name === self || s.scope !== scope) continue;
    const taken = envsOf(s);
    for (const { field, env } of envs) {
      if (taken.includes(env)) {
        throw alreadyExists(
          field,
          `${env} is already provided at scope ${scope} by secret '${s.name}'`,
        );
      }
    }
  }
}

/** A new sealed version of `name`'s value. */
export function sealVersion(
  barrier: Barrier,
  name: string,
  version: number,
  value: string,
  actor: Actor,
  now: string,
  extra: Partial<Pick<SecretVersionRecord, "expiresAt">> = {},
): SecretVersionRecord {
  return {
    version,
    ciphertext: barrier.seal(secretAad(name, version), value),
    createdAt: now,
    createdBy: actorOf(actor.caller),
    ...extra,
  };
}

/** The number the next version of `rec` gets: never one it had (an oauth credential may have none). */
export function nextVersion(rec: SecretRecord): number {
  return Math.max(rec.currentVersion, ...rec.versions.map((v) => v.version)) + 1;
}

/** At most `max` versions: the oldest that is not `current` goes first. */
export function pruneVersions(
  versions: SecretVersionRecord[],
  current: number,
  max = MAX_VERSIONS,
): SecretVersionRecord[] {
  while (versions.length > max) {
    const idx = versions.findIndex((v) => v.version !== current);
    versions.splice(idx, 1);
  }
  return versions;
}
