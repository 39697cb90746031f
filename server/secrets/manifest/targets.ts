/**
 * Where each manifest entry's value lives: which secret, at which scope, for which VMs. One
 * value for the binding (user_prompt, remote_fetch), one per VM (per_install_generated), or
 * one on the host (infrastructure). And where each VM stands: configured, missing or
 * malformed, read from the records alone (never a value: `malformed` is recorded on the
 * version when it is stored).
 */
import { invalidArgument } from "../../errors.js";
import type { StoreView } from "../../store/store.js";
import type { ManifestRecord, SecretRecord } from "../../store/types.js";
import type { ManifestEntry } from "./schema.js";

/** One place a value goes. */
export interface Target {
  entry: ManifestEntry;
  /** The secret's name: MANIFEST.ID, or MANIFEST.ID.VM for a per-VM value. */
  secret: string;
  /** "vm:NAME", "group:NAME" or "host". */
  scope: string;
  /** The VM a per-VM value is for. */
  vm?: string;
}

export type EntryState = "configured" | "missing" | "malformed";

/** The VMs a binding ("vm:NAME" / "group:NAME") reaches now. */
export function vmsOf(data: StoreView, bind: string): string[] {
  if (bind.startsWith("vm:")) {
    const vm = bind.slice(3);
    return data.vms[vm] ? [vm] : [];
  }
  const g = bind.slice(6);
  return Object.values(data.vms)
    .filter((v) => v.groups.includes(g))
    .map((v) => v.name)
    .sort();
}

/** Every target of `entries` bound to `bind`, for the VMs `vms`. */
export function targetsOf(
  name: string,
  entries: readonly ManifestEntry[],
  bind: string,
  vms: readonly string[],
): Target[] {
  const out: Target[] = [];
  entries.forEach((entry, i) => {
    const base = `${name}.${entry.id}`;
    if (entry.class === "infrastructure") {
      out.push({ entry, secret: base, scope: "host" });
    } else if (entry.class === "per_install_generated") {
      for (const vm of vms) {
        const secret = `${base}.${vm}`;
        if (secret.length > 63) {
          throw invalidArgument(
            `entries[${i}].id`,
            `the per-VM secret '${secret.slice(0, 40)}…' would be longer than 63 characters: shorten the manifest name or the id`,
          );
        }
        out.push({ entry, secret, scope: `vm:${vm}`, vm });
      }
    } else {
      out.push({ entry, secret: base, scope: bind });
    }
  });
  return out;
}

/** Where one target stands in `data`. */
export function stateOf(data: StoreView, t: Target): { state: EntryState; rec?: SecretRecord } {
  const rec = data.secrets[t.secret];
  if (!rec || rec.currentVersion === 0) return { state: "missing" };
  const v = rec.versions.find((x) => x.version === rec.currentVersion);
  if (!v) return { state: "missing", rec };
  return { state: v.malformed ? "malformed" : "configured", rec };
}

/** The entries of a recorded manifest (validated when it was applied). */
export function entriesOf(m: ManifestRecord): ManifestEntry[] {
  return m.entries as unknown as ManifestEntry[];
}

/**
 * Required entries `vm` has no good value for, as "MANIFEST/ID", over every manifest bound
 * to it or to one of its groups. Host-only entries never count: a VM cannot hold them.
 */
export function missingRequired(data: StoreView, vm: string): string[] {
  return missingEntries(data, vm).map((m) => m.id);
}

/** The same, with each entry's env var: "MANIFEST/ID" and its env var, sorted by id. */
export function missingEntries(data: StoreView, vm: string): { id: string; env: string }[] {
  const rec = data.vms[vm];
  const manifests = data.manifests;
  if (!rec || !manifests || Object.keys(manifests).length === 0) return [];
  const out: { id: string; env: string }[] = [];
  for (const m of Object.values(manifests)) {
    const bound =
      m.bind === `vm:${vm}` ||
      (m.bind.startsWith("group:") && rec.groups.includes(m.bind.slice(6)));
    if (!bound) continue;
    const entries = entriesOf(m).filter((e) => e.required && e.class !== "infrastructure");
    for (const e of entries) {
      let targets: Target[];
      try {
        targets = targetsOf(m.name, [e], m.bind, [vm]);
      } catch {
        targets = []; // a VM whose per-VM secret name cannot be made: it has none
      }
      const ok =
        targets.length > 0 && targets.every((t) => stateOf(data, t).state === "configured");
      if (!ok) out.push({ id: `${m.name}/${e.id}`, env: e.env ?? "" });
    }
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
