/**
 * A watcher process: holds many streams, each on its own grpc-js channel (own TCP connection,
 * as each VM's shim has), to one of three servers:
 *   secretsd  EnvService/WatchEnv with the VM's token
 *   bare      bench.Bare/Subscribe
 *   etcd      etcdserverpb.Watch/Watch, create_request on one key
 * Every frame is timestamped on arrival (CLOCK_MONOTONIC ms, shared by all processes) before
 * anything else is done with it; the sequence number is then read with a minimal wire scan
 * (snapshot revision / first 8 bytes / kv.mod_revision), so all three pay about the same.
 * `expect` resolves once every stream of a system has seen seq >= N, with the latest and
 * earliest arrival times. In render mode (secretsd only) each new snapshot is decoded,
 * rendered with client/env-render.ts (both systemd dialects) and written atomically (temp,
 * fsync, rename) under a tmpfs dir; `expect` then waits for the writes.
 */
import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { fromBinary } from "@bufbuild/protobuf";
import type { ClientDuplexStream, ClientReadableStream } from "@grpc/grpc-js";
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { renderEnvironmentD, renderEnvironmentFile } from "../../client/env-render.js";
import { WatchEnvResponseSchema } from "../../proto/gen/vmauth/v1/env_pb.js";
import { decodeWatchResponse, encodeWatchCreate, WATCH_PATH } from "../lib/etcd-codec.js";
import { serve } from "../lib/ipc.js";
import { nowMs } from "../lib/stats.js";
import { varintAt } from "../lib/wire.js";

type System = "secretsd" | "bare" | "etcd";
type Mode = "recv" | "render";

interface St {
  name: string;
  dir: string;
  seq: number;
  t: number;
  wseq: number;
  tw: number;
}

export interface ExpectResult {
  count: number;
  reached: number;
  timedOut: boolean;
  maxT: number;
  minT: number;
  errors: number;
  firstError: string;
}

interface Expectation {
  seq: number;
  mode: Mode;
  reached: number;
  done(): void;
}

interface Sys {
  states: St[];
  clients: Client[];
  calls: (ClientReadableStream<Buffer> | ClientDuplexStream<Buffer, Buffer>)[];
  errors: number;
  firstError: string;
  frameBytes: number;
  closing: boolean;
  render: boolean;
  expect: Expectation | undefined;
}

const systems = new Map<System, Sys>();
const id = (b: Buffer) => b;
const CHANNEL = {
  "grpc.use_local_subchannel_pool": 1,
  "grpc.max_receive_message_length": 64 * 1024 * 1024,
};

/**
 * WatchEnvResponse{snapshot=1 EnvSnapshot{revision=2}}: the revision, or -1 for a heartbeat
 * (no snapshot field; a snapshot on a stream always has a revision of at least 1).
 */
function snapshotRevision(buf: Buffer): number {
  return varintAt(buf, [1, 2]) ?? -1;
}

function atomicWrite(path: string, text: string) {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, "w", 0o600);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function renderAndWrite(st: St, buf: Buffer) {
  const msg = fromBinary(WatchEnvResponseSchema, buf);
  if (msg.event.case !== "snapshot") return;
  const vars = new Map(msg.event.value.vars.map((v) => [v.name, v.value]));
  atomicWrite(join(st.dir, "env"), renderEnvironmentFile(vars).text);
  atomicWrite(join(st.dir, "vm-auth.conf"), renderEnvironmentD(vars).text);
}

function onSeq(sys: Sys, st: St, seq: number, t: number) {
  const prev = st.seq;
  st.seq = seq;
  st.t = t;
  const e = sys.expect;
  if (e && e.mode === "recv" && prev < e.seq && seq >= e.seq) {
    e.reached++;
    if (e.reached === sys.states.length) e.done();
  }
}

function onWritten(sys: Sys, st: St, seq: number) {
  const prev = st.wseq;
  st.wseq = seq;
  st.tw = nowMs();
  const e = sys.expect;
  if (e && e.mode === "render" && prev < e.seq && seq >= e.seq) {
    e.reached++;
    if (e.reached === sys.states.length) e.done();
  }
}

function onError(sys: Sys, err: Error) {
  if (sys.closing) return;
  sys.errors++;
  sys.firstError ||= err.message;
}

interface ConnectRequest {
  system: System;
  target: string;
  streams: { name: string; token?: string; index: number }[];
  key?: string;
  renderDir?: string;
  maxPending?: number;
}

