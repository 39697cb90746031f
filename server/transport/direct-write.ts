/**
 * The direct HTTP/2 write path of server streams: a pre-encoded message's frame
 * (`Encoded.framed`, built once) is written straight to the call's HTTP/2 stream, skipping
 * grpc-js's per-message work (serialise, allocate and copy a frame, two Writable layers), so
 * the same frame bytes go to every stream of a fan-out (DESIGN.md: per-stream work doubles
 * the server's loop).
 *
 * It reads grpc-js internals, pinned to GRPC_JS_VERSION (grpc-internals.ts, the exact version
 * in package.json): with no server interceptors, a grpc-js server stream's `call` is its
 * BaseServerInterceptingCall (server-interceptors.ts), which holds the HTTP/2 `stream`,
 * whether the response headers went out (`metadataSent`), and the call's
 * `grpc.max_send_message_length` (`maxSendMessageSize`, -1 for none). The shape is checked on
 * each stream until it fits; anything else (another grpc-js version, interceptors) gives
 * undefined and the writer falls back to `call.write`. adapter-stream.test.ts and
 * direct-write.test.ts pin the behaviour over real sockets, so an upgrade that moves these
 * fields fails a test.
 */
import { Writable } from "node:stream";
import type { ServerDuplexStream, ServerWritableStream } from "@grpc/grpc-js";
import type { Encoded } from "../../proto/adapter.js";

/** A grpc-js server call that writes a stream of responses. */
export type GrpcServerStream =
  | ServerWritableStream<unknown, unknown>
  | ServerDuplexStream<unknown, unknown>;

/** How many frames went straight to an HTTP/2 stream (tests check the fast path is taken). */
export const directWrites = { count: 0 };

/** A call's HTTP/2 stream that frames may be written to, and the call's send limit. */
export interface DirectPath {
  readonly stream: Writable;
  /** grpc-js's max send message size for the call, in message bytes; -1 for no limit. */
  readonly maxSendMessageSize: number;
}

/**
 * The call's direct path when pre-encoded frames may be written to its HTTP/2 stream: only
 * once grpc-js has sent the response headers, while the stream is open, and while grpc-js
 * holds no message of its own that has not reached the HTTP/2 stream (objectMode: the one
 * in `_write` is already there), so frames stay in order and grpc-js still ends the call
 * (trailers after our frames). Undefined otherwise, or when grpc-js's shape is not the
 * pinned one.
 */
export function directPath(call: GrpcServerStream): DirectPath | undefined {
  const base = (call as unknown as GrpcJsCallInternals).call;
  const h2 = base?.stream;
  const max = base?.maxSendMessageSize;
  if (base?.metadataSent !== true || !(h2 instanceof Writable) || !h2.writable) return undefined;
  if (typeof max !== "number") return undefined;
  if (call.writableEnded || call.writableLength > 1) return undefined;
  return { stream: h2, maxSendMessageSize: max };
}

/**
 * Writes `msg`'s frame to the path's stream. Returns true when it was taken without
 * back-pressure, false when it was taken and the writer must wait for "drain", and
 * undefined when it was not taken and must go to `call.write`:
 * - the stream is no longer writable (`writable` is false once it is ending, errored or
 *   destroyed: grpc-js ended the call, or the peer reset it, and the abort that follows is
 *   a tick away);
 * - the message is over the call's max send size. grpc-js then refuses it as it refuses its
 *   own (server-interceptors.ts sendMessage: RESOURCE_EXHAUSTED "Sent message larger than
 *   max (<frame> vs. <max>)", the call ended), with the same test: `-1` means no limit, and
 *   the limit counts message bytes, not the 5-byte frame header.
 */
export function writeDirect(path: DirectPath, msg: Encoded): boolean | undefined {
  if (!path.stream.writable) return undefined;
  const max = path.maxSendMessageSize;
  if (max !== -1 && msg.bytes.byteLength > max) return undefined;
  directWrites.count++;
  return path.stream.write(msg.framed);
}

// --- internal ---

/** What the direct path reads of a grpc-js 1.14 server stream; anything may be missing. */
interface GrpcJsCallInternals {
  call?: { stream?: unknown; metadataSent?: unknown; maxSendMessageSize?: unknown };
}
