/**
 * A VM's env view, and the one way it is decrypted, for GetEnv and WatchEnv alike.
 *
 * The view is global ∪ the VM's groups ∪ its own secrets, one value per env var, the most
 * specific scope winning (vm > group > global). Two of a VM's groups giving the same env var
 * are settled by group name (alphabetical first), so the answer never depends on timing.
 *
 * A view is first planned (names, versions, associated data, parsed ciphertexts: never a
 * value), then opened. Whatever cannot be opened is answered the same way on every path:
 * FAILED_PRECONDITION naming the secret and version (damage.ts), never an INTERNAL.
 */
import { createHash } from "node:crypto";
import type { ParsedBlob } from "../barrier/barrier.js";
import { failedPrecondition, type SecretsError } from "../errors.js";
import type { StoreView } from "../store/store.js";
import type { SecretRecord, SecretVersionRecord } from "../store/types.js";
import type { Deps } from "./context.js";
import { secretAad } from "./context.js";
import { missingEntries } from "./manifest/targets.js";

/** One env var of a view, before decryption. */
export interface ViewEntry {
  env: string;
  secret: SecretRecord;
  /**
   * "expires": the var carries the expiry of an oauth credential's access token (its
   * `expiresEnv`), not a sealed value.
   */
  field?: "expires";
}

/** One decrypted env var; the value as UTF-8 bytes, never made into a JS string here. */
export interface EnvVarValue {
  name: string;
  value: Uint8Array;
  secret: string;
  version: number;
  scope: string;
}

/** A VM's decrypted view at a revision. */
export interface EnvSnapshotValue {
  vm: string;
  revision: number;
  vars: EnvVarValue[];
  /** Required manifest entries the VM has no good value for, as "MANIFEST/ID ENV" (issue #11). */
  missing: string[];
}

/** What opening a view needs of each variable, computed once per view and revision. */
export interface ViewPlan {
  vars: PlannedVar[];
  /** `secret@version,…`: what an audit line records of the view. */
  detail: string;
}

export interface PlannedVar {
  name: string;
  secret: string;
  version: number;
  scope: string;
  aad: string;
  /** The sealed value; undefined for a var that carries public metadata (`plain`). */
  blob: ParsedBlob | undefined;
  /** An oauth access token's expiry (ISO 8601, UTF-8): not secret, never sealed. */
  plain?: Buffer;
  record: SecretVersionRecord;
}

/**
 * Required manifest entries `vm` has no good value for, as "MANIFEST/ID ENV": delivered with
 * its view so that the shim can say what is missing (their vars are simply absent).
 */
export function missingOf(data: StoreView, vm: string): string[] {
  if (Object.keys(data.manifests).length === 0) return [];
  return missingEntries(data, vm).map((m) => `${m.id} ${m.env}`);
}

/** The view of `vm` in `data`, sorted by env var name; empty for an unknown VM. */
export function computeView(data: StoreView, vm: string): ViewEntry[] {
  const rec = data.vms[vm];
  if (!rec) return [];
  const groups = new Set(rec.groups);
  const best = new Map<string, { rank: string; secret: SecretRecord; field?: "expires" }>();
  const offer = (env: string, rank: string, secret: SecretRecord, field?: "expires") => {
    const cur = best.get(env);
    if (!cur || rank < cur.rank) best.set(env, field ? { rank, secret, field } : { rank, secret });
  };
  for (const s of Object.values(data.secrets)) {
    const rank = rankOf(s.scope, vm, groups);
    if (rank === undefined) continue;
    if (s.oauth) {
      // An oauth credential without an access token (before login, after logout) gives
      // nothing; its expiry var only comes with a token whose expiry the provider said.
      if (s.currentVersion === 0) continue;
      if (s.oauth.expiresEnv && currentExpiry(s) !== undefined) {
        offer(s.oauth.expiresEnv, rank, s, "expires");
      }
    }
    offer(s.env, rank, s);
  }
  return [...best.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([env, { secret, field }]) => (field ? { env, secret, field } : { env, secret }));
}

