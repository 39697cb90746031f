/**
 * Hostile clients cannot hurt others (issue #8), against a real secretsd:
 * - request bytes written by hand: undecodable, a uint64 above 2^53−1, a uint32 of 2^32+1;
 * - two `authorization` headers; too many labels;
 * - 2,000 wrong tokens: throttled per peer, the audit file and the log grow by a bounded
 *   number of lines, and a good token from another peer (or the same one later) still works;
 * - handshake and idle timeouts, seen from a raw TCP socket;
 * - one VM's streams capped, whatever it opens.
 * The load test (many streams and half-open connections, RSS before and after) runs a
 * spawned daemon: test/hostile-load.test.ts.
 */
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { join } from "node:path";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { methodPath } from "../proto/adapter.js";
import { EnvService } from "../proto/gen/vmauth/v1/env_pb.js";
import { SecretService } from "../proto/gen/vmauth/v1/secrets_pb.js";
import { SystemService } from "../proto/gen/vmauth/v1/system_pb.js";
import { anyClient, bearer, callAny } from "./helpers/any-call.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon } from "./helpers/daemon.js";
import { startPeerProxy } from "./helpers/peer-proxy.js";
import { str, uint, wire } from "./helpers/proto-wire.js";
import { rawCall } from "./helpers/raw-h2.js";
import { secretValue } from "./helpers/values.js";

const auditLines = (d: TestDaemon) =>
  readFileSync(join(d.dataDir, "audit.log"), "utf8").split("\n").filter(Boolean);

describe("requests are checked before any use case sees them", () => {
  let d: TestDaemon;
  let admin: string;
  let vmToken: string;
  let tcp: ReturnType<typeof anyClient>;
  beforeAll(async () => {
    d = await startDaemon({ server: { authFailureLimit: 100_000 } });
    admin = (await d.client.access.createAdminToken({ name: "raw" })).token;
    vmToken = (await d.client.access.createVm({ name: "raw-vm" })).token;
    await d.client.secrets.createSecret({ name: "raw-secret", value: secretValue() });
    tcp = anyClient(d.tcp);
  });
  afterAll(async () => {
    tcp?.close();
    await d?.dispose();
  });

  test("undecodable bytes: INVALID_ARGUMENT, once the caller is authenticated", async () => {
    const bytes = Buffer.from([0x0a, 0x05, 0x61]); // a string of 5 bytes holding 1
    const getEnv = EnvService.method.getEnv;
    const a = await callAny(tcp, getEnv, bytes, bearer(admin));
    expect([status[a.code], a.message]).toEqual([
      "INVALID_ARGUMENT",
      "request: could not be decoded as vmauth.v1.GetEnvRequest",
    ]);
    const anon = await callAny(tcp, getEnv, bytes, bearer(undefined));
    expect(status[anon.code]).toBe("UNAUTHENTICATED");
  });

  test("WatchEnv since_revision 2^64−1: INVALID_ARGUMENT; ListVms keeps working", async () => {
    const bytes = wire(str(1, "raw-vm"), uint(2, 2n ** 64n - 1n));
    const a = await callAny(tcp, EnvService.method.watchEnv, bytes, bearer(vmToken));
    expect([status[a.code], a.message]).toEqual([
      "INVALID_ARGUMENT",
      "since_revision: 18446744073709551615 is out of range (at most 9007199254740991)",
    ]);
    const vms = await d.client.access.listVms({});
    expect(vms.vms.find((v) => v.name === "raw-vm")?.appliedRevision).toBe(0n);
  });

  test("AckEnv revision 2^63: INVALID_ARGUMENT naming revision", async () => {
    const bytes = wire(str(1, "raw-vm"), uint(2, 2n ** 63n));
    const a = await callAny(tcp, EnvService.method.ackEnv, bytes, bearer(vmToken));
    expect(status[a.code]).toBe("INVALID_ARGUMENT");
    expect(a.message).toMatch(/^revision: 9223372036854775808 is out of range/);
  });

  test("GetSecretValue version 2^32+1 is refused, not read as version 1", async () => {
    const method = SecretService.method.getSecretValue;
    const one = await callAny(tcp, method, wire(str(1, "raw-secret"), uint(2, 1n)), bearer(admin));
    expect(status[one.code]).toBe("OK");
    const wrapped = wire(str(1, "raw-secret"), uint(2, 2n ** 32n + 1n));
    const a = await callAny(tcp, method, wrapped, bearer(admin));
    expect([status[a.code], a.message]).toEqual([
      "INVALID_ARGUMENT",
      "version: 4294967297 is out of range (at most 4294967295)",
    ]);
    expect(a.response).toBeUndefined();
  });

  test("two authorization headers, even the same admin token twice: UNAUTHENTICATED", async () => {
    const a = await rawCall({
      target: d.tcp,
      path: methodPath(SystemService.method.getStatus),
      headers: [
        ["authorization", `Bearer ${admin}`],
        ["authorization", `Bearer ${admin}`],
      ],
      body: new Uint8Array(),
    });
    expect([status[a.code], a.message]).toEqual([
      "UNAUTHENTICATED",
      "authorization: more than one header",
    ]);
    const one = await rawCall({
      target: d.tcp,
      path: methodPath(SystemService.method.getStatus),
      headers: [["authorization", `Bearer ${admin}`]],
      body: new Uint8Array(),
    });
    expect(status[one.code]).toBe("OK");
  });

  test("at most 64 labels: a 65th is INVALID_ARGUMENT naming labels", async () => {
    const labels = (n: number) =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, "v"]));
    const s = d.client.secrets;
    await s.createSecret({ name: "many-labels", value: secretValue(), labels: labels(64) });
    await expect(
      s.createSecret({ name: "too-many", value: secretValue(), labels: labels(65) }),
    ).rejects.toMatchObject({
      code: "invalid_argument",
      field: "labels",
      message: "labels: 65 labels; the limit is 64",
    });
    await expect(
      s.updateSecret({ name: "many-labels", setLabels: true, labels: labels(65) }),
    ).rejects.toMatchObject({ code: "invalid_argument", field: "labels" });
  });
});

