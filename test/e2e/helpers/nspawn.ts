/**
 * Throw-away systemd machines for end-to-end tests.
 *
 * `bootContainer()` boots the host's own OS with
 * `systemd-nspawn --volatile=yes -D / --boot` (root is a tmpfs, /usr is the host's, read-only),
 * sharing the host network so a server on host 127.0.0.1 is reachable from inside, or, with
 * `networkNamespace`, in a namespace of the test's own (./netns.ts: a veth pair to the host), where
 * only the host side address is reachable, as from a VM. Everything is
 * driven through `nsenter -t <pid of the container's systemd> -a`, so no machined, no D-Bus on
 * the host and no systemd as the host's PID 1 are needed. `stop()` kills the container's own init
 * by pid (killing only nspawn would leave that init running) and waits for nspawn to exit.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { accessSync, constants, readdirSync, readFileSync } from "node:fs";
import { delimiter, join } from "node:path";

/** Result of a command run inside the container. */
export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

/** Options for {@link Container.exec}. */
export interface ExecOptions {
  /** Bytes or text fed to the command's standard input. */
  input?: string | Buffer;
  /** Kill the command (SIGKILL) after this long; default 20 s. */
  timeoutMs?: number;
  /** Resolve instead of rejecting when the command exits non-zero. */
  allowFail?: boolean;
  /** Extra environment for the command (the base is a clean PATH/LANG/HOME). */
  env?: Record<string, string>;
}

/** A booted throw-away system. */
export interface Container {
  /** The machine name passed to `--machine=`. */
  readonly name: string;
  /** Host pid of the container's init (its systemd, PID 1 inside). */
  readonly initPid: number;
  /** Milliseconds from spawning nspawn until `systemctl is-system-running` said running/degraded. */
  readonly bootMs: number;
  /** Runs `cmd` inside every namespace of the container (nsenter -t initPid -a). */
  exec(cmd: string[], opts?: ExecOptions): Promise<ExecResult>;
  /** Like exec but with raw stdout bytes. */
  execRaw(
    cmd: string[],
    opts?: ExecOptions,
  ): Promise<{ stdout: Buffer; stderr: string; code: number }>;
  /** `systemctl <args>` inside; rejects on a non-zero exit; returns stdout. */
  systemctl(...args: string[]): Promise<string>;
  /** Writes a file inside the container (parents created), default mode 0644. */
  writeFile(path: string, content: string | Buffer, mode?: number): Promise<void>;
  /** Reads a file inside the container as UTF-8. */
  readFile(path: string): Promise<string>;
  /** Pid (inside the container) of a running service's main process. */
  mainPid(unit: string): Promise<number>;
  /**
   * The real environment of a running service's main process, from /proc/<MainPID>/environ
   * (strictly UTF-8 decoded, so equal strings mean equal bytes). Start the unit with
   * `Type=exec` (or notify): with `Type=simple` the main process may not have exec'd yet and
   * /proc then still shows the manager's environment.
   */
  unitEnv(unit: string): Promise<Map<string, string>>;
  /**
   * The environment the user manager of root gives a user service: (re)starts user@0.service so
   * environment.d is read afresh (pass `{ restart: false }` to keep a running one), then runs
   * `cat /proc/self/environ` as a transient user service and parses it.
   */
  userServiceEnv(opts?: { restart?: boolean }): Promise<Map<string, string>>;
  /** Last lines nspawn and the container's console printed, for diagnostics. */
  log(): string;
  /** Kills the container's init by pid and waits for nspawn to exit. Idempotent. */
  stop(): Promise<void>;
}

/** Options for {@link bootContainer}. */
export interface BootOptions {
  /** Host paths bound read-write at the same path inside (`--bind=`); `src:dst` also works. */
  binds?: string[];
  /** Host paths bound read-only at the same path inside (`--bind-ro=`). */
  bindRo?: string[];
  /** Machine name; default `vmauth-<pid>-<random>`. */
  name?: string;
  /** Give up booting after this long; default 30 s. */
  timeoutMs?: number;
  /** Units masked at boot (`systemd.mask=`), e.g. host services not wanted in the container. */
  mask?: string[];
  /** Extra arguments for the container's systemd (kernel-command-line style). */
  initArgs?: string[];
  /**
   * A network namespace to run the machine in (`--network-namespace-path=`, e.g. `/run/netns/X`
   * from ./netns.ts) instead of sharing the host network: the machine then sees that
   * namespace's links and its own loopback, not the host's 127.0.0.1.
   */
  networkNamespace?: string;
}

const CLEAN_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const LOG_LIMIT = 64 * 1024;
const utf8 = new TextDecoder("utf-8", { fatal: true });

