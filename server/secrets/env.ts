/**
 * A VM's env view: global ∪ its groups ∪ its own secrets, one value per env var, the most
 * specific scope winning (vm > group > global). Two of a VM's groups giving the same env var
 * is settled by group name (alphabetical first), so the answer never depends on timing.
 */

import type { ParsedBlob } from "../barrier/barrier.js";
import { invalidArgument, notFound, permissionDenied } from "../errors.js";
import type { StoreView } from "../store/store.js";
import type { SecretRecord, SecretVersionRecord } from "../store/types.js";
import type { Caller } from "./caller.js";
import type { Actor, Deps } from "./context.js";
import { secretAad } from "./context.js";
import { audited } from "./shared.js";
import { checkNodeName } from "./validate.js";

/** One env var of a view, before decryption. */
export interface ViewEntry {
  env: string;
  secret: SecretRecord;
}

/** One decrypted env var; the value as UTF-8 bytes, never made into a JS string here. */
export interface EnvVarValue {
  name: string;
  value: Uint8Array;
  secret: string;
  version: number;
  scope: string;
}

export interface EnvSnapshotValue {
  vm: string;
  revision: number;
  vars: EnvVarValue[];
}

/** The view of `vm` in `data`, sorted by env var name. */
export function computeView(data: StoreView, vm: string): ViewEntry[] {
  const rec = data.vms[vm];
  if (!rec) return [];
  const groups = new Set(rec.groups);
  const best = new Map<string, { rank: string; secret: SecretRecord }>();
  for (const s of Object.values(data.secrets)) {
    const rank = rankOf(s.scope, vm, groups);
    if (rank === undefined) continue;
    const cur = best.get(s.env);
    if (!cur || rank < cur.rank) best.set(s.env, { rank, secret: s });
  }
  return [...best.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([env, { secret }]) => ({ env, secret }));
}

/** Which VM a caller may read: its own only, for a VM token. */
export function resolveVm(caller: Caller, vmIn: string): string {
  if (caller.kind === "vm") {
    if (vmIn !== "" && vmIn !== caller.vm) {
      throw permissionDenied(`vm: this token belongs to vm '${caller.vm}', not '${vmIn}'`, "vm");
    }
    return caller.vm;
  }
  if (vmIn === "") throw invalidArgument("vm", "is required");
  return checkNodeName("vm", "vm", vmIn);
}

export function createEnvService(deps: Deps) {
  const { store, barrier } = deps;

  // What GetEnv needs of a VM's view, by VM, valid for one store revision: names, versions,
  // the associated data and the parsed ciphertext; never a plaintext value. Every call still
  // authenticates and decrypts; this only spares re-deriving the same plan per call.
  const plans = new Map<string, { revision: number; plan: Plan }>();
  const planOf = (data: StoreView, vm: string): Plan => {
    const hit = plans.get(vm);
    if (hit?.revision === data.revision) return hit.plan;
    const vars = computeView(data, vm).map(({ env, secret }) => {
      const v = secret.versions.find((x) => x.version === secret.currentVersion);
      if (!v) throw notFound("version", `${secret.name}@${secret.currentVersion}`);
      if (deps.damage.has(secret.name, v)) throw deps.damage.error(secret.name, v.version);
      return {
        name: env,
        secret: secret.name,
        version: v.version,
        scope: secret.scope,
        aad: secretAad(secret.name, v.version),
        blob: barrier.parse(v.ciphertext),
        record: v,
      };
    });
    const plan = { vars, detail: vars.map((v) => `${v.secret}@${v.version}`).join(",") };
    plans.set(vm, { revision: data.revision, plan });
    return plan;
  };

  /** One value; a ciphertext that fails to open is damaged: named, and never opened again. */
  const open = (p: Plan["vars"][number]): Buffer => {
    try {
      return barrier.openParsed(p.aad, p.blob);
    } catch {
      plans.clear();
      throw deps.damage.found(p.secret, p.record);
    }
  };

  /** Decrypts the view of `vm` at the store's current revision. */
  function snapshot(vm: string): EnvSnapshotValue & { detail: string } {
    const data = store.data;
    if (!data.vms[vm]) {
      plans.delete(vm);
      throw notFound("vm", vm, "vm");
    }
    const plan = planOf(data, vm);
    const vars = plan.vars.map((p) => ({
      name: p.name,
      value: open(p),
      secret: p.secret,
      version: p.version,
      scope: p.scope,
    }));
    return { vm, revision: data.revision, vars, detail: plan.detail };
  }

  return {
    snapshot,
    /** GetEnv: the caller's (or the named) VM's env, audited as a read of each secret. */
    async getEnv(actor: Actor, vmIn: string) {
      return audited(deps, actor, "env.get", vmIn ? { vm: vmIn } : {}, async (note) => {
        const vm = resolveVm(actor.caller, vmIn);
        note({ vm });
        const snap = snapshot(vm);
        note({ revision: snap.revision, detail: snap.detail });
        return snap;
      });
    },
  };
}

export type EnvService = ReturnType<typeof createEnvService>;

interface Plan {
  vars: {
    name: string;
    secret: string;
    version: number;
    scope: string;
    aad: string;
    blob: ParsedBlob;
    record: SecretVersionRecord;
  }[];
  detail: string;
}

// --- internal ---

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