describe("failed authentication is throttled per peer and reported in bounded volume", () => {
  // One failure back every 300 ms: long enough that "right after a refusal" is still throttled.
  const LIMIT = 10;
  const WINDOW_MS = 3000;
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startDaemon({
      server: { authFailureLimit: LIMIT, authFailureWindowMs: WINDOW_MS },
    });
  });
  afterAll(async () => {
    await d?.dispose();
  });

  test("2,000 wrong tokens from one peer", async () => {
    const admin = (await d.client.access.createAdminToken({ name: "good" })).token;
    const proxy = await startPeerProxy(d.tcp, "127.0.0.2");
    const attacker = anyClient(d.tcp);
    const other = anyClient(proxy.address);
    try {
      const auditBefore = auditLines(d).length;
      const logsBefore = d.logs.length;
      const getStatus = SystemService.method.getStatus;
      const wrong = Array.from({ length: 2000 }, (_, i) => `vmadm_wrong${i}`);
      const codes: Record<string, number> = {};
      const messages = new Set<string>();
      const t0 = Date.now();
      for (let i = 0; i < wrong.length; i += 100) {
        const batch = wrong
          .slice(i, i + 100)
          .map((t) => callAny(attacker, getStatus, {}, bearer(t)));
        for (const a of await Promise.all(batch)) {
          codes[status[a.code]] = (codes[status[a.code]] ?? 0) + 1;
          if (a.code === status.RESOURCE_EXHAUSTED)
            messages.add(a.message.replace(/\d+ s$/, "N s"));
        }
      }
      const elapsed = Date.now() - t0;
      // The burst, plus what the bucket refilled while the hammering lasted.
      const allowance = LIMIT + Math.ceil((elapsed / WINDOW_MS) * LIMIT) + 1;
      expect(Object.keys(codes).sort()).toEqual(["RESOURCE_EXHAUSTED", "UNAUTHENTICATED"]);
      expect(codes.UNAUTHENTICATED).toBeLessThanOrEqual(allowance);
      expect([...messages]).toEqual([
        "authorization: too many failed authentications from 127.0.0.1; retry in N s",
      ]);

      // Throttled: even a good token from that peer waits. Another peer and the socket don't.
      // (A wrong token first, until refused, takes whatever the bucket refilled meanwhile.)
      while (
        (await callAny(attacker, getStatus, {}, bearer("vmadm_wrong"))).code ===
        status.UNAUTHENTICATED
      );
      const same = await callAny(attacker, getStatus, {}, bearer(admin));
      expect(status[same.code]).toBe("RESOURCE_EXHAUSTED");
      const fromOther = await callAny(other, getStatus, {}, bearer(admin));
      expect(status[fromOther.code]).toBe("OK");
      expect((await d.client.system.getStatus({})).caller).toBe("local");

      // After the window, the same peer's good token works again.
      await new Promise((r) => setTimeout(r, WINDOW_MS + 100));
      const later = await callAny(attacker, getStatus, {}, bearer(admin));
      expect(status[later.code]).toBe("OK");

      // Another interval for the last summary; then at most a handful of lines were added.
      await new Promise((r) => setTimeout(r, WINDOW_MS + 100));
      const added = auditLines(d)
        .slice(auditBefore)
        .map((l) => JSON.parse(l) as Record<string, string>);
      const refused = added.filter((e) => e.result === "unauthenticated");
      expect(refused.length).toBeGreaterThanOrEqual(2);
      expect(refused.length).toBeLessThanOrEqual(8);
      expect(refused[0]).toMatchObject({
        actor: "anonymous",
        action: "rpc.GetStatus",
        peer: "127.0.0.1",
        detail: "authorization: unknown or revoked token",
      });
      expect(refused[0]?.requestId).toMatch(/^r/);
      const summaries = refused.slice(1);
      for (const e of summaries) {
        expect(e).toMatchObject({ action: "auth.failures", peer: "127.0.0.1" });
        expect(e.detail).toMatch(
          /^\d+ more refused authentications from 127\.0\.0\.1 in \d+ s \(\d+ throttled\)$/,
        );
      }
      const counted = summaries.reduce((n, e) => n + Number(/^\d+/.exec(e.detail ?? "")?.[0]), 0);
      // 1,999 more wrong tokens, the ones that emptied the bucket again, the throttled good one.
      expect(counted).toBeGreaterThanOrEqual(2001);
      expect(counted).toBeLessThanOrEqual(2001 + LIMIT);
      const logs = d.logs.slice(logsBefore).filter((l) => l.includes("authentication refused"));
      expect(logs.length).toBeLessThanOrEqual(8);
      // Never a token, not even a wrong one, in the audit file or the log.
      const text = `${added.map((e) => JSON.stringify(e)).join("\n")}\n${d.logs.join("")}`;
      expect(text).not.toContain("vmadm_wrong");
      expect(text).not.toContain(admin);
    } finally {
      attacker.close();
      other.close();
      await proxy.close();
    }
  }, 30_000);
});

