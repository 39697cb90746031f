import type { SystemService } from "../../../proto/gen/vmauth/v1/system_pb.js";
import { actorOf } from "../../secrets/caller.js";
import type { SystemUseCases } from "../../secrets/system.js";
import type { ServiceImpl } from "../adapter.js";
import { ts } from "../convert.js";

export function systemHandlers(
  system: SystemUseCases,
  extra: { version: string; connectedVms: () => number },
): ServiceImpl<typeof SystemService> {
  return {
    async getStatus(_req, ctx) {
      const s = system.status();
      return {
        version: extra.version,
        startedAt: ts(s.startedAt),
        uptimeSeconds: BigInt(Math.floor((Date.now() - s.startedAt.getTime()) / 1000)),
        revision: BigInt(s.revision),
        secretCount: s.secretCount,
        vmCount: s.vmCount,
        connectedVmCount: extra.connectedVms(),
        groupCount: s.groupCount,
        dataDir: s.dataDir,
        masterKeyId: s.masterKeyId,
        caller: actorOf(ctx.caller),
        damagedSecrets: s.damagedSecrets,
        storeWarnings: [...s.storeWarnings],
        oauthAttention: s.oauthAttention,
        expiringSecrets: s.expiringSecrets,
      };
    },
    async rotateMasterKey(_req, ctx) {
      const r = await system.rotateMasterKey(ctx);
      return { masterKeyId: r.masterKeyId, revision: BigInt(r.revision) };
    },
    async listAuditEvents(req) {
      const events = await system.audit({
        limit: req.limit,
        ...(req.secret ? { secret: req.secret } : {}),
        ...(req.vm ? { vm: req.vm } : {}),
        ...(req.action ? { action: req.action } : {}),
      });
      return {
        events: events.map((e) => ({
          time: ts(e.time),
          requestId: e.requestId,
          actor: e.actor,
          action: e.action,
          secret: e.secret ?? "",
          vm: e.vm ?? "",
          result: e.result,
          version: e.version ?? 0,
          revision: BigInt(e.revision ?? 0),
        })),
      };
    },
  };
}
