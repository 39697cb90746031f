/**
 * The change feed: what watchers (server/secrets' watch hub and GetEnv caches, through
 * `store.onCommit`) need to know of a committed change set, derived from the set and the
 * records it replaces. It is the same derivation whichever driver persisted the set, so a
 * driver that also receives other writers' sets (etcd's watch gives each put with its
 * previous value) feeds watchers the same way.
 */
import type {
  AdminTokenRecord,
  Change,
  ChangeSet,
  GroupRecord,
  ManifestRecord,
  SecretRecord,
  Section,
  StoreData,
  VmRecord,
} from "./types.js";

/** The records a set is applied to: only read, never changed. */
type Before = Pick<StoreData, Section>;

/**
 * What `set` changes for watchers, given the records it replaces (`before`, the document
 * as it was before the set). A delete of a record `before` does not hold changes nothing.
 */
export function changesOf(before: Before, set: ChangeSet): Change[] {
  const out: Change[] = [];
  for (const p of set.puts)
    out.push(...recordChanges(p.section, prior(before, p.section, p.name), p.record));
  for (const d of set.deletes) {
    const b = prior(before, d.section, d.name);
    if (b !== undefined) out.push(...recordChanges(d.section, b, undefined));
  }
  if (set.keyring) out.push({ kind: "keyring" });
  return out;
}

// --- internal ---

function prior(doc: Before, section: Section, name: string): object | undefined {
  const sec = doc[section] as Record<string, object>;
  return Object.hasOwn(sec, name) ? sec[name] : undefined;
}

/** Which VMs' views one record change may touch. */
function recordChanges(section: Section, before: unknown, after: unknown): Change[] {
  switch (section) {
    case "secrets": {
      const b = before as SecretRecord | undefined;
      const a = after as SecretRecord | undefined;
      const scopes = [...new Set([b?.scope, a?.scope].filter((s) => s !== undefined))];
      return [{ kind: "secret", name: (a ?? b)?.name ?? "", scopes }];
    }
    case "vms": {
      const b = before as VmRecord | undefined;
      const a = after as VmRecord | undefined;
      const vm = (a ?? b)?.name ?? "";
      const out: Change[] = [{ kind: "vm", vm }];
      // A VM removed, or its token list replaced: streams on its old tokens must end.
      if (!a || (b && b.tokens !== a.tokens)) out.push({ kind: "token", vm });
      return out;
    }
    case "groups": {
      const group = ((after ?? before) as GroupRecord | undefined)?.name ?? "";
      // Members' views change through their own VM records (access.ts puts each one).
      return [{ kind: "group", group, vms: [] }];
    }
    case "manifests": {
      const b = before as ManifestRecord | undefined;
      const a = after as ManifestRecord | undefined;
      const scopes = [...new Set([b?.bind, a?.bind].filter((s) => s !== undefined))];
      return [{ kind: "manifest", name: (a ?? b)?.name ?? "", scopes }];
    }
    case "adminTokens": {
      const admin = ((after ?? before) as AdminTokenRecord | undefined)?.name;
      return [admin === undefined ? { kind: "token" } : { kind: "token", admin }];
    }
  }
}
