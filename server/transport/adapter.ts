/**
 * Binds async implementations of generated services to grpc-js. grpc-js only catches
 * synchronous throws from handlers; a rejected promise would be unhandled and kill the
 * process (grpc-node server.ts). Every handler here awaits the implementation and answers
 * exactly once, mapping errors through status.ts.
 */

import { Writable } from "node:stream";
import type {
  DescMessage,
  DescMethod,
  DescService,
  MessageInitShape,
  MessageShape,
} from "@bufbuild/protobuf";
import { create } from "@bufbuild/protobuf";
import type { GenService, GenServiceMethods } from "@bufbuild/protobuf/codegenv2";
import type {
  handleBidiStreamingCall,
  handleServerStreamingCall,
  handleUnaryCall,
  Metadata,
  ServerDuplexStream,
  ServerWritableStream,
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { Encoded, serviceDefinition } from "../../proto/adapter.js";
import type { Logger } from "../logger.js";
import type { Caller } from "../secrets/caller.js";
import { checkedDeserializer, RejectedRequest } from "./request-check.js";
import type { MappedError } from "./status.js";
import { toServiceError } from "./status.js";

/** What every handler gets besides its request. */
export interface CallContext {
  /** Aborts on client cancel, deadline and daemon shutdown. */
  readonly signal: AbortSignal;
  readonly caller: Caller;
  readonly requestId: string;
  readonly method: string;
  readonly log: Logger;
}

/** A writable server stream; `send` resolves when the transport can take more. */
export interface ServerStream<O extends DescMessage> {
  send(msg: MessageInitShape<O> | Encoded): Promise<void>;
  /**
   * Writes like send, for fan-out loops: undefined when the transport took the message
   * without back-pressure (no promise made), else a promise that settles on drain.
   */
  trySend(msg: MessageInitShape<O> | Encoded): Promise<void> | undefined;
}

type Impl<M> = M extends { methodKind: "unary"; input: infer I; output: infer O }
  ? I extends DescMessage
    ? O extends DescMessage
      ? (req: MessageShape<I>, ctx: CallContext) => Promise<MessageInitShape<O> | Encoded>
      : never
    : never
  : M extends { methodKind: "server_streaming"; input: infer I; output: infer O }
    ? I extends DescMessage
      ? O extends DescMessage
        ? (req: MessageShape<I>, ctx: CallContext, stream: ServerStream<O>) => Promise<void>
        : never
      : never
    : M extends { methodKind: "bidi_streaming"; input: infer I; output: infer O }
      ? I extends DescMessage
        ? O extends DescMessage
          ? (
              reqs: AsyncIterable<MessageShape<I>>,
              ctx: CallContext,
              stream: ServerStream<O>,
            ) => Promise<void>
          : never
        : never
      : never;

/** An implementation of every method of a generated service: a missing RPC fails to compile. */
export type ServiceImpl<S> =
  S extends GenService<infer R extends GenServiceMethods> ? { [K in keyof R]: Impl<R[K]> } : never;

/** What `onFinish` hears about each call, once. */
export interface FinishInfo {
  method: DescMethod;
  /** Undefined when authentication failed (or was refused before it was tried). */
  caller: Caller | undefined;
  /** "ok", the domain error code, or the status name for aborts. */
  result: string;
  requestId: string;
  /** Refused before the handler ran: by authenticate, authorize, or the request check. */
  refused: boolean;
  /** The answer's message when the call failed (never a value or token: status.ts). */
  message?: string;
  /** The peer's address as grpc-js gives it (`ip:port`, or the socket path). */
  peer(): string;
}

/** Per-server policy: how a call's metadata becomes a Caller (throws UNAUTHENTICATED etc). */
export interface BindOptions {
  /** `peer` is read only when needed (the unix socket's policy never does). */
  authenticate(metadata: Metadata, method: DescMethod, peer: () => string): Caller;
  /** Throws PERMISSION_DENIED when `caller` may not call `method`. */
  authorize?(caller: Caller, method: DescMethod): void;
  /** Called once per finished call, for access logging and auditing of refused calls. */
  onFinish?(info: FinishInfo): void;
  /** Aborts the signal of every call in flight (forced shutdown). */
  shutdown: AbortSignal;
  log: Logger;
}

/** Builds the grpc-js service definition and implementation of one generated service. */
export function bindService<S extends DescService>(
  service: S,
  impl: ServiceImpl<S>,
  opts: BindOptions,
): { definition: ReturnType<typeof serviceDefinition>; handlers: UntypedServiceImplementation } {
  const handlers: UntypedServiceImplementation = {};
  const table = impl as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
  for (const method of service.methods) {
    const fn = table[method.localName];
    if (typeof fn !== "function") throw new Error(`no implementation for ${method.name}`);
    handlers[method.localName] = bindMethod(method, fn.bind(impl), opts);
  }
  const definition = serviceDefinition(service);
  // Requests are decoded and bounds-checked before any handler sees them (request-check.ts).
  for (const method of service.methods) {
    const def = definition[method.localName];
    if (def) def.requestDeserialize = checkedDeserializer(method.input);
  }
  return { definition, handlers };
}

// --- internal ---

let requestSeq = 0;

type AnyFn = (...args: unknown[]) => Promise<unknown>;

function bindMethod(method: DescMethod, fn: AnyFn, opts: BindOptions) {
  switch (method.methodKind) {
    case "unary":
      return unary(method, fn, opts);
    case "server_streaming":
      return serverStreaming(method, fn, opts);
    case "bidi_streaming":
      return bidi(method, fn, opts);
    case "client_streaming":
      throw new Error(`client streaming is not supported (${method.name})`);
  }
}

interface Started {
  ctx: CallContext;
  finish(err?: unknown): { mapped?: MappedError };
}

/** What start() reads of a grpc-js server call, whatever its kind. */
interface IncomingCall {
  readonly metadata: Metadata;
  getPeer(): string;
  getDeadline(): Date | number;
  on(event: "cancelled", listener: () => void): unknown;
}

/**
 * Authenticates and authorizes a call, then checks its request (when it has one: a bidi
 * call's requests are checked as they arrive), and builds its context; or answers why not.
 */
function start(
  method: DescMethod,
  call: IncomingCall,
  request: unknown,
  opts: BindOptions,
): Started | { error: MappedError } {
  const metadata = call.metadata;
  const incoming = metadata.get("x-request-id")[0];
  const requestId =
    typeof incoming === "string" && /^[\w.-]{1,64}$/.test(incoming)
      ? incoming
      : `r${process.pid.toString(36)}-${(++requestSeq).toString(36)}`;
  let log: Logger | undefined;
  const getLog = () => {
    log ??= opts.log.child({ requestId, method: method.name });
    return log;
  };
  const peer = () => call.getPeer();
  let caller: Caller | undefined;
  try {
    caller = opts.authenticate(metadata, method, peer);
    opts.authorize?.(caller, method);
    // Only an authenticated caller learns whether its request was well formed.
    if (request instanceof RejectedRequest) throw request.error;
  } catch (err) {
    const mapped = toServiceError(err, requestId);
    if (mapped.unexpected) getLog().error("call failed", { err });
    const message = mapped.error.details ?? "";
    opts.onFinish?.({
      method,
      caller,
      result: mapped.result,
      requestId,
      refused: true,
      message,
      peer,
    });
    return { error: mapped };
  }
  const deadline = deadlineOf(call);
  // The signal, its deadline timer and its shutdown listener are made only for handlers that
  // read ctx.signal (streams, waits): most unary calls never do, and on the GetEnv path they
  // were a measurable share of the per-call cost. grpc-js enforces deadlines by itself.
  let ac: AbortController | undefined;
  let cancelled = false;
  let timer: NodeJS.Timeout | undefined;
  let done = false;
  const abort = (reason: () => unknown) => {
    if (done) return;
    if (!ac) cancelled = true;
    else if (!ac.signal.aborted) ac.abort(reason());
  };
  const onShutdown = () => abort(() => new DOMException("shutdown", "AbortError"));
  call.on("cancelled", () => abort(() => new DOMException("cancelled", "AbortError")));
  const signal = (): AbortSignal => {
    if (ac) return ac.signal;
    ac = new AbortController();
    if (cancelled) ac.abort(new DOMException("cancelled", "AbortError"));
    opts.shutdown.addEventListener("abort", onShutdown, { once: true });
    if (opts.shutdown.aborted) onShutdown();
    if (deadline !== undefined && Number.isFinite(deadline)) {
      const ms = Math.max(0, deadline - Date.now());
      timer = setTimeout(() => abort(() => new DOMException("deadline", "TimeoutError")), ms);
      timer.unref();
    }
    return ac.signal;
  };
  const known: Caller = caller;
  const ctx: CallContext = {
    get signal() {
      return signal();
    },
    caller: known,
    requestId,
    method: method.name,
    get log() {
      return getLog();
    },
  };
  return {
    ctx,
    finish(err?: unknown) {
      if (done) return {};
      done = true;
      if (timer) clearTimeout(timer);
      if (ac) opts.shutdown.removeEventListener("abort", onShutdown);
      if (err === undefined) {
        opts.onFinish?.({ method, caller: known, result: "ok", requestId, refused: false, peer });
        return {};
      }
      const mapped = toServiceError(err, requestId, ac?.signal);
      if (mapped.unexpected) getLog().error("call failed", { err });
      const message = mapped.error.details ?? "";
      const result = mapped.result;
      opts.onFinish?.({ method, caller: known, result, requestId, refused: false, message, peer });
      return { mapped };
    },
  };
}

function deadlineOf(call: { getDeadline(): Date | number }): number | undefined {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(ms) ? ms : undefined;
}

function unary(
  method: DescMethod,
  fn: AnyFn,
  opts: BindOptions,
): handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const s = start(method, call, call.request, opts);
    if ("error" in s) {
      callback(s.error.error);
      return;
    }
    fn(call.request, s.ctx).then(
      (init) => {
        let res: unknown;
        try {
          res =
            init instanceof Encoded
              ? init
              : create(method.output, init as MessageInitShape<DescMessage>);
        } catch (err) {
          callback(s.finish(err).mapped?.error ?? null);
          return;
        }
        s.finish();
        callback(null, res);
      },
      (err: unknown) => {
        const { mapped } = s.finish(err);
        if (mapped) callback(mapped.error);
      },
    );
  };
}

