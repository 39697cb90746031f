import { status } from "@grpc/grpc-js";
import { afterEach, describe, expect, it } from "vitest";
import { ClientError } from "../client/errors.js";
import type { ClientOptions, VmAuthClient } from "../client/index.js";
import type { Logger } from "../common/logger.js";
import { ShimConfigError } from "./config.js";
import {
  type AckRequest,
  createSource,
  type EnvSnapshot,
  type SourceHandlers,
  type SourceOptions,
} from "./source.js";

type Frame = {
  event:
    | { case: "snapshot"; value: EnvSnapshot }
    | { case: "heartbeat"; value: { revision: bigint } };
};
type Script = (req: Record<string, unknown>, signal: AbortSignal) => AsyncIterable<Frame>;

/** A stream that fails at once with `make()`. */
const failing =
  (make: () => Error): Script =>
  () => ({ [Symbol.asyncIterator]: () => ({ next: () => Promise.reject(make()) }) });

const unavailable = () =>
  new ClientError("unavailable", status.UNAVAILABLE, "connect ECONNREFUSED", undefined, undefined);
const unauthenticated = (m = "authorization: token revoked") =>
  new ClientError("unauthenticated", status.UNAUTHENTICATED, m, undefined, undefined);
const hb = (revision: bigint): Frame => ({ event: { case: "heartbeat", value: { revision } } });
const snapFrame = (revision: bigint): Frame => ({
  event: {
    case: "snapshot",
    value: { vm: "", revision, digest: `d${revision}`, vars: [] } as unknown as EnvSnapshot,
  },
});

/** Blocks like an open stream until aborted, then fails as the real client does. */
async function hang(signal: AbortSignal): Promise<never> {
  await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
  throw new ClientError("cancelled", status.CANCELLED, "Cancelled on client", undefined, undefined);
}

interface Harness {
  logs: { level: string; msg: string; meta: Record<string, unknown> }[];
  requests: Record<string, unknown>[];
  connects: ClientOptions[];
  states: string[];
  acks: AckRequest[];
  closed: number;
}

const running: AbortController[] = [];
afterEach(() => {
  for (const ac of running.splice(0)) ac.abort();
});

function harness(
  scripts: Script[],
  over: Partial<SourceOptions> = {},
  handlers: Partial<SourceHandlers> = {},
) {
  const h: Harness = { logs: [], requests: [], connects: [], states: [], acks: [], closed: 0 };
  const log: Logger = Object.fromEntries(
    (["debug", "info", "warn", "error"] as const).map((level) => [
      level,
      (msg: string, meta: Record<string, unknown> = {}) => h.logs.push({ level, msg, meta }),
    ]),
  ) as unknown as Logger;
  let n = 0;
  const connect = (opts: ClientOptions): VmAuthClient => {
    h.connects.push(opts);
    const script = scripts[Math.min(n++, scripts.length - 1)] as Script;
    return {
      env: {
        watchEnv: (req: Record<string, unknown>, o: { signal: AbortSignal }) => {
          h.requests.push(req);
          return script(req, o.signal);
        },
        ackEnv: async (req: AckRequest) => {
          h.acks.push(req);
          return {};
        },
      },
      close: () => {
        h.closed++;
      },
    } as unknown as VmAuthClient;
  };
  const source = createSource({
    server: "127.0.0.1:1",
    tls: false,
    keepalive: { timeMs: 1000, timeoutMs: 500 },
    heartbeatMs: 1000,
    backoff: { initialMs: 20, maxMs: 100 },
    clientVersion: "test/1",
    token: () => "vmat_x",
    log,
    connect,
    random: () => 0.5,
    ...over,
  });
  const ac = new AbortController();
  running.push(ac);
  const snapshots: EnvSnapshot[] = [];
  const done = source.run(ac.signal, {
    cursor: () => ({ revision: 7n, digest: "d7" }),
    onSnapshot: async (s) => {
      snapshots.push(s);
    },
    onState: (s) => h.states.push(s),
    ...handlers,
  });
  const until = async (pred: () => boolean, ms = 3000) => {
    const end = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > end) throw new Error(`timed out; logs: ${JSON.stringify(h.logs)}`);
      await new Promise((r) => setTimeout(r, 5));
    }
  };
  const retries = () => h.logs.filter((l) => "retryInMs" in l.meta).map((l) => l.meta.retryInMs);
  return { h, source, ac, done, snapshots, until, retries };
}

