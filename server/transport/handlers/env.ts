import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { Encoded } from "../../../proto/adapter.js";
import { encodeMessage } from "../../../proto/adapter.js";
import type { EnvService as EnvServiceDesc } from "../../../proto/gen/vmauth/v1/env_pb.js";
import { WatchEnvResponseSchema } from "../../../proto/gen/vmauth/v1/env_pb.js";
import type { EnvService } from "../../secrets/env.js";
import { resolveVm } from "../../secrets/env.js";
import type { StreamSnapshot, WatchHub } from "../../secrets/watch.js";
import type { ServiceImpl } from "../adapter.js";
import type { VarMeta } from "../env-wire.js";
import { encodeSnapshotResponse, encodeVarMeta } from "../env-wire.js";
import type { TurnScheduler } from "../turns.js";

export function envHandlers(
  env: EnvService,
  hub: WatchHub,
  heartbeatMs: number,
  turns: TurnScheduler,
): ServiceImpl<typeof EnvServiceDesc> {
  const meta = new Map<string, { revision: number; meta: VarMeta[] }>();
  const encodeHeartbeat = (revision: number): Encoded =>
    encodeMessage(
      WatchEnvResponseSchema,
      create(WatchEnvResponseSchema, {
        event: {
          case: "heartbeat",
          value: { revision: BigInt(revision), time: timestampNow(), intervalMs: heartbeatMs },
        },
      }),
    );
  return {
    async getEnv(req, ctx) {
      const snap = await turns.run(() => env.getEnv(ctx, req.vm));
      // The non-value fields of a VM's variables are the same at one revision: encoded once.
      let m = meta.get(snap.vm);
      if (m?.revision !== snap.revision || m.meta.length !== snap.vars.length) {
        m = { revision: snap.revision, meta: encodeVarMeta(snap.vars) };
        meta.set(snap.vm, m);
      }
      return encodeSnapshotResponse({ ...snap, digest: "" }, m.meta);
    },
    async watchEnv(req, ctx, stream) {
      const vm = resolveVm(ctx.caller, req.vm);
      await hub.watch<Encoded>(
        ctx,
        {
          vm,
          tokenId: ctx.caller.kind === "vm" ? ctx.caller.tokenId : undefined,
          sinceRevision: Number(req.sinceRevision),
          appliedDigest: req.appliedDigest,
          clientVersion: req.clientVersion,
        },
        { encode: encodeSnapshot, heartbeat: encodeHeartbeat, write: stream.trySend },
        ctx.signal,
      );
    },
    async ackEnv(req, ctx) {
      const vm = resolveVm(ctx.caller, req.vm);
      await hub.ack(ctx, {
        vm,
        revision: Number(req.revision),
        restartedUnits: req.restartedUnits,
        omitted: req.omitted,
        clientVersion: req.clientVersion,
        error: req.error,
      });
      return {};
    },
  };
}

// --- internal ---

function encodeSnapshot(s: StreamSnapshot): Encoded {
  return encodeSnapshotResponse({ ...s, vm: "" });
}
