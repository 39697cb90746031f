/**
 * Users and teams (issue #13). A user is a record in the store's adminTokens section (an
 * admin token written before users existed is a user of role admin named after it), so
 * users, their tokens and the streams those tokens opened keep one lifecycle. A team is the
 * set of groups whose record names it (GroupRecord.teams) and the users whose record lists
 * it: no section of its own, so the store's drivers and feed needed no change.
 */
import { randomBytes } from "node:crypto";
import { alreadyExists, invalidArgument, notFound } from "../errors.js";
import type { StoreView } from "../store/store.js";
import type { AdminTokenRecord, RoleRecord } from "../store/types.js";
import type { Actor, Deps } from "./context.js";
import { ROLES } from "./permissions.js";
import { audited } from "./shared.js";
import { checkNodeName } from "./validate.js";

/** A user as listed: never its token, only the token's public id. */
export interface UserView {
  name: string;
  role: RoleRecord;
  teams: string[];
  createdAt: string;
  tokenId: string;
}

/** A team as listed: its groups and members, sorted. */
export interface TeamView {
  name: string;
  groups: string[];
  members: string[];
}

/** Admin tokens and user tokens share it: an admin token is a user of role admin. */
export const ADMIN_TOKEN_PREFIX = "vmadm_";

export function createUserUseCases(deps: Deps) {
  const { store, barrier } = deps;

  return {
    async createUser(
      actor: Actor,
      nameIn: string,
      role: RoleRecord | undefined,
      teamsIn: string[],
    ) {
      return audited(
        deps,
        actor,
        "change",
        "user.create",
        { detail: `user ${nameIn}` },
        async () => {
          const name = checkNodeName("name", "user", nameIn);
          const r = checkRole(role);
          const teams = [...new Set(teamsIn.map((t) => checkNodeName("teams", "team", t)))].sort();
          const rec = await store.mutate((data, tx) => {
            if (data.adminTokens[name]) {
              throw alreadyExists("name", `user or admin token '${name}' already exists`);
            }
            for (const t of teams) if (!teamExists(data, t)) throw notFound("team", t, "teams");
            const createdAt = new Date().toISOString();
            return tx.put("adminTokens", { name, id: "", hash: "", createdAt, role: r, teams });
          });
          return toUser(rec);
        },
      );
    },

    listUsers(): UserView[] {
      return Object.values(store.data.adminTokens)
        .sort((a, b) => a.name.localeCompare(b.name))
        .map(toUser);
    },

    async deleteUser(actor: Actor, nameIn: string) {
      return audited(
        deps,
        actor,
        "change",
        "user.delete",
        { detail: `user ${nameIn}` },
        async () => {
          const name = checkNodeName("name", "user", nameIn);
          await store.mutate((data, tx) => {
            getUser(data, name);
            tx.delete("adminTokens", name);
          });
        },
      );
    },

    async setUserRole(actor: Actor, nameIn: string, role: RoleRecord | undefined) {
      return audited(
        deps,
        actor,
        "change",
        "user.role",
        { detail: `user ${nameIn} role ${role ?? "?"}` },
        async () => {
          const name = checkNodeName("name", "user", nameIn);
          const r = checkRole(role);
          const rec = await store.mutate((data, tx) =>
            tx.put("adminTokens", { ...getUser(data, name), role: r }),
          );
          return toUser(rec);
        },
      );
    },

    async issueUserToken(actor: Actor, nameIn: string) {
      return audited(
        deps,
        actor,
        "change",
        "user.token",
        { detail: `user ${nameIn}` },
        async () => {
          const name = checkNodeName("name", "user", nameIn);
          const token = ADMIN_TOKEN_PREFIX + randomBytes(32).toString("base64url");
          const hash = barrier.hashToken(token);
          const rec = await store.mutate((data, tx) =>
            tx.put("adminTokens", { ...getUser(data, name), id: hash.slice(0, 12), hash }),
          );
          return { user: toUser(rec), token };
        },
      );
    },

    async createTeam(actor: Actor, nameIn: string, groupsIn: string[]) {
      return audited(
        deps,
        actor,
        "change",
        "team.create",
        { detail: `team ${nameIn}` },
        async () => {
          const name = checkNodeName("name", "team", nameIn);
          const groups = [...new Set(groupsIn.map((g) => checkNodeName("groups", "group", g)))];
          if (groups.length === 0)
            throw invalidArgument("groups", "a team needs at least one group");
          return store.mutate((data, tx) => {
            if (teamExists(data, name))
              throw alreadyExists("name", `team '${name}' already exists`);
            for (const g of groups) if (!data.groups[g]) throw notFound("group", g, "groups");
            for (const g of groups) {
              const rec = data.groups[g] as NonNullable<(typeof data.groups)[string]>;
              tx.put("groups", { ...rec, teams: [...(rec.teams ?? []), name].sort() });
            }
            return teamOf(data, name);
          });
        },
      );
    },

    listTeams(): TeamView[] {
      const data = store.data;
      const names = new Set<string>();
      for (const g of Object.values(data.groups)) for (const t of g.teams ?? []) names.add(t);
      return [...names].sort().map((t) => teamOf(data, t));
    },

    async deleteTeam(actor: Actor, nameIn: string) {
      return audited(
        deps,
        actor,
        "change",
        "team.delete",
        { detail: `team ${nameIn}` },
        async () => {
          const name = checkNodeName("name", "team", nameIn);
          await store.mutate((data, tx) => {
            if (!teamExists(data, name)) throw notFound("team", name, "name");
            for (const g of Object.values(data.groups)) {
              if (g.teams?.includes(name)) {
                tx.put("groups", { ...g, teams: g.teams.filter((t) => t !== name) });
              }
            }
            for (const u of Object.values(data.adminTokens)) {
              if (u.teams?.includes(name)) {
                tx.put("adminTokens", { ...u, teams: u.teams.filter((t) => t !== name) });
              }
            }
          });
        },
      );
    },

    async setTeamMembers(actor: Actor, nameIn: string, add: string[], remove: string[]) {
      return audited(
        deps,
        actor,
        "change",
        "team.members",
        { detail: `team ${nameIn}` },
        async () => {
          const name = checkNodeName("name", "team", nameIn);
          for (const u of add) checkNodeName("add", "user", u);
          for (const u of remove) checkNodeName("remove", "user", u);
          return store.mutate((data, tx) => {
            if (!teamExists(data, name)) throw notFound("team", name, "name");
            for (const u of add) if (!data.adminTokens[u]) throw notFound("user", u, "add");
            const drop = new Set(remove);
            for (const u of new Set([...add, ...remove])) {
              const rec = data.adminTokens[u];
              if (!rec) continue;
              const teams = new Set(rec.teams ?? []);
              if (drop.has(u)) teams.delete(name);
              else teams.add(name);
              tx.put("adminTokens", { ...rec, teams: [...teams].sort() });
            }
            return teamOf(data, name);
          });
        },
      );
    },
  };
}

export type UserUseCases = ReturnType<typeof createUserUseCases>;

// --- internal ---

function checkRole(role: RoleRecord | undefined): RoleRecord {
  if (role === undefined || !ROLES.includes(role)) {
    throw invalidArgument("role", `a role is required: one of ${ROLES.join(", ")}`);
  }
  return role;
}

function getUser(data: StoreView, name: string): AdminTokenRecord {
  const u = data.adminTokens[name];
  if (!u) throw notFound("user", name, "name");
  return u;
}

function teamExists(data: StoreView, name: string): boolean {
  return Object.values(data.groups).some((g) => g.teams?.includes(name));
}

function teamOf(data: StoreView, name: string): TeamView {
  return {
    name,
    groups: Object.values(data.groups)
      .filter((g) => g.teams?.includes(name))
      .map((g) => g.name)
      .sort(),
    members: Object.values(data.adminTokens)
      .filter((u) => u.teams?.includes(name))
      .map((u) => u.name)
      .sort(),
  };
}

function toUser(r: AdminTokenRecord): UserView {
  return {
    name: r.name,
    role: r.role ?? "admin",
    teams: [...(r.teams ?? [])],
    createdAt: r.createdAt,
    tokenId: r.id,
  };
}
