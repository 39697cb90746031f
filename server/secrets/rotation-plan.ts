/**
 * `secretsctl rotate --plan NAME` (issue #11): before anything changes, which VMs would see a
 * new value of a secret, and which of their units would restart or reload. Reads metadata
 * only: no value is opened, nothing is written or audited (like `list`).
 *
 * A VM is listed when its current view takes an env var from this secret (computeView: a VM
 * where a more specific scope gives the same env var does not see the change). Its units are
 * those of the unit map its shim last acknowledged (presence.ts) whose keys include one of
 * those env vars, or that read every key: the rule the shim's exec applies (shim/exec.ts
 * selectUnits). Unit maps live in memory, so after a restart of secretsd a VM's is unknown
 * until its shim acks again.
 */
import type { StoreView } from "../store/store.js";
import type { Deps } from "./context.js";
import type { Presence, UnitKeys } from "./presence.js";
import { getSecret } from "./records.js";
import { checkSecretName } from "./validate.js";
import { computeView } from "./view.js";

/** One VM that would see the change. */
export interface RotationTarget {
  vm: string;
  /** The env var(s) it takes from the secret, comma-separated. */
  env: string;
  connected: boolean;
  /** "NAME (restart)" or "NAME (reload)", sorted; empty when the unit map is unknown. */
  units: string[];
  unitMapKnown: boolean;
}

export interface RotationPlan {
  secret: string;
  /** The store revision the plan was made at. */
  revision: number;
  /** Sorted by VM name. */
  targets: RotationTarget[];
}

/**
 * The plan for `nameIn` over `data`. Pure but for reading presence.
 * @throws INVALID_ARGUMENT for a bad name, NOT_FOUND for an unknown secret (both naming `name`)
 */
export function planRotation(
  data: StoreView,
  presence: Pick<Presence, "of">,
  nameIn: string,
): RotationPlan {
  const name = checkSecretName("name", nameIn);
  const secret = getSecret(data, name);
  const targets: RotationTarget[] = [];
  for (const vm of candidateVms(data, secret.scope)) {
    const envs = computeView(data, vm)
      .filter((e) => e.secret.name === name)
      .map((e) => e.env);
    if (envs.length === 0) continue;
    const p = presence.of(vm);
    targets.push({
      vm,
      env: envs.join(","),
      connected: p.connected,
      units: p.units ? unitsActing(p.units, envs) : [],
      unitMapKnown: p.units !== undefined,
    });
  }
  targets.sort((a, b) => (a.vm < b.vm ? -1 : a.vm > b.vm ? 1 : 0));
  return { secret: name, revision: data.revision, targets };
}

/**
 * The units of `units` a change of any of `envs` makes act, as "NAME (ACTION)", sorted: those
 * whose keys include one of them, or that have no key list (every key).
 */
export function unitsActing(units: readonly UnitKeys[], envs: readonly string[]): string[] {
  return units
    .filter((u) => u.keys.length === 0 || u.keys.some((k) => envs.includes(k)))
    .map((u) => `${u.name} (${u.action})`)
    .sort();
}

/** Plans over the live store and the hub's presence (the transport's view of the use case). */
export function createRotationPlanner(deps: Pick<Deps, "store">, presence: Pick<Presence, "of">) {
  return {
    /** @see planRotation */
    plan: (name: string) => planRotation(deps.store.data, presence, name),
  };
}

export type RotationPlanner = ReturnType<typeof createRotationPlanner>;

// --- internal ---

/** The VMs a secret at `scope` can reach at all; computeView decides who actually sees it. */
function candidateVms(data: StoreView, scope: string): string[] {
  if (scope === "global") return Object.keys(data.vms);
  if (scope.startsWith("group:")) {
    const g = scope.slice(6);
    return Object.values(data.vms)
      .filter((v) => v.groups.includes(g))
      .map((v) => v.name);
  }
  if (scope.startsWith("vm:")) {
    const vm = scope.slice(3);
    return data.vms[vm] ? [vm] : [];
  }
  return []; // "host": infrastructure never enters a view
}
