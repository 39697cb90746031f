/**
 * The source: holds one WatchEnv stream to secretsd and hands every snapshot to the applier,
 * reconnecting forever. A connection attempt re-reads the token file (so a re-issued token is
 * picked up without a restart) and opens a fresh channel with its own subchannel, so that a
 * connection found dead is never reused. A dead server is noticed two ways: gRPC keepalive pings
 * (the transport) and a watchdog that reconnects when no frame (snapshot or heartbeat) came for
 * 3× the heartbeat interval (the application; also covers a server that accepts TCP but hangs).
 * Delays: capped exponential backoff with full jitter, reset once a stream delivered a frame.
 * UNAUTHENTICATED and PERMISSION_DENIED (and NOT_FOUND: the VM was deleted) are not outages:
 * they are logged at error level (once per distinct error) and retried at the maximum backoff.
 * The source never touches files. A little over 250 lines: the reconnect loop, the watchdog
 * and the error classes above are one state machine, read together.
 */
import type { ClientOptions, VmAuthClient } from "../client/index.js";
import { createClient, isClientError } from "../client/index.js";
import type { Logger } from "../common/logger.js";
import { type BackoffConfig, backoffDelay, sleep } from "./backoff.js";
import type { ConnectionState } from "./state.js";

type WatchEnvResponse =
  ReturnType<VmAuthClient["env"]["watchEnv"]> extends AsyncIterable<infer R> ? R : never;
/** A snapshot as it arrives on the stream (vm is "", digest set). */
export type EnvSnapshot = Extract<WatchEnvResponse["event"], { case: "snapshot" }>["value"];
/** What AckEnv takes. */
export type AckRequest = NonNullable<Parameters<VmAuthClient["env"]["ackEnv"]>[0]>;

/** What createSource needs: where the server is, how to reach it, and the token to show. */
export interface SourceOptions {
  server: string;
  tls: false | true | { readonly ca: string };
  keepalive: { readonly timeMs: number; readonly timeoutMs: number };
  heartbeatMs: number;
  backoff: BackoffConfig;
  clientVersion: string;
  /** Returns the token; called per attempt. A throw counts as an authentication problem. */
  token: () => string;
  log: Logger;
  /** @default createClient */
  connect?: (opts: ClientOptions) => VmAuthClient;
  /** @default Math.random */
  random?: () => number;
}

/** What `run` calls as frames arrive and the connection changes. */
export interface SourceHandlers {
  /** The revision and digest last applied (persisted), sent on each (re)connect. */
  cursor(): { revision: bigint; digest: string };
  /** Applies a snapshot; awaited before the next frame is read. A throw ends the stream. */
  onSnapshot(snapshot: EnvSnapshot): Promise<void>;
  onHeartbeat?(revision: bigint): void;
  /** Connection state changes (and the error that caused one, without values). */
  onState?(state: ConnectionState, error?: string): void;
}

/** One WatchEnv stream kept open, and the acks sent on it; made by createSource. */
export interface Source {
  /** Watches until `signal` aborts; never rejects. */
  run(signal: AbortSignal, handlers: SourceHandlers): Promise<void>;
  /**
   * Acks on the open stream's channel. Without one (or if the call fails) the newest ack is
   * kept and sent once a stream is up again; resolves whether it was sent now.
   */
  ack(req: AckRequest): Promise<boolean>;
}

/** Thrown into the loop when no frame came for 3× the heartbeat interval. */
export class WatchdogError extends Error {
  override readonly name = "WatchdogError";
}

/** An onSnapshot failure, kept apart from stream errors for the log. */
export class ApplyError extends Error {
  override readonly name = "ApplyError";
}

