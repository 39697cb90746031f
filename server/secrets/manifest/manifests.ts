/**
 * Manifest use cases (issue #11): plan, apply, list, show, remove, status, and providing a
 * value a person must give. Apply generates (OS CSPRNG) and fetches what is missing before
 * one durable commit that records the manifest and stores every new value sealed like any
 * secret; an existing value is never replaced unless its entry is named in `regenerate`.
 */
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from "../../errors.js";
import type { StoreView, Tx } from "../../store/store.js";
import type { ManifestRecord, SecretRecord, SecretVersionRecord } from "../../store/types.js";
import type { Actor, Deps } from "../context.js";
import { checkEnvFree, nextVersion, pruneVersions, sealVersion } from "../records.js";
import { audited } from "../shared.js";
import { checkNodeName, checkSecretName, checkValue } from "../validate.js";
import { computeView } from "../view.js";
import { fetchValue } from "./fetch.js";
import { matchesFormat } from "./format.js";
import { generateValue } from "./generate.js";
import type { ManifestEntry } from "./schema.js";
import type { Target } from "./targets.js";
import {
  entriesOf,
  missingEntries,
  missingRequired,
  stateOf,
  targetsOf,
  vmsOf,
} from "./targets.js";
import { parseManifest } from "./validate.js";

export type EntryAction = "keep" | "generate" | "regenerate" | "fetch" | "provide";

/** One entry for one target, as planned or applied. */
export interface PlannedEntry {
  target: Target;
  action: EntryAction;
  state: "configured" | "missing" | "malformed";
  error?: string;
}

export interface ManifestPlan {
  name: string;
  bind: string;
  entries: PlannedEntry[];
  vms: { vm: string; env: string[]; missing: string[] }[];
}

/** secretsd acting on its own: values made for a VM that joined a bound group. */
const SYSTEM: Actor = { caller: { kind: "system", name: "manifest" }, requestId: "-" };