function findInPath(bin: string): string | undefined {
  const dirs = (process.env.PATH ?? "").split(delimiter).concat(CLEAN_PATH.split(":"));
  for (const dir of dirs) {
    const p = join(dir, bin);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // try the next directory
    }
  }
  return undefined;
}

/** Whether this process can boot containers here: root, systemd-nspawn and nsenter present. */
export function nspawnAvailable(): { ok: true } | { ok: false; why: string } {
  if (process.platform !== "linux") return { ok: false, why: `not Linux (${process.platform})` };
  if (process.getuid?.() !== 0) return { ok: false, why: "needs root (systemd-nspawn, nsenter)" };
  if (!findInPath("systemd-nspawn")) {
    return { ok: false, why: "systemd-nspawn not found (Debian package systemd-container)" };
  }
  if (!findInPath("nsenter")) return { ok: false, why: "nsenter not found (util-linux)" };
  return { ok: true };
}

/** Parses NUL-separated `NAME=value` records (as in /proc/<pid>/environ); bytes must be UTF-8. */
function parseEnviron(raw: Buffer): Map<string, string> {
  const env = new Map<string, string>();
  for (const rec of utf8.decode(raw).split("\0")) {
    if (rec === "") continue;
    const eq = rec.indexOf("=");
    if (eq <= 0) throw new Error(`malformed environ record (${rec.length} chars)`);
    env.set(rec.slice(0, eq), rec.slice(eq + 1));
  }
  return env;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function readProc(path: string): string | undefined {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}

/** Host pid of the child of `nspawnPid` that is PID 1 of a new pid namespace and runs systemd. */
function findInit(nspawnPid: number): number | undefined {
  let children: number[] = [];
  try {
    for (const task of readdirSync(`/proc/${nspawnPid}/task`)) {
      const c = readProc(`/proc/${nspawnPid}/task/${task}/children`) ?? "";
      children = children.concat(c.split(/\s+/).filter(Boolean).map(Number));
    }
  } catch {
    return undefined;
  }
  for (const pid of children) {
    const status = readProc(`/proc/${pid}/status`) ?? "";
    const nspid = /^NSpid:\s+(.*)$/m.exec(status)?.[1]?.trim().split(/\s+/);
    const comm = readProc(`/proc/${pid}/comm`)?.trim();
    if (comm === "systemd" && nspid && nspid.length >= 2 && nspid[nspid.length - 1] === "1") {
      return pid;
    }
  }
  return undefined;
}

function run(
  argv: string[],
  opts: ExecOptions,
): Promise<{ stdout: Buffer; stderr: string; code: number }> {
  const [bin, ...args] = argv;
  if (!bin) throw new Error("empty command");
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, {
      env: { PATH: CLEAN_PATH, LANG: "C.UTF-8", HOME: "/root", ...opts.env },
      stdio: ["pipe", "pipe", "pipe"],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    const timeoutMs = opts.timeoutMs ?? 20_000;
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      const res = {
        stdout: Buffer.concat(out),
        stderr: Buffer.concat(err).toString("utf8"),
        code: code ?? 128,
      };
      if (signal === "SIGKILL" && code === null) {
        reject(new Error(`${argv.join(" ")}: killed after ${timeoutMs} ms\n${res.stderr}`));
      } else if (res.code !== 0 && !opts.allowFail) {
        reject(new Error(`${argv.join(" ")}: exit ${res.code}\n${res.stderr}`));
      } else {
        resolve(res);
      }
    });
    child.stdin.on("error", () => {
      // the command may exit without reading its input
    });
    child.stdin.end(opts.input ?? "");
  });
}

/**
 * Boots a throw-away system and resolves once `systemctl is-system-running` reports
 * `running` or `degraded` (a host service that cannot start in a container is not our concern).
 */
