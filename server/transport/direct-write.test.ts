/**
 * The direct HTTP/2 write path honours grpc-js's `grpc.max_send_message_length` exactly as
 * grpc-js does for the messages it writes itself, over real grpc-js (server and client in
 * this process): a pre-encoded message at the limit goes straight to HTTP/2; one byte over
 * fails the call with the same status, details and reported result as the same message
 * written through grpc-js, and nothing of it is sent. Pins `maxSendMessageSize` (grpc-js
 * 1.14 BaseServerInterceptingCall): if it moves, the direct path is no longer taken and the
 * first test fails.
 */
import { create, fromBinary } from "@bufbuild/protobuf";
import type { ClientReadableStream, ServiceError } from "@grpc/grpc-js";
import { Metadata, status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { Encoded } from "../../proto/adapter.js";
import { encodeMessage } from "../../proto/adapter.js";
import type { WatchEnvResponse } from "../../proto/gen/vmauth/v1/env_pb.js";
import { EnvService, WatchEnvResponseSchema } from "../../proto/gen/vmauth/v1/env_pb.js";
import { createLogger } from "../logger.js";
import { bindService } from "./adapter.js";
import { directWrites } from "./direct-write.js";
import { envServiceStub, serveForTest } from "./serve-for-test.js";

const LIMIT = 1024;

/** A WatchEnvResponse snapshot of exactly `size` bytes (its frame is 5 more). */
function sized(size: number): Encoded {
  for (let pad = 0; pad < size; pad++) {
    const msg = create(WatchEnvResponseSchema, {
      event: {
        case: "snapshot",
        value: { revision: 7n, vars: [{ name: "K", value: "v".repeat(pad) }] },
      },
    });
    const enc = encodeMessage(WatchEnvResponseSchema, msg);
    if (enc.bytes.byteLength === size) return enc;
  }
  throw new Error(`no snapshot of ${size} bytes`);
}

const finished: string[] = [];
let served: Awaited<ReturnType<typeof serveForTest>>;
let client: Awaited<ReturnType<typeof serveForTest>>["client"];

beforeAll(async () => {
  const { definition, handlers } = bindService(
    EnvService,
    envServiceStub(async (req, ctx, stream) => {
      // The first message goes through grpc-js (it sends the response headers), so the
      // next pre-encoded one may take the direct path.
      await stream.send({ event: { case: "heartbeat", value: { revision: 0n } } });
      if (req.clientVersion === "fits") {
        await stream.send(sized(LIMIT));
        return;
      }
      const over = sized(LIMIT + 1);
      // The same message, pre-encoded (direct path) or as a message grpc-js serialises.
      const msg =
        req.clientVersion === "direct" ? over : fromBinary(WatchEnvResponseSchema, over.bytes);
      await stream.send(msg);
      // grpc-js has answered and ended the call: the handler hears it as an abort, and its
      // next send fails with it. (Bounded, so a frame that went out fails the test, not
      // hangs it.)
      await new Promise((r) => {
        if (ctx.signal.aborted) r(undefined);
        ctx.signal.addEventListener("abort", r, { once: true });
        setTimeout(r, 2000).unref();
      });
      await stream.send(over);
    }),
    {
      authenticate: () => ({ kind: "local" }),
      onFinish: ({ result }) => finished.push(result),
      shutdown: new AbortController().signal,
      log: createLogger({ level: "silent" }),
    },
  );
  served = await serveForTest(definition, handlers, "EnvService", {
    "grpc.max_send_message_length": LIMIT,
  });
  client = served.client;
});

afterAll(() => served.close());

/** Runs one watch to its end: the kinds of message received, its error, its result. */
function watch(scenario: string) {
  const open = (client as unknown as Record<string, (...a: unknown[]) => unknown>).watchEnv;
  const call = open?.call(
    client,
    create(EnvService.method.watchEnv.input, { clientVersion: scenario }),
    new Metadata(),
  ) as ClientReadableStream<WatchEnvResponse>;
  const before = { direct: directWrites.count, finished: finished.length };
  return new Promise<{
    got: string[];
    err?: ServiceError;
    direct: number;
    result: string | undefined;
  }>((resolve) => {
    const got: string[] = [];
    const done = (err?: ServiceError) => {
      // onFinish runs once the handler settles, after grpc-js has answered: wait for it.
      const poll = () => {
        if (finished.length === before.finished) return void setTimeout(poll, 5);
        const direct = directWrites.count - before.direct;
        resolve({ got, direct, result: finished[before.finished], ...(err ? { err } : {}) });
      };
      poll();
    };
    call.on("data", (m: WatchEnvResponse) => got.push(m.event.case ?? "none"));
    call.on("error", (err: ServiceError) => done(err));
    call.on("status", (s: { code: number }) => {
      if (s.code === status.OK) done();
    });
  });
}

describe("direct HTTP/2 writes and grpc.max_send_message_length", () => {
  test("a pre-encoded message at the limit goes straight to HTTP/2", async () => {
    const { got, err, direct, result } = await watch("fits");
    expect(err).toBeUndefined();
    expect(got).toEqual(["heartbeat", "snapshot"]);
    expect(direct).toBe(1);
    expect(result).toBe("ok");
  });

  test("one byte over fails as grpc-js fails its own message, and is not sent", async () => {
    const viaGrpcJs = await watch("grpc-js");
    const viaDirect = await watch("direct");
    expect(viaGrpcJs.err?.code).toBe(status.RESOURCE_EXHAUSTED);
    // grpc-js counts the frame (5-byte header included) against the limit's message bytes.
    expect(viaGrpcJs.err?.details).toBe(`Sent message larger than max (${LIMIT + 6} vs. ${LIMIT})`);
    expect(viaDirect.err?.code).toBe(viaGrpcJs.err?.code);
    expect(viaDirect.err?.details).toBe(viaGrpcJs.err?.details);
    expect(viaDirect.got).toEqual(["heartbeat"]);
    expect(viaDirect.got).toEqual(viaGrpcJs.got);
    expect(viaGrpcJs.result).toBe("cancelled");
    expect(viaDirect.result).toBe(viaGrpcJs.result);
    expect(viaDirect.direct).toBe(0);
  });
});