async function connect(r: ConnectRequest) {
  const sys: Sys = {
    states: [],
    clients: [],
    calls: [],
    errors: 0,
    firstError: "",
    frameBytes: 0,
    closing: false,
    render: false,
    expect: undefined,
  };
  systems.set(r.system, sys);
  const t0 = nowMs();
  const maxPending = r.maxPending ?? 200;
  let pending = 0;
  let wake: (() => void) | undefined;
  const settle = (st: St) => {
    if (st.seq >= 0) return;
    st.seq = 0;
    pending--;
    wake?.();
  };
  for (const s of r.streams) {
    while (pending >= maxPending) await new Promise<void>((res) => (wake = res));
    pending++;
    const st: St = { name: s.name, dir: "", seq: -1, t: 0, wseq: 0, tw: 0 };
    if (r.renderDir) {
      st.dir = join(r.renderDir, s.name);
      mkdirSync(st.dir, { recursive: true });
    }
    sys.states.push(st);
    const client = new Client(r.target, credentials.createInsecure(), CHANNEL);
    sys.clients.push(client);
    const md = new Metadata();
    if (r.system === "secretsd") {
      md.set("authorization", `Bearer ${s.token}`);
      // WatchEnvRequest{client_version = 3: "bench"}
      const req = Buffer.from([0x1a, 5, ...Buffer.from("bench")]);
      const call = client.makeServerStreamRequest(
        "/vmauth.v1.EnvService/WatchEnv",
        id,
        id,
        req,
        md,
      );
      call.on("data", (buf: Buffer) => {
        const t = nowMs();
        const rev = snapshotRevision(buf);
        if (rev < 0) return;
        sys.frameBytes = buf.length;
        if (st.seq < 0) {
          settle(st);
          st.seq = rev;
          st.wseq = rev;
          return;
        }
        onSeq(sys, st, rev, t);
        if (sys.render && rev > st.wseq) {
          renderAndWrite(st, buf);
          onWritten(sys, st, rev);
        }
      });
      call.on("error", (e) => onError(sys, e));
      sys.calls.push(call);
    } else if (r.system === "bare") {
      // The stream's index: the bare server writes its streams in index order (see there).
      const hello = Buffer.alloc(4);
      hello.writeUInt32BE(s.index, 0);
      const call = client.makeServerStreamRequest("/bench.Bare/Subscribe", id, id, hello, md);
      call.on("data", (buf: Buffer) => {
        const t = nowMs();
        const seq = Number(buf.readBigUInt64BE(0));
        sys.frameBytes = buf.length;
        if (st.seq < 0) settle(st);
        else onSeq(sys, st, seq, t);
      });
      call.on("error", (e) => onError(sys, e));
      sys.calls.push(call);
    } else {
      const call = client.makeBidiStreamRequest(WATCH_PATH, id, id, md);
      call.on("data", (buf: Buffer) => {
        const t = nowMs();
        const ev = decodeWatchResponse(buf);
        if (ev.created) settle(st);
        if (ev.modRevision > 0) {
          sys.frameBytes = buf.length;
          onSeq(sys, st, ev.modRevision, t);
        }
        if (ev.canceled) onError(sys, new Error("etcd watch canceled"));
      });
      call.on("error", (e) => onError(sys, e));
      call.write(encodeWatchCreate(Buffer.from(r.key ?? "bench/fanout")));
      sys.calls.push(call);
    }
  }
  const deadline = t0 + 180_000;
  while (pending > 0) {
    if (nowMs() > deadline) throw new Error(`${r.system}: ${pending} streams never opened`);
    if (sys.errors > 0)
      throw new Error(`${r.system}: stream error while connecting: ${sys.firstError}`);
    await new Promise<void>((res) => {
      wake = res;
      setTimeout(res, 200);
    });
  }
  return { count: sys.states.length, ms: nowMs() - t0, frameBytes: sys.frameBytes };
}

function expect(system: System, seq: number, mode: Mode, timeoutMs: number): Promise<ExpectResult> {
  const sys = systems.get(system);
  if (!sys) throw new Error(`${system}: not connected`);
  const of = (st: St) => (mode === "recv" ? st.seq : st.wseq);
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = (timedOut: boolean) => {
      if (timer) clearTimeout(timer);
      sys.expect = undefined;
      let maxT = Number.NEGATIVE_INFINITY;
      let minT = Number.POSITIVE_INFINITY;
      let reached = 0;
      for (const st of sys.states) {
        if (of(st) < seq) continue;
        reached++;
        const t = mode === "recv" ? st.t : st.tw;
        if (t > maxT) maxT = t;
        if (t < minT) minT = t;
      }
      resolve({
        count: sys.states.length,
        reached,
        timedOut,
        maxT,
        minT,
        errors: sys.errors,
        firstError: sys.firstError,
      });
    };
    const reached = sys.states.filter((st) => of(st) >= seq).length;
    if (reached === sys.states.length) {
      finish(false);
      return;
    }
    sys.expect = { seq, mode, reached, done: () => finish(false) };
    timer = setTimeout(() => finish(true), timeoutMs);
  });
}

function close(system: System) {
  const sys = systems.get(system);
  if (!sys) return { closed: 0 };
  sys.closing = true;
  for (const c of sys.calls) c.cancel();
  for (const c of sys.clients) c.close();
  systems.delete(system);
  return { closed: sys.states.length };
}

serve({
  connect: (m) => connect(m as unknown as ConnectRequest),
  expect: (m) =>
    expect(m.system as System, m.seq as number, m.mode as Mode, (m.timeoutMs as number) ?? 30_000),
  close: (m) => close(m.system as System),
  render: (m) => {
    const sys = systems.get(m.system as System);
    if (sys) sys.render = m.on === true;
    return sys?.render ?? false;
  },
  ping: () => nowMs(),
});
