import { create } from "@bufbuild/protobuf";
import { timestampNow } from "@bufbuild/protobuf/wkt";
import type { Encoded } from "../../../proto/adapter.js";
import { encodeMessage } from "../../../proto/adapter.js";
import type { EnvService } from "../../../proto/gen/vmauth/v1/env_pb.js";
import { WatchEnvResponseSchema } from "../../../proto/gen/vmauth/v1/env_pb.js";
import type { EnvUseCases } from "../../secrets/env.js";
import type { StreamSnapshot, WatchHub } from "../../secrets/watch.js";
import type { ServiceImpl } from "../adapter.js";
import type { VarMeta } from "../env-wire.js";
import { encodeSnapshotResponse, encodeVarMeta } from "../env-wire.js";
import type { TurnScheduler } from "../turns.js";

export function envHandlers(
  env: EnvUseCases,
  hub: WatchHub,
  heartbeatMs: number,
  turns: TurnScheduler,
): ServiceImpl<typeof EnvService> {
  // Keyed by the view's plan: one object per VM and revision, dropped with its VM.
  const meta = new WeakMap<object, VarMeta[]>();
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
      let m = meta.get(snap.plan);
      if (!m) {
        m = encodeVarMeta(snap.vars);
        meta.set(snap.plan, m);
      }
      return encodeSnapshotResponse({ ...snap, digest: "" }, m);
    },
    async watchEnv(req, ctx, stream) {
      await hub.watch<Encoded>(
        ctx,
        {
          vm: req.vm,
          sinceRevision: Number(req.sinceRevision),
          appliedDigest: req.appliedDigest,
          clientVersion: req.clientVersion,
        },
        { encode: encodeSnapshot, heartbeat: encodeHeartbeat, write: stream.trySend },
        ctx.signal,
      );
    },
    async ackEnv(req, ctx) {
      await hub.ack(ctx, {
        vm: req.vm,
        revision: Number(req.revision),
        restartedUnits: req.restartedUnits,
        omitted: req.omitted,
        missing: req.missing,
        clientVersion: req.clientVersion,
        error: req.error,
        // Only a shim that says so sends its whole unit map (an older one leaves it unknown).
        units: req.unitsReported
          ? req.units.map((u) => ({ name: u.name, keys: u.keys, action: u.action }))
          : undefined,
      });
      return {};
    },
  };
}

// --- internal ---

function encodeSnapshot(s: StreamSnapshot): Encoded {
  return encodeSnapshotResponse({ ...s, vm: "" });
}