describe("connections must complete their handshake, and are closed when idle", () => {
  const HANDSHAKE_MS = 1000;
  const IDLE_MS = 2500;
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startDaemon({ server: { handshakeTimeoutMs: HANDSHAKE_MS, idleTimeoutMs: IDLE_MS } });
  });
  afterAll(async () => {
    await d?.dispose();
  });

  /** Opens a raw TCP socket, writes `bytes`, and resolves with how long until it closed. */
  const closedAfter = (bytes: Buffer) =>
    new Promise<number>((resolve) => {
      const port = Number(d.tcp.split(":").pop());
      const t0 = Date.now();
      const s: Socket = connect(port, "127.0.0.1", () => {
        if (bytes.length > 0) s.write(bytes);
      });
      s.on("data", () => {}); // the server's SETTINGS and GOAWAY
      s.on("error", () => {});
      s.on("close", () => resolve(Date.now() - t0));
      setTimeout(() => s.destroy(), 10_000).unref();
    });
  const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
  const SETTINGS = Buffer.from([0, 0, 0, 4, 0, 0, 0, 0, 0]);

  test("nothing sent: closed after the handshake timeout; half the preface: after 4 of them", async () => {
    const [silent, half] = await Promise.all([
      closedAfter(Buffer.alloc(0)),
      closedAfter(PREFACE.subarray(0, 12)),
    ]);
    expect(silent).toBeGreaterThanOrEqual(HANDSHAKE_MS - 50);
    expect(silent).toBeLessThan(HANDSHAKE_MS + 1000);
    // A client that sent something may be waiting on a busy server (thousands of shims
    // reconnecting at once): it is kept past the first bound, and closed by 4 at the latest
    // (here the idle bound, 2.5 s, comes first).
    expect(half).toBeGreaterThanOrEqual(2 * HANDSHAKE_MS - 50);
    expect(half).toBeLessThan(4 * HANDSHAKE_MS + 1000);
  }, 15_000);

  test("a complete handshake and no call: kept past the handshake bound, closed when idle", async () => {
    const ms = await closedAfter(Buffer.concat([PREFACE, SETTINGS]));
    expect(ms).toBeGreaterThanOrEqual(IDLE_MS - 50);
    expect(ms).toBeLessThan(IDLE_MS + 1500);
  });

  test("a client that keeps calling is never cut off; an idle one reconnects by itself", async () => {
    const admin = (await d.client.access.createAdminToken({ name: "busy" })).token;
    const c = d.tcpClient(admin);
    const t0 = Date.now();
    while (Date.now() - t0 < IDLE_MS + 500) {
      await c.system.getStatus({});
      await new Promise((r) => setTimeout(r, 200));
    }
    await new Promise((r) => setTimeout(r, IDLE_MS + 500));
    expect((await c.system.getStatus({})).caller).toBe("admin:busy");
  }, 15_000);
});

