/**
 * GetEnv: a VM's env, decrypted through the one view path (view.ts) and audited as a read of
 * each secret. Which VM a caller may name is decided here, in one place, for every env RPC
 * (GetEnv, WatchEnv, AckEnv).
 */
import { invalidArgument, notFound, permissionDenied } from "../errors.js";
import type { StoreView } from "../store/store.js";
import type { Caller } from "./caller.js";
import type { Actor, Deps } from "./context.js";
import { audited } from "./shared.js";
import { checkNodeName } from "./validate.js";
import type { EnvSnapshotValue, ViewPlan } from "./view.js";
import { computeView, missingOf, openPlan, planView } from "./view.js";

export type { EnvSnapshotValue, EnvVarValue, ViewEntry } from "./view.js";

/** A VM's decrypted env, with what it was made from. */
export interface EnvSnapshot extends EnvSnapshotValue {
  /** `secret@version,…`, for the audit line. */
  detail: string;
  /**
   * The plan the values were opened from: the same object for every call at one revision,
   * and dropped with its VM, so a caller may key its own per-view caches on it (WeakMap).
   */
  plan: object;
}

/**
 * The VM `vmIn` names for this caller, and that it exists: a VM token reads its own VM only
 * (`vm` may be empty or its own name); anyone else must name one.
 */
export function vmOf(data: StoreView, caller: Caller, vmIn: string): string {
  let vm: string;
  if (caller.kind === "vm") {
    if (vmIn !== "" && vmIn !== caller.vm) {
      throw permissionDenied(`vm: this token belongs to vm '${caller.vm}', not '${vmIn}'`, "vm");
    }
    vm = caller.vm;
  } else {
    if (vmIn === "") throw invalidArgument("vm", "is required");
    vm = checkNodeName("vm", "vm", vmIn);
  }
  if (!data.vms[vm]) throw notFound("vm", vm, "vm");
  return vm;
}

export function createEnvUseCases(deps: Deps) {
  const { store } = deps;

  // What GetEnv needs of a VM's view, by VM, valid for one store revision: names, versions,
  // the associated data and the parsed ciphertext; never a plaintext value. Every call still
  // authenticates and decrypts; this only spares re-deriving the same plan per call.
  const plans = new Map<string, { revision: number; plan: ViewPlan }>();
  store.onCommit((_revision, changes) => {
    for (const c of changes) {
      if (c.kind === "vm" && !store.data.vms[c.vm]) plans.delete(c.vm);
    }
  });
  const planOf = (data: StoreView, vm: string): ViewPlan => {
    const hit = plans.get(vm);
    if (hit?.revision === data.revision) return hit.plan;
    const plan = planView(deps, computeView(data, vm));
    plans.set(vm, { revision: data.revision, plan });
    return plan;
  };

  /** Decrypts the view of `vm` (which exists) at the store's committed revision. */
  function snapshot(vm: string): EnvSnapshot {
    const data = store.data;
    const plan = planOf(data, vm);
    const vars = openPlan(deps, plan);
    return {
      vm,
      revision: data.revision,
      vars,
      missing: missingOf(data, vm),
      detail: plan.detail,
      plan,
    };
  }

  return {
    /** GetEnv: the caller's (or the named) VM's env, audited as a read of each secret. */
    async getEnv(actor: Actor, vmIn: string) {
      return audited(deps, actor, "read", "env.get", vmIn ? { vm: vmIn } : {}, async (note) => {
        const vm = vmOf(store.data, actor.caller, vmIn);
        note({ vm });
        const snap = snapshot(vm);
        note({ revision: snap.revision, detail: snap.detail });
        return snap;
      });
    },
    /** How many VMs have a cached plan (tests: a deleted VM's is dropped). */
    cachedPlans: () => plans.size,
  };
}

export type EnvUseCases = ReturnType<typeof createEnvUseCases>;
