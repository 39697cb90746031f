/**
 * The idle bound of guardConnections on a plain Node HTTP/2 server, under the condition that
 * made grpc-js's own bound double in CI: the event loop busy when the session starts (its
 * cached time stale), here a 60 ms busy-wait in a 'session' listener that runs first.
 */
import { createServer, type Http2Session } from "node:http2";
import { connect, type Socket } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { createLogger } from "../logger.js";
import { guardConnections } from "./connections.js";

const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);
const IDLE_MS = 400;
const servers: ReturnType<typeof createServer>[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(): Promise<number> {
  const h2 = createServer();
  servers.push(h2);
  h2.prependListener("session", (_s: Http2Session) => {
    const t = Date.now();
    while (Date.now() - t < 60) {
      // a loaded loop: the session starts late in a long iteration
    }
  });
  guardConnections(h2, {
    handshakeTimeoutMs: 5_000,
    idleTimeoutMs: IDLE_MS,
    log: createLogger({ level: "silent" }),
  });
  h2.on("stream", (stream) => {
    stream.respond({ ":status": 200 });
    stream.end("ok");
  });
  await new Promise<void>((r) => h2.listen(0, "127.0.0.1", () => r()));
  return (h2.address() as { port: number }).port;
}

/** Opens a raw HTTP/2 connection (preface + SETTINGS) and resolves when the server closes it. */
function closedAfter(port: number): Promise<number> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const s: Socket = connect(port, "127.0.0.1", () => s.write(Buffer.concat([PREFACE, SETTINGS])));
    s.on("data", () => {});
    s.on("error", () => {});
    s.on("close", () => resolve(performance.now() - t0));
    setTimeout(() => s.destroy(), 5_000).unref();
  });
}

describe("guardConnections: idle bound", () => {
  it("closes a session with no stream after the bound, not twice it, on a loaded loop", async () => {
    const port = await serve();
    const times = await Promise.all([closedAfter(port), closedAfter(port), closedAfter(port)]);
    for (const ms of times) {
      expect(ms).toBeGreaterThanOrEqual(IDLE_MS - 5);
      expect(ms).toBeLessThan(IDLE_MS * 1.75);
    }
  });
});
