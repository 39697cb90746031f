/**
 * Server streams over real grpc-js (server and client in this process): pre-encoded frames go
 * straight to the HTTP/2 stream (the fan-out fast path), mixed with messages grpc-js writes
 * itself, under back-pressure from a slow reader, and still arrive complete, in order, once,
 * followed by the call's status.
 */

import { create } from "@bufbuild/protobuf";
import type { ClientReadableStream, ServiceError } from "@grpc/grpc-js";
import { Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { encodeMessage } from "../../proto/adapter.js";
import type { WatchEnvResponse } from "../../proto/gen/vmauth/v1/env_pb.js";
import { EnvService, WatchEnvResponseSchema } from "../../proto/gen/vmauth/v1/env_pb.js";
import { SecretsError } from "../errors.js";
import { createLogger } from "../logger.js";
import { bindService } from "./adapter.js";
import { directWrites } from "./direct-write.js";
import { envServiceStub, serveForTest } from "./serve-for-test.js";

// 64 KiB values: a few frames fill HTTP/2's flow-control window, so writes wait for drain.
const BIG = 64 * 1024;
const bigValue = (rev: number) => `${String(rev).padStart(6, "0")}${"v".repeat(BIG)}`;

const snapshot = (rev: number) =>
  encodeMessage(
    WatchEnvResponseSchema,
    create(WatchEnvResponseSchema, {
      event: {
        case: "snapshot",
        value: {
          revision: BigInt(rev),
          vars: [{ name: "K", value: bigValue(rev), secret: "k" }],
        },
      },
    }),
  );
const heartbeat = (rev: number) => ({
  event: { case: "heartbeat" as const, value: { revision: BigInt(rev), intervalMs: 1000 } },
});

let served: Awaited<ReturnType<typeof serveForTest>>;
let client: Awaited<ReturnType<typeof serveForTest>>["client"];

beforeAll(async () => {
  const { definition, handlers } = bindService(
    EnvService,
    envServiceStub(async (req, _ctx, stream) => {
      // The first message goes through grpc-js (it sends the response headers).
      await stream.send(heartbeat(0));
      if (req.clientVersion === "encoded") {
        for (let rev = 1; rev <= 100; rev++) await stream.send(snapshot(rev));
      } else if (req.clientVersion === "mixed") {
        // Messages ending in 0 and 1 grpc-js writes itself, two in a row: it still holds the
        // second (buffered behind the first) when the next pre-encoded frame comes, and that
        // frame must wait behind it.
        const writes: (Promise<void> | undefined)[] = [];
        for (let rev = 1; rev <= 200; rev++) {
          const own = rev % 10 === 0 || rev % 10 === 1;
          writes.push(own ? stream.trySend(heartbeat(rev)) : stream.trySend(snapshot(rev)));
          if (rev % 7 === 0) await Promise.all(writes.splice(0));
        }
        await Promise.all(writes);
      } else if (req.clientVersion === "fail") {
        for (let rev = 1; rev <= 3; rev++) await stream.send(snapshot(rev));
        throw new SecretsError("failed_precondition", "vm: stream ended on purpose");
      }
    }),
    {
      authenticate: () => ({ kind: "local" }),
      shutdown: new AbortController().signal,
      log: createLogger({ level: "silent" }),
    },
  );
  served = await serveForTest(definition, handlers, "EnvService");
  client = served.client;
});

afterAll(() => served.close());

/**
 * Opens a watch; reads nothing for the first 200 ms when `stall` (back-pressure; grpc-js's
 * client reports an error as soon as it arrives, even with messages still unread, so failing
 * streams are read at once), then everything until the status.
 */
function watch(scenario: string, stall = true) {
  const open = (client as unknown as Record<string, (...a: unknown[]) => unknown>).watchEnv;
  const call = open?.call(
    client,
    create(EnvService.method.watchEnv.input, { clientVersion: scenario }),
    new Metadata(),
  ) as ClientReadableStream<WatchEnvResponse>;
  return new Promise<{ got: { rev: number; kind: string; ok: boolean }[]; err?: ServiceError }>(
    (resolve) => {
      const got: { rev: number; kind: string; ok: boolean }[] = [];
      if (stall) {
        call.pause();
        setTimeout(() => call.resume(), 200);
      }
      call.on("data", (m: WatchEnvResponse) => {
        if (m.event.case === "snapshot") {
          const rev = Number(m.event.value.revision);
          const value = m.event.value.vars[0]?.value;
          got.push({ rev, kind: "snapshot", ok: value === bigValue(rev) });
        } else if (m.event.case === "heartbeat") {
          got.push({ rev: Number(m.event.value.revision), kind: "heartbeat", ok: true });
        }
      });
      call.on("error", (err: ServiceError) => resolve({ got, err }));
      call.on("status", (s: { code: number }) => {
        if (s.code === status.OK) resolve({ got });
      });
    },
  );
}

describe("grpc-js adapter: server streams", () => {
  test("pre-encoded frames go straight to HTTP/2, in order, whole, then OK", async () => {
    const before = directWrites.count;
    const { got, err } = await watch("encoded");
    expect(err).toBeUndefined();
    expect(got.map((g) => g.rev)).toEqual(Array.from({ length: 101 }, (_, i) => i));
    expect(got.every((g) => g.ok)).toBe(true);
    // Every snapshot took the fast path: this fails if grpc-js's internals change shape.
    expect(directWrites.count - before).toBe(100);
  });

  test("frames mixed with messages grpc-js writes itself keep their order", async () => {
    const before = directWrites.count;
    const { got, err } = await watch("mixed");
    expect(err).toBeUndefined();
    expect(got.map((g) => g.rev)).toEqual(Array.from({ length: 201 }, (_, i) => i));
    expect(got.every((g) => g.ok)).toBe(true);
    expect(got.filter((g) => g.kind === "heartbeat").length).toBe(41);
    expect(directWrites.count - before).toBeGreaterThan(0);
  });

  test("a stream that fails after direct frames delivers them, then its status", async () => {
    const { got, err } = await watch("fail", false);
    expect(got.map((g) => g.rev)).toEqual([0, 1, 2, 3]);
    expect(err?.code).toBe(status.FAILED_PRECONDITION);
    expect(err?.details).toBe("vm: stream ended on purpose");
  });
});