describe("one VM cannot hold more than a few streams", () => {
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startDaemon();
  });
  afterAll(async () => {
    await d?.dispose();
  });

  test("300 WatchEnv streams on one token at once: most are closed, the daemon stands", async () => {
    // The daemon runs in this process: a rejection nobody handled would kill a real secretsd.
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      await openMany(300);
      await new Promise((r) => setTimeout(r, 100));
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
    // Counted, not listed: each is the same message.
    expect(unhandled.length, String(unhandled[0])).toBe(0);
  });

  /** Opens `n` streams at once on one VM's token; checks what stays open and how the rest end. */
  async function openMany(n: number) {
    const token = (await d.client.access.createVm({ name: "greedy" })).token;
    const c = d.tcpClient(token);
    const streams = Array.from({ length: n }, () => {
      const it = c.env.watchEnv({ vm: "greedy" })[Symbol.asyncIterator]();
      const state = { open: true, code: "" };
      const first = it.next().then(
        () => undefined,
        (err: { code?: string }) => {
          state.open = false;
          state.code = err.code ?? "";
        },
      );
      return { it, state, first };
    });
    await Promise.all(streams.map((s) => s.first));
    // Read on for half a second: a stream closed after its first messages ends its iterator.
    const until = Date.now() + 500;
    await Promise.all(
      streams.map(async (s) => {
        while (s.state.open && Date.now() < until) {
          const next = await Promise.race([
            s.it.next().then(
              (r) => (r.done ? "done" : "message"),
              (err: { code?: string }) => {
                s.state.code = err.code ?? "";
                return "error";
              },
            ),
            new Promise<"timeout">((r) => setTimeout(() => r("timeout"), until - Date.now())),
          ]);
          if (next === "done" || next === "error") s.state.open = false;
        }
      }),
    );
    const open = streams.filter((s) => s.state.open).length;
    const codes = new Set(streams.filter((s) => !s.state.open).map((s) => s.state.code));
    for (const s of streams) void s.it.return?.();
    expect(open).toBeGreaterThan(0);
    expect(open).toBeLessThanOrEqual(16);
    expect([...codes]).toEqual(["resource_exhausted"]);
  }
});

describe("--insecure on a non-loopback address", () => {
  test("logs a warning at start; loopback does not", async () => {
    const open = await startDaemon({ server: { listen: "0.0.0.0:0", insecure: true } });
    const local = await startDaemon();
    try {
      const warned = (d: TestDaemon) =>
        d.logs
          .map((l) => JSON.parse(l) as { level: string; msg: string })
          .filter((l) => l.level === "warn" && l.msg.includes("non-loopback"));
      expect(warned(open)).toHaveLength(1);
      expect(warned(open)[0]?.msg).toContain("plaintext");
      expect(warned(local)).toEqual([]);
    } finally {
      await open.dispose();
      await local.dispose();
    }
  });
});
