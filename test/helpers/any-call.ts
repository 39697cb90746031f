/**
 * Calls any method of any generated service with whatever metadata a test chooses, over a
 * plain grpc-js Client, and reports the status and the raw response bytes (so a test can
 * search them for data the caller must never see). Streaming responses end after the first
 * message. Requests use the same (de)serialisers as the real client (proto/adapter.ts).
 */
import type { DescMethod, MessageInitShape } from "@bufbuild/protobuf";
import { create, toBinary } from "@bufbuild/protobuf";
import type { ServiceError } from "@grpc/grpc-js";
import { Client, credentials, Metadata, status } from "@grpc/grpc-js";
import { methodPath } from "../../proto/adapter.js";

/** A finished call: its status code and message, and the first response's bytes if any. */
export interface AnyAnswer {
  code: status;
  message: string;
  response: Buffer | undefined;
}

/** One channel (TCP `host:port` or `unix:PATH`); close it with `close()`. */
export function anyClient(target: string): Client {
  return new Client(target, credentials.createInsecure());
}

/** Metadata with one bearer token, or none (grpc-js refuses to send a second one). */
export function bearer(token: string | undefined): Metadata {
  const md = new Metadata();
  if (token !== undefined) md.set("authorization", `Bearer ${token}`);
  return md;
}

/**
 * Calls `method` with `req` (init shape of its input), or with raw request bytes when `req`
 * is a Buffer, and resolves with the status: OK with the first message for streams, which
 * are then cancelled.
 */
export function callAny(
  client: Client,
  method: DescMethod,
  req: MessageInitShape<DescMethod["input"]> | Buffer,
  metadata: Metadata,
  timeoutMs = 5000,
): Promise<AnyAnswer> {
  const bytes = Buffer.isBuffer(req)
    ? req
    : Buffer.from(toBinary(method.input, create(method.input, req)));
  const path = methodPath(method);
  const ser = (b: Buffer) => b;
  const de = (b: Buffer) => b;
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve) => {
    const fail = (err: ServiceError) =>
      resolve({ code: err.code, message: err.details, response: undefined });
    if (method.methodKind === "unary") {
      client.makeUnaryRequest(path, ser, de, bytes, metadata, { deadline }, (err, res) =>
        err ? fail(err) : resolve({ code: status.OK, message: "", response: res }),
      );
      return;
    }
    let call: ReturnType<typeof client.makeServerStreamRequest>;
    if (method.methodKind === "server_streaming") {
      call = client.makeServerStreamRequest(path, ser, de, bytes, metadata, { deadline });
    } else {
      const duplex = client.makeBidiStreamRequest(path, ser, de, metadata, { deadline });
      duplex.write(bytes);
      duplex.end();
      call = duplex;
    }
    let done = false;
    call.on("data", (res: Buffer) => {
      if (done) return;
      done = true;
      resolve({ code: status.OK, message: "", response: res });
      call.cancel();
    });
    call.on("error", (err: ServiceError) => {
      if (done) return;
      done = true;
      fail(err);
    });
    call.on("status", (s: { code: status; details: string }) => {
      if (done) return;
      done = true;
      resolve({ code: s.code, message: s.details, response: undefined });
    });
  });
}
