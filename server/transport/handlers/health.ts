/** grpc.health.v1: SERVING while the daemon runs, NOT_SERVING once it starts to stop. */
import type { Health } from "../../../proto/gen/grpc/health/v1/health_pb.js";
import { HealthCheckResponse_ServingStatus as Status } from "../../../proto/gen/grpc/health/v1/health_pb.js";
import { SecretsError } from "../../errors.js";
import type { ServiceImpl } from "../adapter.js";

export interface HealthState {
  set(serving: boolean): void;
  /** Ends every Watch stream (after it was sent the last status): for shutdown. */
  close(): void;
  readonly handlers: ServiceImpl<typeof Health>;
}

export function createHealth(services: string[]): HealthState {
  let serving = false;
  const listeners = new Set<() => void>();
  const closing = new AbortController();
  const known = new Set(["", ...services]);
  const statusOf = (service: string) => {
    if (!known.has(service)) return Status.SERVICE_UNKNOWN;
    return serving ? Status.SERVING : Status.NOT_SERVING;
  };
  return {
    set(next) {
      serving = next;
      for (const l of listeners) l();
    },
    close() {
      closing.abort();
    },
    handlers: {
      async check(req) {
        if (!known.has(req.service)) {
          throw new SecretsError("not_found", `service: '${req.service}' is not known`);
        }
        return { status: statusOf(req.service) };
      },
      async list() {
        const statuses: Record<string, { status: Status }> = {};
        for (const s of known) statuses[s] = { status: statusOf(s) };
        return { statuses };
      },
      async watch(req, ctx, stream) {
        let last: Status | undefined;
        const push = () => {
          const now = statusOf(req.service);
          if (now === last) return;
          last = now;
          stream.send({ status: now }).catch(() => {});
        };
        listeners.add(push);
        try {
          push();
          const ended = AbortSignal.any([ctx.signal, closing.signal]);
          await new Promise<void>((resolve) => {
            if (ended.aborted) resolve();
            ended.addEventListener("abort", () => resolve(), { once: true });
          });
        } finally {
          listeners.delete(push);
        }
      },
    },
  };
}
