/**
 * Pins what grpc-internals.ts and connections.ts rely on, over real sockets: the exact
 * grpc-js version; that a bound grpc-js Server's HTTP/2 servers are reachable; that a raw
 * socket which never sends the preface is closed by the handshake bound while a real client
 * is served; and that Node hands the 'stream' listener the raw header list. The duplicate
 * `authorization` case end to end is in test/hostile.test.ts and test/isolation.test.ts.
 */
import { readFileSync } from "node:fs";
import http2 from "node:http2";
import { connect, Server as NetServer } from "node:net";
import { join } from "node:path";
import {
  Client,
  credentials,
  Metadata,
  Server,
  ServerCredentials,
  type ServiceError,
} from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SystemService } from "../../proto/gen/vmauth/v1/system_pb.js";
import { createLogger } from "../logger.js";
import { bindService } from "./adapter.js";
import { guardConnections } from "./connections.js";
import { GRPC_JS_VERSION, http2ServersOf } from "./grpc-internals.js";

const ROOT = join(import.meta.dirname, "../..");
const HANDSHAKE_MS = 300;

test("grpc-js is the exact version whose internals are read", () => {
  const installed = JSON.parse(
    readFileSync(join(ROOT, "node_modules/@grpc/grpc-js/package.json"), "utf8"),
  ) as { version: string };
  const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
    dependencies: Record<string, string>;
  };
  expect(installed.version).toBe(GRPC_JS_VERSION);
  expect(pkg.dependencies["@grpc/grpc-js"]).toBe(GRPC_JS_VERSION);
});

describe("a bound grpc-js Server", () => {
  let server: Server;
  let port: number;
  /** What authenticate saw of each call's Metadata. */
  const seen: { authorization: string[]; added: string[] }[] = [];
  beforeAll(async () => {
    server = new Server();
    const { definition, handlers } = bindService(
      SystemService,
      {
        async getStatus(_req, ctx) {
          return { caller: ctx.caller.kind };
        },
        async rotateMasterKey() {
          return {};
        },
        async listAuditEvents() {
          return { events: [] };
        },
      },
      {
        authenticate: (md) => {
          seen.push({
            authorization: md.get("authorization").map(String),
            added: md.get("x-added").map(String),
          });
          return { kind: "local" };
        },
        shutdown: new AbortController().signal,
        log: createLogger({ level: "silent" }),
      },
    );
    server.addService(definition, handlers);
    port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) =>
        err ? reject(err) : resolve(p),
      ),
    );
    const h2 = http2ServersOf(server);
    for (const s of h2 ?? [])
      guardConnections(s, {
        handshakeTimeoutMs: HANDSHAKE_MS,
        log: createLogger({ level: "silent" }),
      });
  });
  afterAll(() => server.forceShutdown());

  test("has its HTTP/2 servers in the private http2Servers map, listening on the port", () => {
    const h2 = http2ServersOf(server);
    expect(h2).toHaveLength(1);
    expect(h2?.[0]).toBeInstanceOf(NetServer);
    expect(h2?.[0]?.address()).toMatchObject({ port });
  });

  test("a socket that never sends the preface is closed after the handshake bound", async () => {
    const t0 = Date.now();
    const ms = await new Promise<number>((resolve) => {
      const s = connect(port, "127.0.0.1");
      s.on("data", () => {});
      s.on("error", () => {});
      s.on("close", () => resolve(Date.now() - t0));
    });
    expect(ms).toBeGreaterThanOrEqual(HANDSHAKE_MS - 20);
    expect(ms).toBeLessThan(HANDSHAKE_MS + 700);
  });

  test("an HTTP/2 client that completed the handshake is not closed by the bound", async () => {
    const session = http2.connect(`http://127.0.0.1:${port}`);
    let closed = false;
    session.on("close", () => {
      closed = true;
    });
    session.on("error", () => {});
    await new Promise<void>((resolve) => session.once("remoteSettings", () => resolve()));
    await new Promise((r) => setTimeout(r, HANDSHAKE_MS * 2));
    expect(closed).toBe(false);
    // Node hands 'stream' listeners the raw header list (the 4th argument), in which a
    // header Node's object keeps once appears as many times as it was sent.
    const req = session.request({
      ":method": "POST",
      ":path": "/vmauth.v1.SystemService/GetStatus",
      "content-type": "application/grpc",
      te: "trailers",
      authorization: "Bearer one",
    });
    req.end(Buffer.alloc(5));
    req.resume();
    await new Promise((resolve) => req.on("close", resolve));
    expect(seen.at(-1)?.authorization).toEqual(["Bearer one"]);
    session.close();
  });

  test("grpc-js builds a call's Metadata from the header object 'stream' listeners share", async () => {
    // What connections.ts does with a second authorization field, with a header of our own.
    const h2 = http2ServersOf(server)?.[0];
    const add = (_s: unknown, headers: Record<string, unknown>) => {
      headers["x-added"] = ["a", "b"];
    };
    h2?.prependListener("stream", add);
    const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
    try {
      const err = await new Promise<ServiceError | null>((resolve) =>
        client.makeUnaryRequest(
          "/vmauth.v1.SystemService/GetStatus",
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          new Metadata(),
          (e) => resolve(e),
        ),
      );
      expect(err).toBeNull();
      expect(seen.at(-1)?.added).toEqual(["a", "b"]);
    } finally {
      client.close();
      h2?.off("stream", add);
    }
  });
});