/** Plans `view`: throws FAILED_PRECONDITION naming a secret known to be damaged. */
export function planView(deps: Pick<Deps, "barrier" | "damage">, view: ViewEntry[]): ViewPlan {
  const vars = view.map(({ env, secret, field }): PlannedVar => {
    const v = currentVersion(secret);
    const aad = secretAad(secret.name, v.version);
    if (field === "expires") {
      const plain = Buffer.from(v.expiresAt ?? "", "utf8");
      const meta = { name: env, secret: secret.name, version: v.version, scope: secret.scope };
      return { ...meta, aad, blob: undefined, plain, record: v };
    }
    if (deps.damage.has(secret.name, v)) throw deps.damage.error(secret.name, v.version);
    let blob: ParsedBlob;
    try {
      blob = deps.barrier.parse(v.ciphertext);
    } catch {
      throw deps.damage.found(secret.name, v);
    }
    return {
      name: env,
      secret: secret.name,
      version: v.version,
      scope: secret.scope,
      aad,
      blob,
      record: v,
    };
  });
  return { vars, detail: vars.map((v) => `${v.secret}@${v.version}`).join(",") };
}

/**
 * Decrypts a planned view. A ciphertext that fails to open is recorded as damaged (and named
 * from then on) and fails the whole view with FAILED_PRECONDITION naming it.
 */
export function openPlan(deps: Pick<Deps, "barrier" | "damage">, plan: ViewPlan): EnvVarValue[] {
  return plan.vars.map((p) => {
    let value: Buffer;
    if (p.blob === undefined) {
      return {
        name: p.name,
        value: p.plain ?? EMPTY,
        secret: p.secret,
        version: p.version,
        scope: p.scope,
      };
    }
    try {
      value = deps.barrier.openParsed(p.aad, p.blob);
    } catch {
      throw deps.damage.found(p.secret, p.record);
    }
    return { name: p.name, value, secret: p.secret, version: p.version, scope: p.scope };
  });
}

/**
 * What a shim's applied view is compared with on reconnect. It covers each value's ciphertext
 * header and nonce (random per seal), not only names and versions: a version number that a
 * crash let the store hand out again, or a store restored from a backup, can never match a
 * value the shim already holds (issue #8). The nonce is public (it is stored beside the
 * ciphertext) and says nothing about the value.
 */
export function digestOf(view: ViewEntry[], missing: readonly string[] = []): string {
  const h = createHash("sha256");
  // What is missing is part of what the shim applied (it logs and reports it).
  for (const m of missing) h.update(`!${m}\n`);
  for (const { env, secret, field } of view) {
    // Never throws: a record missing its current version (damage) still has a digest, and
    // fails only when the view is opened (the fan-out computes digests for every VM).
    const v = secret.versions.find((x) => x.version === secret.currentVersion);
    const nonce = v ? v.ciphertext.slice(0, 40) : "missing";
    h.update(
      `${env}\0${secret.name}${field ? `#${field}` : ""}\0${secret.currentVersion}\0${nonce}\n`,
    );
  }
  return h.digest("base64url").slice(0, 22);
}

// --- internal ---

const EMPTY = Buffer.alloc(0);

/** The expiry of an oauth credential's current access token, if the provider said one. */
function currentExpiry(secret: SecretRecord): string | undefined {
  return secret.versions.find((x) => x.version === secret.currentVersion)?.expiresAt;
}

/**
 * The current version record of `secret`. A record whose current version is missing is
 * damage: FAILED_PRECONDITION naming it, as for a ciphertext that does not open.
 */
function currentVersion(secret: SecretRecord): SecretVersionRecord {
  const v = secret.versions.find((x) => x.version === secret.currentVersion);
  if (!v) throw missingVersion(secret);
  return v;
}

function missingVersion(secret: SecretRecord): SecretsError {
  return failedPrecondition(
    `secret '${secret.name}' has no version ${secret.currentVersion}, its current one: the store is damaged; roll it back or rotate it`,
    "secret",
  );
}

/** Lower sorts first: "0" vm, "1<group>" group, "2" global. */
function rankOf(scope: string, vm: string, groups: Set<string>): string | undefined {
  if (scope === "global") return "2";
  if (scope.startsWith("group:")) {
    const g = scope.slice(6);
    return groups.has(g) ? `1${g}` : undefined;
  }
  if (scope === `vm:${vm}`) return "0";
  return undefined;
}