describe("createSource", () => {
  it("sends the cursor and client version, keepalive options, a fresh subchannel per attempt", async () => {
    const t = harness([
      async function* () {
        yield snapFrame(8n);
        yield hb(9n);
        throw unavailable();
      },
    ]);
    await t.until(() => t.h.requests.length >= 2);
    expect(t.h.requests[0]).toEqual({
      sinceRevision: 7n,
      appliedDigest: "d7",
      clientVersion: "test/1",
    });
    expect(t.h.connects[0]).toMatchObject({
      server: "127.0.0.1:1",
      token: "vmat_x",
      tls: false,
      channelOptions: {
        "grpc.keepalive_time_ms": 1000,
        "grpc.keepalive_timeout_ms": 500,
        "grpc.keepalive_permit_without_calls": 1,
        "grpc.use_local_subchannel_pool": 1,
      },
    });
    expect(t.snapshots.map((s) => s.revision)).toContain(8n);
    expect(t.h.states.slice(0, 3)).toEqual(["connecting", "connected", "disconnected"]);
    expect(t.h.closed).toBeGreaterThanOrEqual(1);
  });

  it("capped exponential backoff with jitter; a frame resets it", async () => {
    let attempt = 0;
    const t = harness([
      async function* () {
        attempt++;
        if (attempt === 6) yield hb(1n); // healthy: the next delay starts over
        throw unavailable();
      },
    ]);
    await t.until(() => t.retries().length >= 8);
    // random() = 0.5 → half of min(100, 20·2^n)
    expect(t.retries().slice(0, 8)).toEqual([10, 20, 40, 50, 50, 10, 20, 40]);
    // One warning for the outage; the repeats are debug.
    expect(t.h.logs.filter((l) => l.level === "warn")).toHaveLength(2);
  });

  it("UNAUTHENTICATED: error logged once per distinct error, retried at max backoff, state set", async () => {
    let attempt = 0;
    const t = harness([
      failing(() =>
        unauthenticated(
          ++attempt < 3 ? "authorization: token revoked" : "authorization: invalid token",
        ),
      ),
    ]);
    await t.until(() => t.retries().length >= 4, 5000);
    expect(t.retries().slice(0, 4)).toEqual([100, 100, 100, 100]);
    const errors = t.h.logs.filter((l) => l.level === "error");
    expect(errors.map((e) => e.meta.error)).toEqual([
      "authorization: token revoked",
      "authorization: invalid token",
    ]);
    expect(errors[0]?.meta.code).toBe("unauthenticated");
    expect(t.h.states).toEqual(["connecting", "unauthenticated"]);
  });

  it("PERMISSION_DENIED and an unusable token file count as auth problems too", async () => {
    const t = harness(
      [
        failing(
          () =>
            new ClientError(
              "permission_denied",
              status.PERMISSION_DENIED,
              "no",
              undefined,
              undefined,
            ),
        ),
      ],
      {
        token: (() => {
          let n = 0;
          return () => {
            if (n++ === 0) throw new ShimConfigError("tokenFile: /x has mode 0644");
            return "vmat_x";
          };
        })(),
      },
    );
    await t.until(() => t.retries().length >= 2, 5000);
    expect(t.retries().slice(0, 2)).toEqual([100, 100]);
    expect(t.h.logs.filter((l) => l.level === "error").map((l) => l.meta.code)).toEqual([
      "token_file",
      "permission_denied",
    ]);
    // The token is read per attempt: the first attempt never connected.
    expect(t.h.connects.length).toBe(t.h.requests.length);
  });

  it("watchdog: no frame for 3× the heartbeat interval → reconnect", async () => {
    let attempt = 0;
    const t = harness(
      [
        async function* (_req, signal) {
          attempt++;
          yield hb(1n);
          if (attempt === 1) await hang(signal);
          await hang(signal);
        },
      ],
      { heartbeatMs: 30 },
    );
    const t0 = Date.now();
    await t.until(() => t.h.requests.length >= 2);
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(85);
    expect(took).toBeLessThan(1000);
    expect(t.h.logs.find((l) => l.level === "warn")?.meta).toMatchObject({
      code: "watchdog",
      error: "no frame from the server for 90 ms",
    });
  });

  it("watchdog follows the interval the server announces, not the configured one", async () => {
    const t = harness(
      [
        async function* (_req, signal) {
          yield {
            event: { case: "heartbeat", value: { revision: 1n, intervalMs: 20 } },
          } as unknown as Frame;
          await hang(signal);
        },
      ],
      { heartbeatMs: 60_000 },
    );
    const t0 = Date.now();
    await t.until(() => t.h.requests.length >= 2);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(t.h.logs.find((l) => l.level === "warn")?.meta).toMatchObject({
      code: "watchdog",
      error: "no frame from the server for 60 ms",
    });
  });

  it("a failing apply ends the stream and reconnects (the server re-sends)", async () => {
    let applied = 0;
    const t = harness(
      [
        async function* (_req, signal) {
          yield snapFrame(8n);
          await hang(signal);
        },
      ],
      {},
      {
        onSnapshot: async () => {
          applied++;
          throw new Error("ENOSPC");
        },
      },
    );
    await t.until(() => applied >= 2);
    expect(t.h.logs.find((l) => l.level === "warn")?.meta).toMatchObject({
      code: "ApplyError",
      error: "ENOSPC",
    });
  });

  it("ack goes over the open stream's client; one made while down is sent on reconnect", async () => {
    let attempt = 0;
    let release = () => {};
    const t = harness([
      async function* (_req, signal) {
        if (++attempt === 1) {
          // Down until released.
          await new Promise<void>((r) => {
            release = r;
          });
          throw unavailable();
        }
        yield hb(1n);
        await hang(signal);
      },
    ]);
    await t.until(() => t.h.requests.length === 1);
    expect(await t.source.ack({ revision: 1n })).toBe(false);
    expect(await t.source.ack({ revision: 2n })).toBe(false); // only the newest is kept
    release();
    await t.until(() => t.h.acks.length === 1);
    expect(t.h.acks).toEqual([{ revision: 2n }]);
    expect(await t.source.ack({ revision: 3n })).toBe(true);
    expect(t.h.acks).toEqual([{ revision: 2n }, { revision: 3n }]);
    t.ac.abort();
    await t.done; // run() resolves on abort
    expect(await t.source.ack({ revision: 4n })).toBe(false);
  });
});
