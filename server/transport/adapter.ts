/**
 * Binds async implementations of generated services to grpc-js. grpc-js only catches
 * synchronous throws from handlers; a rejected promise would be unhandled and kill the
 * process (grpc-node server.ts). Every handler here awaits the implementation and answers
 * exactly once, mapping errors through status.ts.
 *
 * The per-call context (auth, deadline, cancel) is call-context.ts; the writer streaming
 * handlers send with is stream-writer.ts, and its direct HTTP/2 path is direct-write.ts.
 */
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
  UntypedServiceImplementation,
} from "@grpc/grpc-js";
import { Encoded, serviceDefinition } from "../../proto/adapter.js";
import type { BindOptions, CallContext, StartedCall } from "./call-context.js";
import { startCall } from "./call-context.js";
import type { GrpcServerStream } from "./direct-write.js";
import { checkedDeserializer, RejectedRequest } from "./request-check.js";
import type { ServerStream } from "./stream-writer.js";
import { createServerStream } from "./stream-writer.js";

// server.ts configures the adapter through these; they live with the per-call context.
export type { BindOptions, FinishInfo } from "./call-context.js";

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

function unary(
  method: DescMethod,
  fn: AnyFn,
  opts: BindOptions,
): handleUnaryCall<unknown, unknown> {
  return (call, callback) => {
    const s = startCall(method, call, call.request, opts);
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

/** Ends a stream once its handler settles: OK, or the mapped error as its status. */
function endStream(call: GrpcServerStream, s: StartedCall, err?: unknown) {
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
    const s = startCall(method, call, call.request, opts);
    if ("error" in s) {
      call.emit("error", s.error.error);
      return;
    }
    fn(call.request, s.ctx, createServerStream(method.output, call, s.ctx.signal)).then(
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
    const s = startCall(method, call, undefined, opts);
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
    fn(requests, s.ctx, createServerStream(method.output, call, s.ctx.signal)).then(
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
