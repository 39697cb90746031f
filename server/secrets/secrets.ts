/**
 * Secret use cases: create, update, read, list, delete, rotate, versions, rollback. Each one
 * validates fully before it changes anything, commits durably, and audits its result.
 *
 * A secret may carry an expiry of its current value (`valueExpiresAt`, expiry.ts): set on
 * create (never in the past) or update (may be past), removed by update, and replaced by a
 * rotation (which gives the new value's expiry or none). Rollback leaves it as it is.
 */
import { alreadyExists, failedPrecondition, invalidArgument } from "../errors.js";
import type { Actor, Deps } from "./context.js";
import { secretAad } from "./context.js";
import { checkEnvPolicy } from "./env-policy.js";
import { checkExpiresAt } from "./expiry.js";
import type { ImportItemInput } from "./import.js";
import { importSecrets } from "./import.js";
import type { OAuthHostOnly } from "./oauth/host-only.js";
import { openHostOnly } from "./oauth/host-only.js";
import { defaultEnvName, PROVIDER_ENV } from "./presets.js";
import {
  checkEnvFree,
  checkScopeExists,
  findVersion,
  getSecret,
  nextVersion,
  pruneVersions,
  sealVersion,
} from "./records.js";
import { audited } from "./shared.js";
import {
  checkDescription,
  checkEnvName,
  checkLabels,
  checkSecretName,
  checkValue,
  formatScope,
  parseScope,
} from "./validate.js";

export interface CreateSecretInput {
  name: string;
  value: string;
  env?: string;
  scope?: string;
  provider?: string;
  description?: string;
  labels?: Record<string, string>;
  allowSensitiveEnv?: boolean;
  /** When the value stops working; must not be in the past. */
  expiresAt?: Date | undefined;
}

export interface UpdateSecretInput {
  name: string;
  env?: string | undefined;
  scope?: string | undefined;
  description?: string | undefined;
  labels?: Record<string, string> | undefined;
  allowSensitiveEnv?: boolean | undefined;
  /** A new expiry (may be past); null removes it; undefined keeps it. */
  expiresAt?: Date | null | undefined;
}

