/**
 * Load from one hostile VM, against a spawned secretsd whose memory is measured after a full
 * GC (test/helpers/spawn-secretsd.ts): 2,000 WatchEnv streams on one VM token and 200 TCP
 * connections that never send the HTTP/2 preface, all open at once, then all closed. Another
 * VM's GetEnv keeps being answered throughout, and the daemon's RSS returns near where it
 * started.
 */
import { mkdtemp } from "node:fs/promises";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, expect, test } from "vitest";
import type { VmAuthClient } from "../client/index.js";
import { createClient } from "../client/index.js";
import type { Memory, SourceDaemon } from "./helpers/spawn-secretsd.js";
import { spawnSourceDaemon } from "./helpers/spawn-secretsd.js";
import { secretValue, testRoot } from "./helpers/values.js";

const STREAMS = 2000;
const CHANNELS = 10;
const HALF_OPEN = 200;
const MiB = 1024 * 1024;

let d: SourceDaemon;
const clients: VmAuthClient[] = [];
const client = (token?: string) => {
  const c = token
    ? createClient({
        server: d.tcp,
        token,
        // A channel of its own (grpc-js shares connections between equal clients otherwise).
        channelOptions: { "grpc.use_local_subchannel_pool": 1 },
      })
    : createClient({ socket: d.socket });
  clients.push(c);
  return c;
};

beforeAll(async () => {
  const dataDir = await mkdtemp(join(testRoot() ?? tmpdir(), "vm-auth-load-"));
  d = await spawnSourceDaemon(dataDir);
});

afterAll(async () => {
  for (const c of clients) c.close();
  await d?.stop();
});

