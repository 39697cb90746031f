import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  AccessService,
  TeamSchema,
  UserSchema,
  VmSchema,
} from "../../../proto/gen/vmauth/v1/access_pb.js";
import { Role } from "../../../proto/gen/vmauth/v1/access_pb.js";
import type { AccessUseCases } from "../../secrets/access.js";
import type { TeamView, UserView } from "../../secrets/users.js";
import type { Presence } from "../../secrets/watch.js";
import type { RoleRecord, VmRecord } from "../../store/types.js";
import type { ServiceImpl } from "../adapter.js";
import { ts } from "../convert.js";

export function accessHandlers(
  access: AccessUseCases,
  presence: Presence,
  /** Required manifest entries a VM has no good value for (issue #11). */
  missingRequired: (vm: string) => string[],
): ServiceImpl<typeof AccessService> {
  const users = access.users;
  const toVm = (r: VmRecord): MessageInitShape<typeof VmSchema> => {
    const p = presence.of(r.name);
    return {
      name: r.name,
      groups: r.groups,
      createdAt: ts(r.createdAt),
      tokenCount: r.tokens.length,
      connected: p.connected,
      appliedRevision: BigInt(p.appliedRevision),
      viewRevision: BigInt(p.viewRevision),
      behind: p.appliedRevision < p.viewRevision,
      ...(p.lastSeen ? { lastSeen: ts(p.lastSeen) } : {}),
      clientVersion: p.clientVersion,
      lastRestartedUnits: p.lastRestartedUnits,
      lastError: p.lastError,
      diverged: p.diverged,
      damagedSecrets: presence.damagedIn(r.name),
      missingRequired: missingRequired(r.name),
    };
  };
  return {
    async createVm(req, ctx) {
      const r = await access.createVm(ctx, req.name, req.groups);
      return { vm: toVm(r.vm), token: r.token };
    },
    async listVms(_req, ctx) {
      return { vms: access.listVms(ctx).map(toVm) };
    },
    async updateVm(req, ctx) {
      return { vm: toVm(await access.updateVm(ctx, req.name, req.addGroups, req.removeGroups)) };
    },
    async deleteVm(req, ctx) {
      await access.deleteVm(ctx, req.name);
      return {};
    },
    async issueVmToken(req, ctx) {
      return { token: (await access.issueVmToken(ctx, req.name, req.keepExisting)).token };
    },
    async revokeVmTokens(req, ctx) {
      return { revoked: (await access.revokeVmTokens(ctx, req.name)).revoked };
    },
    async createGroup(req, ctx) {
      const g = await access.createGroup(ctx, req.name);
      return { group: { name: g.name, createdAt: ts(g.createdAt) } };
    },
    async listGroups(_req, ctx) {
      return {
        groups: access.listGroups(ctx).map((g) => ({
          name: g.name,
          vms: g.vms,
          secretCount: g.secretCount,
          createdAt: ts(g.createdAt),
        })),
      };
    },
    async deleteGroup(req, ctx) {
      await access.deleteGroup(ctx, req.name);
      return {};
    },
    async createAdminToken(req, ctx) {
      const r = await access.createAdminToken(ctx, req.name);
      return {
        adminToken: { name: r.record.name, id: r.record.id, createdAt: ts(r.record.createdAt) },
        token: r.token,
      };
    },
    async listAdminTokens() {
      return {
        adminTokens: access
          .listAdminTokens()
          .map((t) => ({ name: t.name, id: t.id, createdAt: ts(t.createdAt) })),
      };
    },
    async revokeAdminToken(req, ctx) {
      await access.revokeAdminToken(ctx, req.name);
      return {};
    },
    async createUser(req, ctx) {
      const u = await users.createUser(ctx, req.name, roleOf(req.role), req.teams);
      return { user: toUser(u) };
    },
    async listUsers() {
      return { users: users.listUsers().map(toUser) };
    },
    async deleteUser(req, ctx) {
      await users.deleteUser(ctx, req.name);
      return {};
    },
    async setUserRole(req, ctx) {
      return { user: toUser(await users.setUserRole(ctx, req.name, roleOf(req.role))) };
    },
    async issueUserToken(req, ctx) {
      const r = await users.issueUserToken(ctx, req.name);
      return { token: r.token, user: toUser(r.user) };
    },
    async createTeam(req, ctx) {
      return { team: toTeam(await users.createTeam(ctx, req.name, req.groups)) };
    },
    async listTeams() {
      return { teams: users.listTeams().map(toTeam) };
    },
    async deleteTeam(req, ctx) {
      await users.deleteTeam(ctx, req.name);
      return {};
    },
    async setTeamMembers(req, ctx) {
      return { team: toTeam(await users.setTeamMembers(ctx, req.name, req.add, req.remove)) };
    },
  };
}

// --- internal ---

const ROLE_OF: Partial<Record<Role, RoleRecord>> = {
  [Role.ADMIN]: "admin",
  [Role.OPERATOR]: "operator",
  [Role.VIEWER]: "viewer",
};
const ROLE_TO: Record<RoleRecord, Role> = {
  admin: Role.ADMIN,
  operator: Role.OPERATOR,
  viewer: Role.VIEWER,
};

/** The role a request names; undefined (refused naming `role` by the use case) for none. */
function roleOf(r: Role): RoleRecord | undefined {
  return ROLE_OF[r];
}

function toUser(u: UserView): MessageInitShape<typeof UserSchema> {
  return {
    name: u.name,
    role: ROLE_TO[u.role],
    teams: u.teams,
    createdAt: ts(u.createdAt),
    hasToken: u.tokenId !== "",
    tokenId: u.tokenId,
  };
}

function toTeam(t: TeamView): MessageInitShape<typeof TeamSchema> {
  return { name: t.name, groups: t.groups, members: t.members };
}