export async function bootContainer(opts: BootOptions = {}): Promise<Container> {
  const avail = nspawnAvailable();
  if (!avail.ok) throw new Error(`cannot boot a container: ${avail.why}`);
  const name = opts.name ?? `vmauth-${process.pid}-${randomBytes(3).toString("hex")}`;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const args = [
    "--quiet",
    "--volatile=yes",
    "-D",
    "/",
    "--boot",
    `--machine=${name}`,
    "--register=no",
    "--keep-unit",
    "--console=read-only",
    "--bind-ro=/etc/pam.d",
    "--bind-ro=/etc/security",
    ...(opts.bindRo ?? []).map((p) => `--bind-ro=${p}`),
    ...(opts.binds ?? []).map((p) => `--bind=${p}`),
    ...(opts.networkNamespace ? [`--network-namespace-path=${opts.networkNamespace}`] : []),
    "systemd.firstboot=off",
    ...(opts.mask ?? []).map((u) => `systemd.mask=${u}`),
    ...(opts.initArgs ?? []),
  ];
  const started = Date.now();
  const nspawn: ChildProcess = spawn("systemd-nspawn", args, {
    stdio: ["ignore", "pipe", "pipe"],
    env: { PATH: CLEAN_PATH, LANG: "C.UTF-8", SYSTEMD_COLORS: "0" },
  });
  let log = "";
  const onOut = (b: Buffer) => {
    log = (log + b.toString("utf8")).slice(-LOG_LIMIT);
  };
  nspawn.stdout?.on("data", onOut);
  nspawn.stderr?.on("data", onOut);
  let exited = false;
  const exitPromise = new Promise<void>((resolve) => {
    nspawn.on("close", () => {
      exited = true;
      resolve();
    });
    nspawn.on("error", (e) => {
      log += `\nspawn error: ${e.message}`;
      exited = true;
      resolve();
    });
  });

  let initPid: number | undefined;
  // Safety net: never leave a container behind if the test process dies without stop().
  const onExit = () => {
    if (initPid) {
      try {
        process.kill(initPid, "SIGKILL");
      } catch {
        // already gone
      }
    }
    if (!exited) nspawn.kill("SIGKILL");
  };
  process.once("exit", onExit);

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (initPid) {
        try {
          process.kill(initPid, "SIGKILL");
        } catch {
          // already gone
        }
      }
      if (!exited) {
        const timer = setTimeout(() => nspawn.kill("SIGKILL"), 10_000);
        if (!initPid) nspawn.kill("SIGKILL");
        await exitPromise;
        clearTimeout(timer);
      }
      process.removeListener("exit", onExit);
    })();
    return stopping;
  };

  const fail = async (why: string): Promise<never> => {
    await stop();
    throw new Error(`container ${name}: ${why}\n--- nspawn output (tail) ---\n${log.slice(-4000)}`);
  };

  const deadline = started + timeoutMs;
  while (initPid === undefined) {
    if (exited) return fail("systemd-nspawn exited during boot");
    if (Date.now() > deadline) return fail(`no init process after ${timeoutMs} ms`);
    if (nspawn.pid) initPid = findInit(nspawn.pid);
    if (initPid === undefined) await sleep(20);
  }
  const pid: number = initPid;

  const execRaw = (cmd: string[], o: ExecOptions = {}) =>
    run(["nsenter", "-t", String(pid), "-a", "-r", "-w", "--", ...cmd], o);
  const exec = async (cmd: string[], o: ExecOptions = {}): Promise<ExecResult> => {
    const r = await execRaw(cmd, o);
    return { stdout: r.stdout.toString("utf8"), stderr: r.stderr, code: r.code };
  };

  let state = "";
  for (;;) {
    if (exited) return fail("systemd-nspawn exited during boot");
    if (Date.now() > deadline) return fail(`not booted after ${timeoutMs} ms (state ${state})`);
    const r = await exec(["systemctl", "is-system-running"], { allowFail: true, timeoutMs: 5000 });
    state = r.stdout.trim();
    if (state === "running" || state === "degraded") break;
    await sleep(50);
  }
  const bootMs = Date.now() - started;

  const systemctl = async (...a: string[]) => (await exec(["systemctl", ...a])).stdout;
  const mainPid = async (unit: string) => {
    const v = (await systemctl("show", "--property=MainPID", "--value", unit)).trim();
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${unit} has no main process (${v})`);
    return n;
  };

  return {
    name,
    initPid: pid,
    bootMs,
    exec,
    execRaw,
    systemctl,
    async writeFile(path, content, mode = 0o644) {
      await exec(
        [
          "sh",
          "-c",
          'mkdir -p -- "$(dirname -- "$1")" && cat > "$1.tmp" && chmod "$2" "$1.tmp" && mv -f -- "$1.tmp" "$1"',
          "sh",
          path,
          mode.toString(8),
        ],
        { input: content },
      );
    },
    async readFile(path) {
      return (await execRaw(["cat", "--", path])).stdout.toString("utf8");
    },
    mainPid,
    async unitEnv(unit) {
      const p = await mainPid(unit);
      return parseEnviron((await execRaw(["cat", `/proc/${p}/environ`])).stdout);
    },
    async userServiceEnv(o = {}) {
      // Tests restart it often: clear the start rate limit (StartLimitBurst) first.
      await exec(["systemctl", "reset-failed", "user@0.service"], { allowFail: true });
      await systemctl(o.restart === false ? "start" : "restart", "user@0.service");
      const r = await execRaw(
        ["systemd-run", "--user", "--wait", "--pipe", "--quiet", "cat", "/proc/self/environ"],
        { env: { XDG_RUNTIME_DIR: "/run/user/0" } },
      );
      return parseEnviron(r.stdout);
    },
    log: () => log,
    stop,
  };
}
