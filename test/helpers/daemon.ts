/**
 * Starts a real secretsd in this process: temp data dir, unix socket in it, TCP on a random
 * loopback port. Returns clients for both listeners and the means to stop or restart it.
 */
import { appendFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ClientOptions, VmAuthClient } from "../../client/index.js";
import { createClient } from "../../client/index.js";
import type { ServerOptions } from "../../server/config.js";
import { resolveServerConfig } from "../../server/config.js";
import type { Daemon, DaemonOptions } from "../../server/daemon.js";
import { createDaemon } from "../../server/daemon.js";
import { createLogger } from "../../server/logger.js";
import { testRoot } from "./values.js";

export interface TestDaemon {
  dataDir: string;
  socket: string;
  tcp: string;
  /** Local admin client over the unix socket. */
  client: VmAuthClient;
  /** A client over TCP with the given token. */
  tcpClient(token?: string, extra?: Partial<ClientOptions>): VmAuthClient;
  /** Log lines the daemon wrote. */
  logs: string[];
  daemon: Daemon;
  restart(): Promise<void>;
  stop(): Promise<void>;
  /** Stop and remove the data dir. */
  dispose(): Promise<void>;
}

export async function startDaemon(
  opts: {
    dataDir?: string;
    heartbeatMs?: number;
    /** Any other server settings (timeouts, auth throttle, ...). */
    server?: Partial<ServerOptions>;
    /** What drives manifest rotation schedules (a fake clock). */
    daemon?: DaemonOptions;
  } = {},
): Promise<TestDaemon> {
  const root = testRoot();
  const dataDir = opts.dataDir ?? (await mkdtemp(join(root ?? tmpdir(), "vm-auth-test-")));
  const logs: string[] = [];
  const clients: VmAuthClient[] = [];
  const state = {} as { daemon: Daemon; tcp: string };
  const boot = async () => {
    const config = resolveServerConfig(
      {
        dataDir,
        listen: "127.0.0.1:0",
        logLevel: "debug",
        shutdownGraceMs: 2000,
        heartbeatMs: opts.heartbeatMs ?? 15_000,
        ...opts.server,
      },
      {},
    );
    // Logs go to a file in the data dir too, for the suite's leak check.
    const log = createLogger({
      level: "debug",
      write: (l) => {
        logs.push(l);
        appendFileSync(join(dataDir, "secretsd-test.log"), l);
      },
    });
    state.daemon = createDaemon(config, log, opts.daemon);
    const addr = await state.daemon.start();
    state.tcp = addr.tcp ?? "";
  };
  await boot();
  const socket = join(dataDir, "secretsd.sock");
  const client = createClient({ socket });
  clients.push(client);
  const td: TestDaemon = {
    dataDir,
    socket,
    get tcp() {
      return state.tcp;
    },
    client,
    tcpClient(token, extra = {}) {
      const c = createClient({ server: state.tcp, token, ...extra });
      clients.push(c);
      return c;
    },
    logs,
    get daemon() {
      return state.daemon;
    },
    async restart() {
      await state.daemon.stop();
      await boot();
    },
    async stop() {
      await state.daemon.stop();
    },
    async dispose() {
      for (const c of clients) c.close();
      await state.daemon.stop();
      // Under the suite root the teardown scans, then removes, the data dir.
      if (!root) await rm(dataDir, { recursive: true, force: true });
    },
  };
  return td;
}

/**
 * Everything the store holds on disk: the snapshot (store.json) and its journal
 * (store.json.wal), which holds every change since the last snapshot.
 */
export async function storeOnDisk(dataDir: string): Promise<string> {
  const read = (f: string) =>
    readFile(join(dataDir, f), "utf8").catch((err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return "";
      throw err;
    });
  return `${await read("store.json")}\n${await read("store.json.wal")}`;
}
