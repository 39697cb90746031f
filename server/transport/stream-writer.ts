/**
 * The writer a streaming handler sends its responses with. Messages given as init objects go
 * through grpc-js (`call.write`); pre-encoded ones (`Encoded`, serialised once for a
 * fan-out) go straight to the HTTP/2 stream when direct-write.ts allows it. Back-pressure is
 * a promise that settles on "drain", or rejects when the call's signal aborts.
 */
import type { Writable } from "node:stream";
import type { DescMessage, MessageInitShape } from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import { Encoded } from "../../proto/adapter.js";
import type { DirectPath, GrpcServerStream } from "./direct-write.js";
import { directPath, writeDirect } from "./direct-write.js";

/** A writable server stream; `send` resolves when the transport can take more. */
export interface ServerStream<O extends DescMessage> {
  /** Rejects with the call's abort reason once the call is cancelled, timed out or shut down. */
  send(msg: MessageInitShape<O> | Encoded): Promise<void>;
  /**
   * Writes like send, for fan-out loops: undefined when the transport took the message
   * without back-pressure (no promise made), else a promise that settles on drain.
   */
  trySend(msg: MessageInitShape<O> | Encoded): Promise<void> | undefined;
}

/** The writer of one grpc-js server stream whose responses are `schema` messages. */
export function createServerStream<O extends DescMessage>(
  schema: O,
  call: GrpcServerStream,
  signal: AbortSignal,
): ServerStream<O> {
  const waitFor = (emitter: Writable) =>
    new Promise<void>((resolve, reject) => {
      const onAbort = () => {
        emitter.off("drain", onDrain);
        reject(signal.reason);
      };
      const onDrain = () => {
        signal.removeEventListener("abort", onAbort);
        resolve();
      };
      emitter.once("drain", onDrain);
      signal.addEventListener("abort", onAbort, { once: true });
    });
  // The direct path once pre-encoded frames may take it. Kept while only such frames are
  // written directly: grpc-js then holds nothing that could come after them.
  let direct: DirectPath | undefined;
  const trySend = (msg: MessageInitShape<O> | Encoded): Promise<void> | undefined => {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (msg instanceof Encoded) {
      direct ??= directPath(call);
      if (direct) {
        const taken = writeDirect(direct, msg);
        if (taken !== undefined) return taken ? undefined : waitFor(direct.stream);
      }
      // Not taken (the stream is ending, or the message is over the max send size, which
      // grpc-js then refuses itself): grpc-js now holds a message, so the path is checked
      // again before the next frame.
      direct = undefined;
      return call.write(msg) ? undefined : waitFor(call);
    }
    direct = undefined;
    return call.write(create(schema, msg)) ? undefined : waitFor(call);
  };
  return {
    trySend,
    send: (msg) => trySend(msg) ?? Promise.resolve(),
  };
}