export function createSecretUseCases(deps: Deps) {
  const { store, barrier } = deps;

  return {
    async create(actor: Actor, input: CreateSecretInput) {
      return audited(deps, actor, "change", "secret.create", { secret: input.name }, async () => {
        const name = checkSecretName("name", input.name);
        const value = checkValue("value", input.value);
        const provider = input.provider ?? "";
        if (provider && !PROVIDER_ENV[provider]) {
          throw invalidArgument("provider", `unknown provider '${provider}'`);
        }
        const env = checkEnvName("env", input.env || defaultEnvName(name, provider));
        const allowSensitiveEnv = input.allowSensitiveEnv === true;
        checkEnvPolicy("env", env, allowSensitiveEnv);
        const scope = parseScope("scope", input.scope ?? "");
        const description = checkDescription("description", input.description ?? "");
        const labels = checkLabels("labels", input.labels ?? {});
        const expiresAt =
          input.expiresAt === undefined
            ? undefined
            : checkExpiresAt("expires_at", input.expiresAt, Date.now(), false);
        const record = await store.mutate((data, tx) => {
          if (data.secrets[name]) throw alreadyExists("name", `secret '${name}' already exists`);
          checkScopeExists(data, scope);
          checkEnvFree(data, [{ field: "env", env }], formatScope(scope), name);
          const now = new Date().toISOString();
          return tx.put("secrets", {
            name,
            env,
            scope: formatScope(scope),
            kind: "static",
            provider: provider || (PROVIDER_ENV[name] ? name : ""),
            description,
            labels,
            ...(allowSensitiveEnv ? { allowSensitiveEnv } : {}),
            ...(expiresAt ? { valueExpiresAt: expiresAt } : {}),
            currentVersion: 1,
            versions: [sealVersion(barrier, name, 1, value, actor, now)],
            createdAt: now,
            updatedAt: now,
          });
        });
        return { record, revision: record.modRevision, version: 1 };
      });
    },

    async update(actor: Actor, input: UpdateSecretInput) {
      return audited(deps, actor, "change", "secret.update", { secret: input.name }, async () => {
        const name = checkSecretName("name", input.name);
        const env = input.env === undefined ? undefined : checkEnvName("env", input.env);
        const scope = input.scope === undefined ? undefined : parseScope("scope", input.scope);
        const description =
          input.description === undefined
            ? undefined
            : checkDescription("description", input.description);
        const labels = input.labels === undefined ? undefined : checkLabels("labels", input.labels);
        const expiresAt = input.expiresAt
          ? checkExpiresAt("expires_at", input.expiresAt, Date.now(), true)
          : input.expiresAt;
        const record = await store.mutate((data, tx) => {
          const rec = getSecret(data, name);
          if (expiresAt !== undefined && rec.oauth) throw noExpiry(name);
          const nextScope = scope ? formatScope(scope) : rec.scope;
          if (rec.class === "infrastructure" && nextScope !== "host") {
            throw failedPrecondition(
              `scope: secret '${name}' is infrastructure: host-only, it never enters a VM's view`,
              "scope",
            );
          }
          if (scope) checkScopeExists(data, scope);
          const envs = [{ field: env === undefined ? "scope" : "env", env: env ?? rec.env }];
          if (rec.oauth?.expiresEnv) envs.push({ field: "scope", env: rec.oauth.expiresEnv });
          checkEnvFree(data, envs, nextScope, name);
          const allow = input.allowSensitiveEnv ?? rec.allowSensitiveEnv === true;
          checkEnvPolicy(env === undefined ? "allow_sensitive_env" : "env", env ?? rec.env, allow);
          const { allowSensitiveEnv: _old, valueExpiresAt: oldExpiry, ...base } = rec;
          const expiry = expiresAt === undefined ? oldExpiry : (expiresAt ?? undefined);
          return tx.put("secrets", {
            ...base,
            ...(allow ? { allowSensitiveEnv: true } : {}),
            ...(expiry ? { valueExpiresAt: expiry } : {}),
            env: env ?? rec.env,
            scope: nextScope,
            description: description ?? rec.description,
            labels: labels ?? rec.labels,
            updatedAt: new Date().toISOString(),
          });
        });
        return { record, revision: record.modRevision };
      });
    },

    /**
     * The value of one version; with `hostOnly`, also an oauth credential's refresh token and
     * client secret (host callers only: VM tokens never reach SecretService), audited as such.
     */
    async getValue(actor: Actor, nameIn: string, versionIn: number, hostOnly = false) {
      return audited(deps, actor, "read", "secret.read", { secret: nameIn }, async (note) => {
        const name = checkSecretName("name", nameIn);
        const rec = getSecret(store.data, name);
        if (hostOnly && !rec.oauth) {
          throw invalidArgument("include_host_only", `secret '${name}' is not an oauth credential`);
        }
        const version = versionIn || rec.currentVersion;
        let host: OAuthHostOnly | undefined;
        if (hostOnly && rec.oauth) {
          host = openHostOnly(deps, rec);
          note({ detail: `host-only: ${Object.keys(host).join(",") || "none held"}` });
          // The credential's tokens may be read before any access token exists.
          if (version === 0) return { record: rec, version, value: "", host };
        }
        const v = findVersion(rec, version);
        note({ version });
        if (deps.damage.has(name, v)) throw deps.damage.error(name, version);
        let value: string;
        try {
          value = barrier.open(secretAad(name, version), v.ciphertext);
        } catch {
          throw deps.damage.found(name, v);
        }
        return { record: rec, version, value, host };
      });
    },

    list(scopeFilter: string) {
      const scope = scopeFilter ? formatScope(parseScope("scope", scopeFilter)) : undefined;
      const secrets = Object.values(store.data.secrets)
        .filter((s) => scope === undefined || s.scope === scope)
        .sort((a, b) => a.name.localeCompare(b.name));
      return { secrets, revision: store.data.revision };
    },

    async remove(actor: Actor, nameIn: string) {
      return audited(deps, actor, "change", "secret.delete", { secret: nameIn }, async () => {
        const name = checkSecretName("name", nameIn);
        return store.mutate((data, tx) => {
          getSecret(data, name);
          tx.delete("secrets", name);
          return { revision: tx.revision };
        });
      });
    },

    /**
     * Stores a new value as the current version. `expiresAt` is the new value's expiry (not in
     * the past); without it the secret has none, whatever the old value's was.
     */
    async rotate(actor: Actor, nameIn: string, valueIn: string, expiresAtIn?: Date) {
      return audited(deps, actor, "change", "secret.rotate", { secret: nameIn }, async (note) => {
        const name = checkSecretName("name", nameIn);
        const value = checkValue("value", valueIn);
        const expiresAt =
          expiresAtIn === undefined
            ? undefined
            : checkExpiresAt("expires_at", expiresAtIn, Date.now(), false);
        const record = await store.mutate((data, tx) => {
          const { valueExpiresAt: _old, ...rec } = getSecret(data, name);
          if (rec.oauth) throw notRotatable(name, "rotated");
          const version = nextVersion(rec);
          const now = new Date().toISOString();
          const versions = [
            ...rec.versions,
            sealVersion(barrier, name, version, value, actor, now),
          ];
          return tx.put("secrets", {
            ...rec,
            ...(expiresAt ? { valueExpiresAt: expiresAt } : {}),
            versions: pruneVersions(versions, version),
            currentVersion: version,
            updatedAt: now,
          });
        });
        note({ version: record.currentVersion });
        return { record, revision: record.modRevision };
      });
    },

    versions(nameIn: string) {
      const rec = getSecret(store.data, checkSecretName("name", nameIn));
      return { record: rec, versions: [...rec.versions].sort((a, b) => b.version - a.version) };
    },

    async rollback(actor: Actor, nameIn: string, version: number) {
      return audited(deps, actor, "change", "secret.rollback", { secret: nameIn }, async (note) => {
        const name = checkSecretName("name", nameIn);
        if (!Number.isInteger(version) || version < 1) {
          throw invalidArgument("version", "must be a version number (1 or more)");
        }
        note({ version });
        const record = await store.mutate((data, tx) => {
          const rec = getSecret(data, name);
          if (rec.oauth) throw notRotatable(name, "rolled back");
          findVersion(rec, version);
          return tx.put("secrets", {
            ...rec,
            currentVersion: version,
            updatedAt: new Date().toISOString(),
          });
        });
        return { record, revision: record.modRevision };
      });
    },

    /** Creates, rotates and moves many secrets all or nothing (import.ts). */
    import(actor: Actor, items: readonly ImportItemInput[]) {
      return importSecrets(deps, actor, items);
    },
  };
}

export type SecretUseCases = ReturnType<typeof createSecretUseCases>;

// --- internal ---

/** An oauth credential's access tokens come from its provider, never from a person. */
function notRotatable(name: string, what: string) {
  return failedPrecondition(
    `secret '${name}' is an oauth credential: its access token is not ${what} by hand; refresh it with 'secretsctl oauth refresh ${name}'`,
    "name",
  );
}

/** An oauth credential's access tokens carry their own expiry, from the provider. */
function noExpiry(name: string) {
  return failedPrecondition(
    `expires_at: secret '${name}' is an oauth credential: each access token carries its own expiry from the provider`,
    "expires_at",
  );
}
