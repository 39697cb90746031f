/**
 * The per-call context of the adapter (adapter.ts): authenticates and authorizes each call,
 * answers a refused one, and builds the `CallContext` a handler gets: the caller, a request
 * id, a logger, and a signal that aborts on client cancel, deadline and daemon shutdown.
 * `finish` reports the call's result to `onFinish` exactly once, whatever path ends it.
 */
import type { DescMethod } from "@bufbuild/protobuf";
import type { Metadata } from "@grpc/grpc-js";
import type { Logger } from "../logger.js";
import type { Caller } from "../secrets/caller.js";
import { RejectedRequest } from "./request-check.js";
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

/** A call that may run: its context, and `finish`, which the responder calls once it ends. */
export interface StartedCall {
  ctx: CallContext;
  /**
   * Reports the result to `onFinish` and releases the call's timer and listeners; the mapped
   * error to answer with when `err` is given. Only the first call does anything.
   */
  finish(err?: unknown): { mapped?: MappedError };
}

/** What startCall reads of a grpc-js server call, whatever its kind. */
export interface IncomingCall {
  readonly metadata: Metadata;
  getPeer(): string;
  getDeadline(): Date | number;
  on(event: "cancelled", listener: () => void): unknown;
}

/**
 * Authenticates and authorizes a call, then checks its request (when it has one: a bidi
 * call's requests are checked as they arrive), and builds its context; or returns the error
 * to answer with (already reported to `onFinish` as refused). Never throws.
 */
export function startCall(
  method: DescMethod,
  call: IncomingCall,
  request: unknown,
  opts: BindOptions,
): StartedCall | { error: MappedError } {
  const requestId = requestIdOf(call.metadata);
  let log: Logger | undefined;
  const getLog = () => {
    log ??= opts.log.child({ requestId, method: method.name });
    return log;
  };
  const peer = () => call.getPeer();
  let caller: Caller | undefined;
  try {
    caller = opts.authenticate(call.metadata, method, peer);
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

// --- internal ---

let requestSeq = 0;

/** The client's `x-request-id` when it is a sane token, else one of ours. */
function requestIdOf(metadata: Metadata): string {
  const incoming = metadata.get("x-request-id")[0];
  return typeof incoming === "string" && /^[\w.-]{1,64}$/.test(incoming)
    ? incoming
    : `r${process.pid.toString(36)}-${(++requestSeq).toString(36)}`;
}

function deadlineOf(call: { getDeadline(): Date | number }): number | undefined {
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(ms) ? ms : undefined;
}
