import type { MessageInitShape } from "@bufbuild/protobuf";
import type { AccessService, VmSchema } from "../../../proto/gen/vmauth/v1/access_pb.js";
import type { AccessUseCases } from "../../secrets/access.js";
import type { Presence } from "../../secrets/watch.js";
import type { VmRecord } from "../../store/types.js";
import type { ServiceImpl } from "../adapter.js";
import { ts } from "../convert.js";

export function accessHandlers(
  access: AccessUseCases,
  presence: Presence,
  /** Required manifest entries a VM has no good value for (issue #11). */
  missingRequired: (vm: string) => string[],
): ServiceImpl<typeof AccessService> {
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
    async listVms() {
      return { vms: access.listVms().map(toVm) };
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
    async listGroups() {
      return {
        groups: access.listGroups().map((g) => ({
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
  };
}
