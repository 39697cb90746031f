/**
 * Damaged ciphertexts: found at start (every stored version is opened once), or the first time
 * one fails to decrypt, and named from then on. A damaged secret never takes the daemon down:
 * the views and reads that need it fail with FAILED_PRECONDITION naming it (secret and version,
 * never a value), the rest keep working, and `status` and `vm list` name it. Rotating the
 * secret, or rolling it back to an intact version, heals it; `secretsd --repair` drops the
 * damaged versions at start and says so.
 */
import type { Barrier } from "../barrier/barrier.js";
import { failedPrecondition, type SecretsError } from "../errors.js";
import type { Store, StoreView } from "../store/store.js";
import type { SecretVersionRecord } from "../store/types.js";
import { secretAad } from "./context.js";

/** One version whose stored ciphertext does not open. */
export interface DamagedVersion {
  secret: string;
  version: number;
}

export interface DamageRegistry {
  /**
   * Opens every version of every secret in `data` and records those that fail. Returns them,
   * and how long the check took.
   */
  verifyAll(data: StoreView): { damaged: DamagedVersion[]; checked: number; ms: number };
  /** True when this stored version of `secret` is known to be damaged. */
  has(secret: string, v: SecretVersionRecord): boolean;
  /** Records a version found damaged at run time; returns the error to answer with. */
  found(secret: string, v: SecretVersionRecord): SecretsError;
  /** The FAILED_PRECONDITION error for a damaged version. */
  error(secret: string, version: number): SecretsError;
  /** Names of the secrets whose current version in `data` is damaged, sorted. */
  currentNames(data: StoreView): string[];
  /** `name@version` of every damaged version still in `data`, sorted. */
  list(data: StoreView): string[];
}

export function createDamageRegistry(barrier: Barrier): DamageRegistry {
  // Keyed by secret, version and the blob's header and nonce (unique per seal): a secret
  // removed and created again at version 1, or rotated, never matches an old entry.
  const damaged = new Map<string, DamagedVersion>();
  const key = (secret: string, v: SecretVersionRecord) =>
    `${secret}\0${v.version}\0${v.ciphertext.slice(0, 40)}`;
  const record = (secret: string, v: SecretVersionRecord) => {
    damaged.set(key(secret, v), { secret, version: v.version });
  };
  /** The damaged entries still present in `data`, with their records' current versions. */
  const present = function* (data: StoreView) {
    for (const rec of Object.values(data.secrets)) {
      for (const v of rec.versions) {
        const d = damaged.get(key(rec.name, v));
        if (d) yield { d, current: rec.currentVersion === v.version };
      }
    }
  };

  const reg: DamageRegistry = {
    verifyAll(data) {
      const t0 = performance.now();
      let checked = 0;
      const out: DamagedVersion[] = [];
      for (const rec of Object.values(data.secrets)) {
        for (const v of rec.versions) {
          checked++;
          try {
            barrier.openBytes(secretAad(rec.name, v.version), v.ciphertext).fill(0);
          } catch {
            record(rec.name, v);
            out.push({ secret: rec.name, version: v.version });
          }
        }
      }
      return { damaged: out, checked, ms: performance.now() - t0 };
    },
    has(secret, v) {
      return damaged.size > 0 && damaged.has(key(secret, v));
    },
    found(secret, v) {
      record(secret, v);
      return reg.error(secret, v.version);
    },
    error(secret, version) {
      return failedPrecondition(
        `secret '${secret}' version ${version} is damaged: its stored ciphertext does not decrypt; rotate it, roll it back to an intact version, or start secretsd with --repair to drop it`,
        "secret",
      );
    },
    currentNames(data) {
      if (damaged.size === 0) return [];
      const names = new Set<string>();
      for (const { d, current } of present(data)) if (current) names.add(d.secret);
      return [...names].sort();
    },
    list(data) {
      if (damaged.size === 0) return [];
      return [...present(data)].map(({ d }) => `${d.secret}@${d.version}`).sort();
    },
  };
  return reg;
}

/** What `dropDamaged` did to one secret. */
export interface DroppedVersions {
  secret: string;
  versions: number[];
  /**
   * The version now current, or undefined when the secret was removed (none was intact); 0
   * for an oauth credential left without an access token (it keeps its refresh token).
   */
  current: number | undefined;
}

/**
 * `secretsd --repair`: drops every damaged version named in `damaged`. A secret whose current
 * version is dropped falls back to its newest intact version; one with no intact version left
 * is removed. Returns what was dropped, for the log; commits once, durably.
 */
export async function dropDamaged(
  store: Store,
  damaged: readonly DamagedVersion[],
): Promise<DroppedVersions[]> {
  if (damaged.length === 0) return [];
  const bySecret = new Map<string, Set<number>>();
  for (const d of damaged) {
    const set = bySecret.get(d.secret) ?? new Set<number>();
    set.add(d.version);
    bySecret.set(d.secret, set);
  }
  return store.mutate((head, tx) => {
    const out: DroppedVersions[] = [];
    for (const [name, bad] of bySecret) {
      const rec = head.secrets[name];
      if (!rec) continue;
      const kept = rec.versions.filter((v) => !bad.has(v.version));
      const versions = [...bad].sort((a, b) => a - b);
      if (kept.length === 0 && rec.oauth) {
        // An oauth credential keeps its refresh token: it holds no access token until the
        // next refresh, which the scheduler runs at once.
        tx.put("secrets", {
          ...rec,
          versions: [],
          currentVersion: 0,
          updatedAt: new Date().toISOString(),
        });
        out.push({ secret: name, versions, current: 0 });
        continue;
      }
      if (kept.length === 0) {
        tx.delete("secrets", name);
        out.push({ secret: name, versions, current: undefined });
        continue;
      }
      const current = bad.has(rec.currentVersion)
        ? Math.max(...kept.map((v) => v.version))
        : rec.currentVersion;
      tx.put("secrets", {
        ...rec,
        versions: kept,
        currentVersion: current,
        updatedAt: new Date().toISOString(),
      });
      out.push({ secret: name, versions, current });
    }
    return out;
  });
}