export function createManifestUseCases(deps: Deps) {
  const { store } = deps;
  // A VM created in, or added to, a group a manifest is bound to gets its own generated
  // values at once ("each VM gets its own value"), not at the next apply.
  const unsubscribe = store.onCommit((_rev, changes) => {
    for (const c of changes) {
      if (c.kind === "vm") {
        fillGenerated(c.vm).catch((err: unknown) =>
          deps.log.error("generating a VM's manifest values failed", { vm: c.vm, err }),
        );
      }
    }
  });

  /** Generates the per-VM values `vm` lacks, over every manifest bound to it. */
  async function fillGenerated(vm: string) {
    const todo = generatedMissing(store.data, vm);
    if (todo.length === 0) return;
    const made = await store.mutate((head, tx) => {
      const now = new Date().toISOString();
      const out: string[] = [];
      for (const { manifest, target } of todo) {
        if (head.secrets[target.secret] || !head.vms[vm]) continue;
        const { generator } = target.entry;
        if (!generator) continue;
        const value = generateValue(generator);
        putEntrySecret(head, tx, manifest, target, { value, source: "generated" }, SYSTEM, now);
        out.push(target.secret);
      }
      return out;
    });
    for (const secret of made) {
      await deps.audit
        .record("change", {
          requestId: "-",
          actor: "system:manifest",
          action: "manifest.generate",
          secret,
          vm,
          result: "ok",
        })
        .catch(() => {});
    }
  }

  /** The plan of `text` bound to `bindIn`, against the committed store; changes nothing. */
  function plan(text: string, bindIn: { vm?: string; group?: string }, regenerate: string[]) {
    const m = parseManifest(text);
    const bind = checkBind(store.data, bindIn);
    const ids = new Set(m.entries.map((e) => e.id));
    for (const r of regenerate) {
      const e = m.entries.find((x) => x.id === r);
      if (!ids.has(r))
        throw invalidArgument("regenerate", `no entry '${r}' in manifest '${m.name}'`);
      if (!e?.generator) throw invalidArgument("regenerate", `entry '${r}' has no generator`);
    }
    const other = store.data.manifests[m.name];
    if (other && other.bind !== bind) {
      throw alreadyExists("manifest", `manifest '${m.name}' is already bound to ${other.bind}`);
    }
    const data = store.data;
    const vms = vmsOf(data, bind);
    const targets = targetsOf(m.name, m.entries, bind, vms);
    checkConflicts(data, m.name, m.entries, targets);
    const entries = targets.map((t): PlannedEntry => {
      const { state } = stateOf(data, t);
      const e = t.entry;
      let action: EntryAction = "keep";
      if (e.generator && regenerate.includes(e.id)) action = "regenerate";
      else if (state === "missing")
        action = e.generator ? "generate" : e.fetch ? "fetch" : "provide";
      return { target: t, action, state };
    });
    const will = (p: PlannedEntry) => p.action !== "provide" || p.state !== "missing";
    const planVms = vms.map((vm) => {
      const names = new Set(computeView(data, vm).map((v) => v.env));
      const missing: string[] = [];
      for (const p of entries) {
        const t = p.target;
        if (t.scope === "host" || (t.vm !== undefined && t.vm !== vm)) continue;
        if (will(p) && t.entry.env) names.add(t.entry.env);
        else if (t.entry.required) missing.push(t.entry.id);
      }
      return { vm, env: [...names].sort(), missing };
    });
    return { manifest: m, plan: { name: m.name, bind, entries, vms: planVms } };
  }

  return {
    plan(text: string, bind: { vm?: string; group?: string }, regenerate: string[]): ManifestPlan {
      return plan(text, bind, regenerate).plan;
    },

    async apply(
      actor: Actor,
      text: string,
      bindIn: { vm?: string; group?: string },
      regenerate: string[],
    ) {
      return audited(deps, actor, "change", "manifest.apply", {}, async (note) => {
        const { manifest: m, plan: p } = plan(text, bindIn, regenerate);
        note({ detail: `${m.name} → ${p.bind}` });
        // Values are made before the commit: generation is instant, fetches may take seconds.
        const values = new Map<string, { value: string; source: "generated" | "fetched" }>();
        for (const pe of p.entries) {
          const e = pe.target.entry;
          if ((pe.action === "generate" || pe.action === "regenerate") && e.generator) {
            values.set(pe.target.secret, {
              value: generateValue(e.generator),
              source: "generated",
            });
          } else if (pe.action === "fetch" && e.fetch) {
            try {
              values.set(pe.target.secret, { value: await fetchValue(e.fetch), source: "fetched" });
            } catch (err) {
              pe.error = (err as Error).message;
            }
          }
        }
        const revision = await store.mutate((head, tx) => {
          const now = new Date().toISOString();
          const prior = head.manifests[m.name];
          tx.put("manifests", {
            name: m.name,
            description: m.description,
            bind: p.bind,
            entries: m.entries as unknown as Record<string, unknown>[],
            createdAt: prior?.createdAt ?? now,
            updatedAt: now,
          });
          for (const pe of p.entries) {
            const v = values.get(pe.target.secret);
            putEntrySecret(head, tx, m.name, pe.target, v, actor, now);
            if (v)
              pe.state =
                v.value && isMalformed(pe.target.entry, v.value) ? "malformed" : "configured";
          }
          return tx.revision;
        });
        // What each VM sees now, after the commit (a fetch that failed left its var out).
        const data = store.data;
        const vms = p.vms.map(({ vm }) => ({
          vm,
          env: computeView(data, vm).map((v) => v.env),
          missing: missingEntries(data, vm)
            .filter((x) => x.id.startsWith(`${m.name}/`))
            .map((x) => x.id.slice(m.name.length + 1)),
        }));
        return { ...p, vms, revision };
      });
    },

    list() {
      return Object.values(store.data.manifests).sort((a, b) => a.name.localeCompare(b.name));
    },

    get(nameIn: string): ManifestRecord {
      const m = store.data.manifests[checkSecretName("name", nameIn)];
      if (!m) throw notFound("manifest", nameIn, "name");
      return m;
    },

    async remove(actor: Actor, nameIn: string, deleteSecrets: boolean) {
      return audited(deps, actor, "change", "manifest.remove", { detail: nameIn }, async () => {
        const name = checkSecretName("name", nameIn);
        return store.mutate((head, tx) => {
          if (!head.manifests[name]) throw notFound("manifest", name, "name");
          tx.delete("manifests", name);
          const deleted: string[] = [];
          if (deleteSecrets) {
            for (const s of Object.values(head.secrets)) {
              if (s.origin?.manifest === name) {
                tx.delete("secrets", s.name);
                deleted.push(s.name);
              }
            }
          }
          return { revision: tx.revision, deleted: deleted.sort() };
        });
      });
    },

    /** Each entry per VM (host-only entries once, with vm ""), never a value. */
    status(nameIn: string, vmIn: string) {
      const data = store.data;
      const rows = [];
      for (const m of Object.values(data.manifests)) {
        if (nameIn && m.name !== nameIn) continue;
        const vms = vmsOf(data, m.bind).filter((v) => !vmIn || v === vmIn);
        for (const t of targetsOf(m.name, entriesOf(m), m.bind, vms)) {
          const perVm = t.scope === "host" ? [""] : t.vm ? [t.vm] : vms;
          const { state, rec } = stateOf(data, t);
          for (const vm of perVm) rows.push({ manifest: m.name, vm, target: t, state, rec });
        }
      }
      return rows;
    },

    /** Stores a person's value for entry `id` of `manifestIn`, after checking its format. */
    async provide(actor: Actor, manifestIn: string, id: string, valueIn: string) {
      return audited(
        deps,
        actor,
        "change",
        "manifest.provide",
        { detail: `${manifestIn}/${id}` },
        async () => {
          const m = store.data.manifests[checkSecretName("manifest", manifestIn)];
          if (!m) throw notFound("manifest", manifestIn, "manifest");
          const entry = entriesOf(m).find((e) => e.id === id);
          if (!entry) throw notFound("entry", `${m.name}/${id}`, "id");
          if (
            entry.class !== "user_prompt" &&
            !(entry.class === "infrastructure" && !entry.generator && !entry.fetch)
          ) {
            throw failedPrecondition(
              `id: entry '${id}' is ${entry.class}: secretsd makes its value`,
              "id",
            );
          }
          const value = checkValue("value", valueIn);
          if (entry.format) {
            const r = matchesFormat(entry.format, value);
            if (!r.ok)
              throw invalidArgument(
                "value",
                `does not match the format of '${id}'${r.reason ? ` (${r.reason})` : ""}`,
              );
          }
          const [target] = targetsOf(m.name, [entry], m.bind, []);
          if (!target) throw failedPrecondition(`id: entry '${id}' has no shared value`, "id");
          const rec = await store.mutate((head, tx) => {
            putEntrySecret(
              head,
              tx,
              m.name,
              target,
              { value, source: "provided" },
              actor,
              new Date().toISOString(),
            );
            return head.secrets[target.secret] as SecretRecord;
          });
          return { secret: target.secret, version: rec.currentVersion, revision: rec.modRevision };
        },
      );
    },

    /** Required entries `vm` has no good value for ("MANIFEST/ID"). */
    missing: (vm: string) => missingRequired(store.data, vm),

    close: () => unsubscribe(),
  };

  /**
   * Creates or updates the secret of one target: metadata always follows the manifest; a new
   * version only when `v` is given (a value made, fetched or provided).
   */
  function putEntrySecret(
    head: StoreView,
    tx: Tx,
    manifest: string,
    t: Target,
    v: { value: string; source: "generated" | "fetched" | "provided" } | undefined,
    actor: Actor,
    now: string,
  ) {
    const e = t.entry;
    const cur = head.secrets[t.secret];
    if (!cur && !v) return;
    const versions: SecretVersionRecord[] = cur ? [...cur.versions] : [];
    let currentVersion = cur?.currentVersion ?? 0;
    if (v) {
      currentVersion = cur ? nextVersion(cur) : 1;
      const malformed = isMalformed(e, v.value);
      versions.push({
        ...sealVersion(deps.barrier, t.secret, currentVersion, v.value, actor, now),
        source: v.source,
        ...(malformed ? { malformed: true } : {}),
      });
    }
    const rec: Omit<SecretRecord, "modRevision"> = {
      name: t.secret,
      env: e.env ?? e.id.toUpperCase(),
      scope: t.scope,
      kind: e.generator ? "generated" : "static",
      provider: "",
      description: e.description,
      labels: cur?.labels ?? {},
      origin: { manifest, entry: e.id, ...(t.vm ? { vm: t.vm } : {}) },
      class: e.class,
      ...(e.format ? { format: e.format } : {}),
      ...(e.generator ? { generator: e.generator as unknown as Record<string, unknown> } : {}),
      ...(e.fetch ? { fetch: e.fetch } : {}),
      ...(e.rotate ? { rotate: e.rotate } : {}),
      ...(cur?.valueExpiresAt && !v ? { valueExpiresAt: cur.valueExpiresAt } : {}),
      ...(cur?.fetchError && !v ? { fetchError: cur.fetchError } : {}),
      ...(cur?.fetchErrorAt && !v ? { fetchErrorAt: cur.fetchErrorAt } : {}),
      currentVersion,
      versions: pruneVersions(versions, currentVersion),
      createdAt: cur?.createdAt ?? now,
      updatedAt: now,
    };
    tx.put("secrets", rec);
  }
}

