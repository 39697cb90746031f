/**
 * A throw-away single-member etcd on loopback ports, on a temp data dir on the real disk, and
 * a minimal KV/Put client over @grpc/grpc-js.
 */
import type { ChildProcess } from "node:child_process";
import { spawnSync } from "node:child_process";
import { createServer } from "node:net";
import { join } from "node:path";
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { decodePutRevision, encodePut, PUT_PATH } from "./etcd-codec.js";
import { spawnChild, stopChild } from "./proc.js";
import { nowMs, sleep } from "./stats.js";

/**
 * Makes sure an `etcd` binary exists: installs Debian's etcd-server when it is missing.
 * Returns a note for the report, or throws when it cannot be had.
 */
export function ensureEtcd(log: (s: string) => void): { version: string; note: string } {
  const has = () =>
    spawnSync("/bin/sh", ["-c", "command -v etcd"], { encoding: "utf8" }).status === 0;
  let note = "etcd was already installed";
  if (!has()) {
    log("etcd is missing: running `apt-get install -y etcd-server`");
    const apt = (args: string[]) =>
      spawnSync("apt-get", args, {
        stdio: "inherit",
        env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" },
      });
    let r = apt(["install", "-y", "etcd-server"]);
    if (r.status !== 0) {
      apt(["update"]);
      r = apt(["install", "-y", "etcd-server"]);
    }
    if (r.status !== 0 || !has())
      throw new Error("etcd missing and apt-get install etcd-server failed");
    note = "etcd was missing; the bench installed it with `apt-get install -y etcd-server`";
  }
  const v = spawnSync("etcd", ["--version"], { encoding: "utf8" }).stdout;
  const version = /etcd Version: (\S+)/.exec(v)?.[1] ?? "unknown";
  return { version, note };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export interface Etcd {
  child: ChildProcess;
  pid: number;
  target: string;
  /** Put; resolves with the store revision from the reply's header. */
  put(key: Buffer, value: Buffer): Promise<number>;
  stop(): Promise<void>;
}

export async function startEtcd(opts: {
  dataDir: string;
  logDir: string;
  tag: string;
}): Promise<Etcd> {
  const client = await freePort();
  const peer = await freePort();
  const cu = `http://127.0.0.1:${client}`;
  const pu = `http://127.0.0.1:${peer}`;
  const child = spawnChild(
    "etcd",
    [
      "--name",
      "bench",
      "--data-dir",
      opts.dataDir,
      "--listen-client-urls",
      cu,
      "--advertise-client-urls",
      cu,
      "--listen-peer-urls",
      pu,
      "--initial-advertise-peer-urls",
      pu,
      "--initial-cluster",
      `bench=${pu}`,
      "--logger",
      "zap",
      "--log-outputs",
      "stderr",
      "--log-level",
      "warn",
    ],
    { logFile: join(opts.logDir, `etcd-${opts.tag}.log`) },
  );
  const target = `127.0.0.1:${client}`;
  const ch = new Client(target, credentials.createInsecure());
  const id = (b: Buffer) => b;
  const put = (key: Buffer, value: Buffer) =>
    new Promise<number>((resolve, reject) => {
      ch.makeUnaryRequest(
        PUT_PATH,
        id,
        id,
        encodePut(key, value),
        new Metadata(),
        { deadline: Date.now() + 10_000 },
        (err, res) => (err || !res ? reject(err) : resolve(decodePutRevision(res))),
      );
    });
  const deadline = nowMs() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`etcd exited (${child.exitCode})`);
    try {
      await put(Buffer.from("bench/ready"), Buffer.from("1"));
      break;
    } catch (err) {
      if (nowMs() > deadline) throw new Error(`etcd not ready: ${String(err)}`);
      await sleep(200);
    }
  }
  return {
    child,
    pid: child.pid as number,
    target,
    put,
    async stop() {
      ch.close();
      await stopChild(child, 10_000);
    },
  };
}