function writer<O extends DescMessage>(
  schema: O,
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
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
  // The HTTP/2 stream once pre-encoded frames may go to it directly (see directStream). Kept
  // while only such frames are written: grpc-js then holds nothing that could come after them.
  let direct: Writable | undefined;
  const trySend = (msg: MessageInitShape<O> | Encoded): Promise<void> | undefined => {
    if (signal.aborted) return Promise.reject(signal.reason);
    if (msg instanceof Encoded) {
      direct ??= directStream(call);
      // `writable` is false once the stream is ending, errored or destroyed: grpc-js ended the
      // call (deadline) or the peer reset it, and the abort that follows is a tick away.
      if (direct?.writable) {
        directWrites.count++;
        return direct.write(msg.framed) ? undefined : waitFor(direct);
      }
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

/** How many frames went straight to an HTTP/2 stream (tests check the fast path is taken). */
export const directWrites = { count: 0 };

/**
 * What the fan-out fast path reads of grpc-js (1.14) internals: with no server interceptors,
 * a call's `call` is its BaseServerInterceptingCall, which holds the HTTP/2 stream and
 * whether the response headers went out. Checked on every write; any other shape (another
 * grpc-js version, interceptors) falls back to call.write.
 */
interface GrpcJsCallInternals {
  call?: { stream?: unknown; metadataSent?: unknown };
}

/**
 * The call's HTTP/2 stream when a pre-framed message may be written to it directly, skipping
 * grpc-js's per-message work (serialise, allocate and copy a frame, two Writable layers):
 * the same frame bytes then go to every stream of a fan-out. Only once grpc-js has sent the
 * response headers, while the stream is open, and while grpc-js holds no message of its own
 * that has not reached the HTTP/2 stream (objectMode: the one in `_write` is already there),
 * so frames stay in order and grpc-js still ends the call (trailers after our frames).
 */
function directStream(
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
): Writable | undefined {
  const base = (call as unknown as GrpcJsCallInternals).call;
  const h2 = base?.stream;
  if (base?.metadataSent !== true || !(h2 instanceof Writable) || !h2.writable) return undefined;
  if (call.writableEnded || call.writableLength > 1) return undefined;
  return h2;
}

function endStream(
  call: ServerWritableStream<unknown, unknown> | ServerDuplexStream<unknown, unknown>,
  s: Started,
  err?: unknown,
) {
  const { mapped } = s.finish(err);
  if (err === undefined) {
    call.end();
  } else if (mapped) {
    call.emit("error", mapped.error);
  }
}

function serverStreaming(
  method: DescMethod,
  fn: AnyFn,
  opts: BindOptions,
): handleServerStreamingCall<unknown, unknown> {
  return (call) => {
    const s = start(method, call, call.request, opts);
    if ("error" in s) {
      call.emit("error", s.error.error);
      return;
    }
    fn(call.request, s.ctx, writer(method.output, call, s.ctx.signal)).then(
      () => endStream(call, s),
      (err: unknown) => endStream(call, s, err),
    );
  };
}

function bidi(
  method: DescMethod,
  fn: AnyFn,
  opts: BindOptions,
): handleBidiStreamingCall<unknown, unknown> {
  return (call) => {
    const s = start(method, call, undefined, opts);
    if ("error" in s) {
      call.emit("error", s.error.error);
      return;
    }
    // A plain `for await` over the Duplex destroys it when the loop ends, and a destroyed
    // call can no longer send its status: iterate without destroying.
    const requests = untilAborted(
      call.iterator({ destroyOnReturn: false }) as AsyncIterable<unknown>,
      s.ctx.signal,
    );
    fn(requests, s.ctx, writer(method.output, call, s.ctx.signal)).then(
      () => endStream(call, s),
      (err: unknown) => endStream(call, s, err),
    );
  };
}

/**
 * Ends a request stream when the call is cancelled, so a handler looping over it returns;
 * a request the transport refused (request-check.ts) ends it with that request's error.
 */
async function* untilAborted<T>(source: AsyncIterable<T>, signal: AbortSignal): AsyncGenerator<T> {
  const it = source[Symbol.asyncIterator]();
  const aborted = new Promise<IteratorResult<T>>((resolve) => {
    if (signal.aborted) resolve({ done: true, value: undefined });
    signal.addEventListener("abort", () => resolve({ done: true, value: undefined }), {
      once: true,
    });
  });
  try {
    for (;;) {
      const next = await Promise.race([it.next(), aborted]);
      if (next.done) return;
      if (next.value instanceof RejectedRequest) throw next.value.error;
      yield next.value;
    }
  } finally {
    await it.return?.();
  }
}