/** Creates the source; nothing connects until `run`. */
export function createSource(opts: SourceOptions): Source {
  const connect = opts.connect ?? createClient;
  // The server announces its heartbeat interval in the first frame of each stream; until
  // then, and with a server that does not, the configured interval applies.
  let watchdogMs = 3 * opts.heartbeatMs;
  let current: VmAuthClient | undefined;
  let unsent: AckRequest | undefined;

  const sendAck = async (c: VmAuthClient, req: AckRequest): Promise<boolean> => {
    try {
      await c.env.ackEnv(req, { deadlineMs: 5000 });
      if (unsent === req) unsent = undefined;
      return true;
    } catch (err) {
      opts.log.warn("ack failed; will send it again after reconnecting", {
        revision: req.revision,
        err,
      });
      return false;
    }
  };

  /** One connection attempt: resolves when the stream ends, with whether it was healthy. */
  async function attempt(
    signal: AbortSignal,
    h: SourceHandlers,
    onConnected: () => void,
  ): Promise<{ healthy: boolean; error: unknown }> {
    let token: string;
    try {
      token = opts.token();
    } catch (err) {
      return { healthy: false, error: err };
    }
    const client = connect({
      server: opts.server,
      token,
      tls: typeof opts.tls === "object" ? opts.tls.ca : opts.tls,
      channelOptions: {
        "grpc.keepalive_time_ms": opts.keepalive.timeMs,
        "grpc.keepalive_timeout_ms": opts.keepalive.timeoutMs,
        "grpc.keepalive_permit_without_calls": 1,
        // A fresh subchannel per attempt: the global pool could hand back the dead connection.
        "grpc.use_local_subchannel_pool": 1,
      },
    });
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    signal.addEventListener("abort", onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    let starved = false;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        starved = true;
        ac.abort();
      }, watchdogMs);
    };
    let healthy = false;
    try {
      const { revision, digest } = h.cursor();
      arm();
      const stream = client.env.watchEnv(
        { sinceRevision: revision, appliedDigest: digest, clientVersion: opts.clientVersion },
        { signal: ac.signal },
      );
      for await (const frame of stream) {
        arm();
        if (!healthy) {
          healthy = true;
          current = client;
          onConnected();
          if (unsent) void sendAck(client, unsent);
        }
        if (frame.event.case === "snapshot") {
          clearTimeout(timer);
          try {
            await h.onSnapshot(frame.event.value);
          } catch (err) {
            throw new ApplyError((err as Error).message);
          }
          arm();
        } else if (frame.event.case === "heartbeat") {
          const announced = frame.event.value.intervalMs;
          if (announced > 0 && 3 * announced !== watchdogMs) {
            watchdogMs = 3 * announced;
            arm();
          }
          h.onHeartbeat?.(frame.event.value.revision);
        }
      }
      return { healthy, error: new Error("the server ended the stream") };
    } catch (err) {
      const error = starved
        ? new WatchdogError(`no frame from the server for ${watchdogMs} ms`)
        : err;
      return { healthy, error };
    } finally {
      clearTimeout(timer);
      signal.removeEventListener("abort", onAbort);
      if (current === client) current = undefined;
      client.close();
    }
  }

  return {
    async run(signal, h) {
      let failures = 0;
      let state: ConnectionState | undefined;
      let lastProblem = "";
      const setState = (s: ConnectionState, error?: string) => {
        if (s === state) return;
        state = s;
        h.onState?.(s, error);
      };
      setState("connecting");
      while (!signal.aborted) {
        const { healthy, error } = await attempt(signal, h, () => {
          failures = 0;
          lastProblem = "";
          opts.log.info("connected", { server: opts.server });
          setState("connected");
        });
        if (signal.aborted) break;
        if (healthy) failures = 0;
        const p = classify(error);
        const delay = p.refused
          ? opts.backoff.maxMs
          : backoffDelay(failures++, opts.backoff, opts.random);
        const meta = { server: opts.server, code: p.code, error: p.message, retryInMs: delay };
        if (p.key !== lastProblem) {
          lastProblem = p.key;
          if (p.refused) {
            opts.log.error("refused by the server; keeping the files, retrying", meta);
          } else opts.log.warn("disconnected; keeping the files, retrying", meta);
        } else opts.log.debug("still failing", meta);
        setState(p.auth ? "unauthenticated" : "disconnected", `${p.code}: ${p.message}`);
        await sleep(delay, signal);
      }
    },

    async ack(req) {
      unsent = req;
      return current ? sendAck(current, req) : false;
    },
  };
}

// --- internal ---

interface Problem {
  /** The credentials were refused: state "unauthenticated". */
  auth: boolean;
  /** Not an outage, retrying soon will not help: error level, maximum backoff. */
  refused: boolean;
  code: string;
  message: string;
  /** Identity for "log once per distinct problem". */
  key: string;
}

function classify(err: unknown): Problem {
  if (isClientError(err)) {
    const auth = err.code === "unauthenticated" || err.code === "permission_denied";
    // not_found: the VM was deleted. invalid_argument: we sent something the server refuses.
    const refused = auth || err.code === "not_found" || err.code === "invalid_argument";
    // Outages repeat with varying detail (addresses, times): one log per code is enough.
    const key = refused ? `${err.code}:${err.message}` : err.code;
    return { auth, refused, code: err.code, message: err.message, key };
  }
  const e = err instanceof Error ? err : new Error(String(err));
  // A token file that cannot be used is an authentication problem, not an outage.
  const auth = e.name === "ShimConfigError";
  const code = auth ? "token_file" : e.name === "WatchdogError" ? "watchdog" : e.name;
  return {
    auth,
    refused: auth,
    code,
    message: e.message,
    key: auth ? `${code}:${e.message}` : code,
  };
}
