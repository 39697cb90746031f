/** Status, re-keying and the audit log. */
import type { AuditQuery } from "../audit/audit.js";
import { newMasterKey } from "../barrier/barrier.js";
import { commitMasterKey, stageMasterKey } from "../barrier/master-key.js";
import { invalidArgument } from "../errors.js";
import type { StoreView } from "../store/store.js";
import type { Actor, Deps } from "./context.js";
import { describeExpiry, expiryStates } from "./expiry.js";
import { audited } from "./shared.js";

export interface SystemDeps extends Deps {
  readonly dataDir: string;
  readonly startedAt: Date;
  /** What the store found and accepted when it was opened (torn tail, repairs). */
  readonly storeWarnings: readonly string[];
  /** How long before a value's expiry `status` lists it (SECRETSD_EXPIRY_WARNING_MS). */
  readonly expiryWarningMs: number;
}

export function createSystemUseCases(deps: SystemDeps) {
  const { store, barrier } = deps;
  let rekeying = false;

  return {
    status() {
      const data = store.data;
      return {
        startedAt: deps.startedAt,
        revision: data.revision,
        secretCount: Object.keys(data.secrets).length,
        vmCount: Object.keys(data.vms).length,
        groupCount: Object.keys(data.groups).length,
        dataDir: deps.dataDir,
        masterKeyId: barrier.masterKeyId,
        damagedSecrets: deps.damage.list(data),
        storeWarnings: deps.storeWarnings,
        oauthAttention: oauthAttention(data),
        expiringSecrets: expiringSecrets(data, deps.expiryWarningMs),
      };
    },

    /**
     * Replaces the master key: stage the new key file, commit the re-wrapped keyring, then
     * rename the key file into place. A crash anywhere in between is repaired at start-up by
     * matching key ids (barrier/master-key.ts). Values are never re-encrypted.
     */
    async rotateMasterKey(actor: Actor) {
      return audited(deps, actor, "change", "system.rekey", {}, async () => {
        if (rekeying) throw invalidArgument("request", "a re-key is already in progress");
        rekeying = true;
        const key = newMasterKey();
        try {
          await stageMasterKey(deps.dataDir, key);
          const keyring = barrier.rewrap(key);
          const revision = await store.mutate((_head, tx) => {
            tx.setKeyring(keyring);
            return tx.revision;
          });
          await commitMasterKey(deps.dataDir);
          barrier.useMasterKey(key, keyring);
          return { masterKeyId: keyring.masterKeyId, revision };
        } finally {
          key.fill(0);
          rekeying = false;
        }
      });
    },

    async audit(q: Partial<AuditQuery>) {
      const limit = q.limit || 100;
      if (limit > 10_000) throw invalidArgument("limit", "must be at most 10000");
      return deps.audit.query({ ...q, limit });
    },
  };
}

export type SystemUseCases = ReturnType<typeof createSystemUseCases>;

// --- internal ---

/** OAuth credentials that cannot refresh, or keep failing to, each said plainly. */
function oauthAttention(data: StoreView): string[] {
  const out: string[] = [];
  for (const s of Object.values(data.secrets)) {
    const o = s.oauth;
    if (!o || o.state === "ok") continue;
    const why = o.lastError ? `: ${o.lastError}` : o.refreshToken ? "" : ": never logged in";
    out.push(`${s.name}: ${o.state === "needs_login" ? "needs login" : "refresh failing"}${why}`);
  }
  return out.sort();
}

/** Secrets expiring within the warning window or expired, soonest first, said plainly. */
function expiringSecrets(data: StoreView, warnMs: number): string[] {
  const now = Date.now();
  return expiryStates(data, now, warnMs)
    .filter((s) => s.state !== "valid")
    .map((s) => `${s.secret}: ${describeExpiry(s, now)}`);
}