test("one VM's 2,000 streams and 200 half-open connections: others served, memory returned", async () => {
  const admin = client();
  const greedy = (await admin.access.createVm({ name: "greedy" })).token;
  const victim = (await admin.access.createVm({ name: "victim" })).token;
  // Views of some weight: 20 variables of 1 KiB each, per VM.
  for (let i = 0; i < 20; i++) {
    const value = `${secretValue(`sk-load${i}`)}${"x".repeat(1000)}`;
    await admin.secrets.createSecret({ name: `load${i}`, value });
  }
  const victimClient = client(victim);

  // Warm-up: every code path the load takes runs once before the baseline.
  await victimClient.env.getEnv({ vm: "victim" });
  const warm = client(greedy);
  for await (const _ of warm.env.watchEnv({ vm: "greedy" })) break;
  await closeSockets(await openSockets(d.tcp, 5));
  await new Promise((r) => setTimeout(r, 500));
  const start = await d.memory();

  // The victim asks for its env every 50 ms for the whole test (paused while memory is
  // measured: a forced full GC stops the daemon and is no part of the load).
  const victimLatencies: number[] = [];
  const victimErrors: unknown[] = [];
  let victimRunning = true;
  let paused: Promise<void> | undefined;
  const victimLoop = (async () => {
    while (victimRunning) {
      await paused;
      const t0 = performance.now();
      try {
        const env = await victimClient.env.getEnv({ vm: "victim" }, { deadlineMs: 5000 });
        if (env.snapshot?.vars.length !== 20) throw new Error("victim's view is incomplete");
        victimLatencies.push(performance.now() - t0);
      } catch (err) {
        victimErrors.push(err);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const measure = async () => {
    let resume = () => {};
    paused = new Promise<void>((r) => {
      resume = r;
    });
    const m = await d.memory();
    resume();
    return m;
  };

  // Two rounds: memory V8 and malloc keep for reuse after the first stays level in the
  // second, while anything the load leaks grows again.
  const rounds: { loaded: Memory; after: Memory; streams: Record<string, number> }[] = [];
  for (let round = 0; round < 2; round++) rounds.push(await load(greedy, measure));
  victimRunning = false;
  await victimLoop;

  const [first, second] = rounds as [(typeof rounds)[0], (typeof rounds)[0]];
  const mib = (n: number) => +(n / MiB).toFixed(1);
  const show = (m: Memory) => ({
    rss: mib(m.rss),
    heap: mib(m.heapUsed),
    ext: mib(m.external),
    fds: m.fds,
  });
  const sorted = [...victimLatencies].sort((a, b) => a - b);
  const figures = {
    start: show(start),
    loaded: show(first.loaded),
    after1: show(first.after),
    after2: show(second.after),
    streams: first.streams,
    victim: {
      calls: sorted.length,
      p50Ms: Math.round(sorted[Math.floor(sorted.length / 2)] ?? 0),
      maxMs: Math.round(sorted[sorted.length - 1] ?? 0),
    },
  };
  process.stdout.write(`hostile load: ${JSON.stringify(figures)}\n`);

  // The other VM was answered every time, within its deadline, all along.
  expect(victimErrors).toEqual([]);
  expect(victimLatencies.length).toBeGreaterThan(20);
  // Every stream got its first message, or was refused by the per-VM cap.
  for (const r of rounds) {
    expect((r.streams.open ?? 0) + (r.streams.resource_exhausted ?? 0)).toBe(STREAMS);
  }
  // The measurement sees the load: the daemon held every half-open connection and the
  // streams' channels while it was measured (open descriptors, exact), and none after.
  for (const r of rounds) {
    expect(r.loaded.fds - start.fds).toBeGreaterThanOrEqual(HALF_OPEN + CHANNELS);
    expect(r.after.fds - start.fds).toBeLessThanOrEqual(2);
  }
  // Once closed, what the program holds is back where it started: 2 MiB of slack. A refused
  // stream holds nothing after its answer (the per-VM cap refuses before any work): a leak
  // of 1 KiB per refused stream would be 4 MiB over the two rounds' 4,000. When the cap
  // closed old streams instead, 500 streams held +18 MiB at their peak.
  const held = (m: Memory) => m.heapUsed + m.external;
  expect(held(first.after) - held(start)).toBeLessThan(2 * MiB);
  expect(held(second.after) - held(start)).toBeLessThan(2 * MiB);
  // RSS: the first round leaves V8's grown heap and malloc's free lists in place (measured
  // +35–50 MiB after it; V8 gives its share back after ~20 s idle). A second identical round
  // reuses them: it ends within 8 MiB of the first round's peak (measured −8 to +4), where a
  // leak of the issue's size (2,000 streams kept 335 MiB, ~170 KiB each) would add 80 MiB.
  const peak = Math.max(first.loaded.rss, first.after.rss);
  expect(second.after.rss - peak).toBeLessThan(8 * MiB);
}, 30_000);

/**
 * One round: 2,000 WatchEnv streams on the greedy VM's token over 10 connections, and 200 TCP
 * connections that never send a byte; memory measured with all of them open, then after
 * they are all closed.
 */
async function load(token: string, measure: () => Promise<Memory>) {
  const channels = Array.from({ length: CHANNELS }, () => client(token));
  const aborts: AbortController[] = [];
  const settled = Array.from({ length: STREAMS }, async (_, i) => {
    const ac = new AbortController();
    aborts.push(ac);
    const c = channels[i % CHANNELS] as VmAuthClient;
    // Not a for-await: leaving that loop would cancel the stream; these stay open.
    const it = c.env.watchEnv({ vm: "greedy" }, { signal: ac.signal })[Symbol.asyncIterator]();
    try {
      return (await it.next()).done ? "ended" : "open";
    } catch (err) {
      return (err as { code?: string }).code ?? "error";
    }
  });
  const sockets = await openSockets(d.tcp, HALF_OPEN);
  const outcomes = await Promise.all(settled);
  const loaded = await measure();
  for (const ac of aborts) ac.abort();
  for (const c of channels) c.close();
  await closeSockets(sockets);
  await new Promise((r) => setTimeout(r, 1500));
  const after = await measure();
  const streams: Record<string, number> = {};
  for (const o of outcomes) streams[o] = (streams[o] ?? 0) + 1;
  return { loaded, after, streams };
}

// --- internal ---

/** Opens TCP connections that never send a byte. */
async function openSockets(target: string, n: number): Promise<Socket[]> {
  const port = Number(target.split(":").pop());
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Socket>((resolve, reject) => {
          const s = connect(port, "127.0.0.1", () => resolve(s));
          s.on("error", reject);
          s.on("data", () => {});
        }),
    ),
  );
}

async function closeSockets(sockets: Socket[]) {
  await Promise.all(
    sockets.map(
      (s) =>
        new Promise<void>((resolve) => {
          if (s.destroyed) resolve();
          else {
            s.once("close", () => resolve());
            s.destroy();
          }
        }),
    ),
  );
}
