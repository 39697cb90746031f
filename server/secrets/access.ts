/**
 * VMs, groups and tokens. Tokens are 32 random bytes with a recognisable prefix, shown once,
 * stored only as keyed BLAKE2b hashes and compared in constant time. A team member (issue
 * #13, permissions.ts) sees and acts on only its teams' groups and the VMs in them: anything
 * else is NOT_FOUND, as if it did not exist.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  notFound,
  unauthenticated,
} from "../errors.js";
import type { StoreView } from "../store/store.js";
import type { TokenRecord, VmRecord } from "../store/types.js";
import type { Caller } from "./caller.js";
import type { Actor, Deps } from "./context.js";
import { teamGroups, vmInGroups } from "./permissions.js";
import { audited } from "./shared.js";
import { ADMIN_TOKEN_PREFIX, createUserUseCases } from "./users.js";
import { checkNodeName } from "./validate.js";

const VM_TOKEN_PREFIX = "vmat_";

export function createAccessUseCases(deps: Deps) {
  const { store, barrier } = deps;
  let index: { revision: number; byHash: Map<string, Caller> } | undefined;

  const issue = (prefix: string): { token: string; record: TokenRecord } => {
    const token = prefix + randomBytes(32).toString("base64url");
    const hash = barrier.hashToken(token);
    return { token, record: { id: hash.slice(0, 12), hash, createdAt: new Date().toISOString() } };
  };

  return {
    /** Users and teams (issue #13): they share the admin tokens' records. */
    users: createUserUseCases(deps),

    /**
     * What a team-limited caller (permissions.ts) may see, read from the store now; undefined
     * for a caller who is not limited. A scope is the team's when it is `group:G` with G one
     * of its groups or `vm:V` with V in one of them; `global` and `host` never are.
     */
    teamScope(caller: Caller) {
      const data = store.data;
      const mine = teamGroups(caller, data);
      if (mine === undefined) return undefined;
      const allowsScope = (scope: string): boolean => {
        if (scope.startsWith("group:")) return mine.has(scope.slice(6));
        if (scope.startsWith("vm:")) {
          const vm = data.vms[scope.slice(3)];
          return vm !== undefined && vmInGroups(vm, mine);
        }
        return false;
      };
      return {
        allowsScope,
        allowsVm: (name: string) => {
          const vm = data.vms[name];
          return vm !== undefined && vmInGroups(vm, mine);
        },
        /** The scope of secret `name` when it exists and is the team's. */
        secretVisible: (name: string) => {
          const s = data.secrets[name];
          return s !== undefined && allowsScope(s.scope);
        },
      };
    },

    /** The caller a bearer token stands for; UNAUTHENTICATED for anything else. */
    authenticate(token: string): Caller {
      if (!token.startsWith(VM_TOKEN_PREFIX) && !token.startsWith(ADMIN_TOKEN_PREFIX)) {
        throw unauthenticated("authorization: not a vm-auth token");
      }
      const hash = barrier.hashToken(token);
      const byHash = tokenIndex();
      const found = byHash.get(hash);
      // The map lookup keys on a keyed hash the caller cannot compute; the final comparison is
      // still constant time so no timing depends on how much of a stored hash matched.
      const stored = found ? hash : "0".repeat(hash.length);
      if (!found || !timingSafeEqual(Buffer.from(stored, "hex"), Buffer.from(hash, "hex"))) {
        throw unauthenticated("authorization: unknown or revoked token");
      }
      return found;
    },

    async createVm(actor: Actor, nameIn: string, groupsIn: string[]) {
      return audited(deps, actor, "change", "vm.create", { vm: nameIn }, async () => {
        const name = checkNodeName("name", "vm", nameIn);
        const groups = [...new Set(groupsIn.map((g) => checkNodeName("groups", "group", g)))];
        const { token, record } = issue(VM_TOKEN_PREFIX);
        const vm = await store.mutate((data, tx) => {
          if (data.vms[name]) throw alreadyExists("name", `vm '${name}' already exists`);
          const mine = teamGroups(actor.caller, data);
          for (const g of groups) {
            if (!data.groups[g] || (mine && !mine.has(g))) throw notFound("group", g, "groups");
          }
          if (mine && groups.length === 0) {
            throw invalidArgument(
              "groups",
              "a team member's VM must be in one of the team's groups",
            );
          }
          return tx.put("vms", {
            name,
            groups: groups.sort(),
            tokens: [record],
            createdAt: record.createdAt,
          });
        });
        return { vm, token, revision: vm.modRevision };
      });
    },

    /** Every VM, or for a team member those in its teams' groups. */
    listVms(actor?: Actor): VmRecord[] {
      const mine = actor && teamGroups(actor.caller, store.data);
      return Object.values(store.data.vms)
        .filter((v) => vmInGroups(v, mine))
        .sort((a, b) => a.name.localeCompare(b.name));
    },

    async updateVm(actor: Actor, nameIn: string, add: string[], remove: string[]) {
      return audited(deps, actor, "change", "vm.update", { vm: nameIn }, async () => {
        const name = checkNodeName("name", "vm", nameIn);
        for (const g of add) checkNodeName("add_groups", "group", g);
        for (const g of remove) checkNodeName("remove_groups", "group", g);
        return store.mutate((data, tx) => {
          const mine = teamGroups(actor.caller, data);
          const vm = getVm(data, name, mine);
          for (const g of add) {
            if (!data.groups[g] || (mine && !mine.has(g))) throw notFound("group", g, "add_groups");
          }
          // A team member keeps the VM's groups outside its teams as they are.
          for (const g of remove) {
            if (mine && !mine.has(g)) throw notFound("group", g, "remove_groups");
          }
          const next = new Set(vm.groups);
          for (const g of add) next.add(g);
          for (const g of remove) next.delete(g);
          if (mine && !vmInGroups({ groups: [...next] }, mine)) {
            throw invalidArgument(
              "remove_groups",
              "a team member's VM must stay in one of the team's groups",
            );
          }
          return tx.put("vms", { ...vm, groups: [...next].sort() });
        });
      });
    },

    async deleteVm(actor: Actor, nameIn: string) {
      return audited(deps, actor, "change", "vm.delete", { vm: nameIn }, async () => {
        const name = checkNodeName("name", "vm", nameIn);
        return store.mutate((data, tx) => {
          getVm(data, name, teamGroups(actor.caller, data));
          refuseIfScoped(data, `vm:${name}`);
          tx.delete("vms", name);
          return { revision: tx.revision };
        });
      });
    },

    async issueVmToken(actor: Actor, nameIn: string, keepExisting: boolean) {
      return audited(deps, actor, "change", "vm.token", { vm: nameIn }, async () => {
        const name = checkNodeName("name", "vm", nameIn);
        const { token, record } = issue(VM_TOKEN_PREFIX);
        await store.mutate((data, tx) => {
          const vm = getVm(data, name, teamGroups(actor.caller, data));
          tx.put("vms", { ...vm, tokens: keepExisting ? [...vm.tokens, record] : [record] });
        });
        return { token };
      });
    },

    async revokeVmTokens(actor: Actor, nameIn: string) {
      return audited(deps, actor, "change", "vm.revoke", { vm: nameIn }, async (note) => {
        const name = checkNodeName("name", "vm", nameIn);
        const revoked = await store.mutate((data, tx) => {
          const vm = getVm(data, name, teamGroups(actor.caller, data));
          tx.put("vms", { ...vm, tokens: [] });
          return vm.tokens.length;
        });
        note({ detail: `revoked ${revoked}` });
        return { revoked };
      });
    },

    async createGroup(actor: Actor, nameIn: string) {
      return audited(
        deps,
        actor,
        "change",
        "group.create",
        { detail: `group ${nameIn}` },
        async () => {
          const name = checkNodeName("name", "group", nameIn);
          return store.mutate((data, tx) => {
            if (data.groups[name]) throw alreadyExists("name", `group '${name}' already exists`);
            return tx.put("groups", { name, createdAt: new Date().toISOString() });
          });
        },
      );
    },

    /** Every group, or for a team member its teams' groups (with only the VMs it may see). */
    listGroups(actor?: Actor) {
      const data = store.data;
      const mine = actor && teamGroups(actor.caller, data);
      return Object.values(data.groups)
        .filter((g) => mine === undefined || mine.has(g.name))
        .sort((a, b) => a.name.localeCompare(b.name))
        .map((g) => ({
          ...g,
          vms: Object.values(data.vms)
            .filter((v) => v.groups.includes(g.name))
            .map((v) => v.name),
          secretCount: Object.values(data.secrets).filter((s) => s.scope === `group:${g.name}`)
            .length,
        }));
    },

    async deleteGroup(actor: Actor, nameIn: string) {
      return audited(
        deps,
        actor,
        "change",
        "group.delete",
        { detail: `group ${nameIn}` },
        async () => {
          const name = checkNodeName("name", "group", nameIn);
          return store.mutate((data, tx) => {
            const mine = teamGroups(actor.caller, data);
            if (!data.groups[name] || (mine && !mine.has(name))) {
              throw notFound("group", name, "name");
            }
            refuseIfScoped(data, `group:${name}`);
            // A team is the groups that name it: its last one cannot go while it exists.
            for (const t of data.groups[name]?.teams ?? []) {
              const others = Object.values(data.groups).filter(
                (g) => g.name !== name && g.teams?.includes(t),
              );
              if (others.length === 0) {
                throw failedPrecondition(
                  `name: group ${name} is the only group of team ${t}; remove the team first (secretsctl team remove ${t})`,
                  "name",
                );
              }
            }
            for (const vm of Object.values(data.vms)) {
              if (vm.groups.includes(name)) {
                tx.put("vms", { ...vm, groups: vm.groups.filter((g) => g !== name) });
              }
            }
            tx.delete("groups", name);
          });
        },
      );
    },

    async createAdminToken(actor: Actor, nameIn: string) {
      return audited(
        deps,
        actor,
        "change",
        "admin_token.create",
        { detail: `token ${nameIn}` },
        async () => {
          const name = checkNodeName("name", "admin token", nameIn);
          const { token, record } = issue(ADMIN_TOKEN_PREFIX);
          const rec = await store.mutate((data, tx) => {
            if (data.adminTokens[name]) {
              throw alreadyExists("name", `admin token or user '${name}' already exists`);
            }
            return tx.put("adminTokens", { ...record, name });
          });
          return { record: rec, token };
        },
      );
    },

    /** Every user that has a token (users without one have nothing to list here). */
    listAdminTokens() {
      return Object.values(store.data.adminTokens)
        .filter((t) => t.hash !== "")
        .sort((a, b) => a.name.localeCompare(b.name));
    },

    async revokeAdminToken(actor: Actor, nameIn: string) {
      return audited(
        deps,
        actor,
        "change",
        "admin_token.revoke",
        { detail: `token ${nameIn}` },
        async () => {
          const name = checkNodeName("name", "admin token", nameIn);
          await store.mutate((data, tx) => {
            const rec = data.adminTokens[name];
            if (!rec || rec.hash === "") throw notFound("admin token", name, "name");
            // A user made by CreateUser keeps its role and teams without its token; an
            // admin token from before users (no role) is only a token, and goes.
            if (rec.role === undefined) tx.delete("adminTokens", name);
            else tx.put("adminTokens", { ...rec, id: "", hash: "" });
          });
        },
      );
    },
  };

  function tokenIndex(): Map<string, Caller> {
    const data = store.data;
    if (index?.revision === data.revision) return index.byHash;
    const byHash = new Map<string, Caller>();
    for (const vm of Object.values(data.vms)) {
      for (const t of vm.tokens) byHash.set(t.hash, { kind: "vm", vm: vm.name, tokenId: t.id });
    }
    for (const t of Object.values(data.adminTokens)) {
      if (t.hash === "") continue;
      const teams = t.teams ?? [];
      byHash.set(t.hash, { kind: "admin", name: t.name, role: t.role ?? "admin", teams });
    }
    index = { revision: data.revision, byHash };
    return byHash;
  }
}

export type AccessUseCases = ReturnType<typeof createAccessUseCases>;

// --- internal ---

/** The VM `name`; NOT_FOUND when there is none or it is outside the caller's teams. */
function getVm(data: StoreView, name: string, mine?: ReadonlySet<string>): VmRecord {
  const vm = data.vms[name];
  if (!vm || !vmInGroups(vm, mine)) throw notFound("vm", name, "name");
  return vm;
}

function refuseIfScoped(data: StoreView, scope: string) {
  const scoped = Object.values(data.secrets).filter((s) => s.scope === scope);
  if (scoped.length > 0) {
    const names = scoped.map((s) => s.name).slice(0, 5);
    throw failedPrecondition(
      `${scope} still has ${scoped.length} secret(s) scoped to it (${names.join(", ")}); remove or re-scope them first`,
      "name",
    );
  }
}