export type ManifestUseCases = ReturnType<typeof createManifestUseCases>;

// --- internal ---

/** Per-VM generated entries of the manifests bound to `vm` whose secret does not exist. */
function generatedMissing(data: StoreView, vm: string) {
  const rec = data.vms[vm];
  const out: { manifest: string; target: Target }[] = [];
  if (!rec) return out;
  for (const m of Object.values(data.manifests)) {
    const bound =
      m.bind === `vm:${vm}` ||
      (m.bind.startsWith("group:") && rec.groups.includes(m.bind.slice(6)));
    if (!bound) continue;
    for (const e of entriesOf(m)) {
      if (e.class !== "per_install_generated") continue;
      try {
        for (const t of targetsOf(m.name, [e], m.bind, [vm])) {
          if (!data.secrets[t.secret]) out.push({ manifest: m.name, target: t });
        }
      } catch {
        // A name too long for this VM: reported as missing by readiness.
      }
    }
  }
  return out;
}

function isMalformed(e: ManifestEntry, value: string): boolean {
  return e.format !== undefined && !matchesFormat(e.format, value).ok;
}

function checkBind(data: StoreView, b: { vm?: string; group?: string }): string {
  if (b.vm) {
    const vm = checkNodeName("bind.vm", "vm", b.vm);
    if (!data.vms[vm]) throw notFound("vm", vm, "bind.vm");
    return `vm:${vm}`;
  }
  if (b.group) {
    const g = checkNodeName("bind.group", "group", b.group);
    if (!data.groups[g]) throw notFound("group", g, "bind.group");
    return `group:${g}`;
  }
  throw invalidArgument("bind", "a VM or a group is required");
}

/** A target's secret name or env var taken by a secret this manifest did not make. */
function checkConflicts(
  data: StoreView,
  manifest: string,
  entries: readonly ManifestEntry[],
  targets: readonly Target[],
) {
  for (const t of targets) {
    const cur = data.secrets[t.secret];
    if (cur && cur.origin?.manifest !== manifest) {
      throw alreadyExists(
        "manifest",
        `secret '${t.secret}' exists and was not made by manifest '${manifest}'`,
      );
    }
    if (t.entry.env) {
      const i = entries.indexOf(t.entry);
      checkEnvFree(data, [{ field: `entries[${i}].env`, env: t.entry.env }], t.scope, t.secret);
    }
  }
}
