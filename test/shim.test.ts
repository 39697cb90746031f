/**
 * The BUILT shim (dist/shim.cjs) as a child process against a real secretsd (in-process, TCP
 * through a loopback proxy that keeps one port across daemon restarts and can black-hole
 * traffic), writing into temp dirs, with a fake `systemctl` that appends its argv to a log.
 * Env files (they hold values) live outside the suite root; the shim's state, status and its
 * whole stderr live under it, so the suite's leak check proves none of them holds a value.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import {
  appendFileSync,
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createClient, type VmAuthClient } from "../client/index.js";
import { encodeBundle } from "../common/bundle.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon } from "./helpers/daemon.js";
import { spawnTlsDaemon } from "./helpers/tls.js";
import { secretValue, testRoot } from "./helpers/values.js";

const SHIM = resolve(import.meta.dirname, "../dist/shim.cjs");
const FAKE_CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";
const HEARTBEAT_MS = 200;

let d: TestDaemon;
let proxy: Proxy;
const outRoot = mkdtempSync(join(tmpdir(), "vm-auth-shim-out-"));
const shims: Shim[] = [];

beforeAll(async () => {
  if (!existsSync(SHIM) || readFileSync(SHIM, "utf8").includes("not built yet")) {
    throw new Error(`${SHIM} is missing or a placeholder: run \`node scripts/build.mjs\` first`);
  }
  d = await startDaemon({ heartbeatMs: HEARTBEAT_MS });
  proxy = await createProxy(() => d.tcp);
});

afterAll(async () => {
  await Promise.all(shims.map((s) => s.stop()));
  await proxy?.close();
  await d?.dispose();
  rmSync(outRoot, { recursive: true, force: true });
});

describe("vm-auth-shim (built) against secretsd", () => {
  test("initial snapshot → both files 0600; rotation → only its unit restarted; ack reaches the server", async () => {
    const vm = await setupVm("s1");
    const shim = startShim(vm);
    await until(() => read(vm.unitEnvFile).includes(vm.openai), "unit env file written");
    await until(() => read(vm.envDFile).includes(vm.other), "environment.d file written");
    await until(() => systemctlLog(vm).length === 1, "initial restart");
    expect(systemctlLog(vm)).toEqual(["try-restart app-a.service app-b.service"]);
    await expectAcked(vm.name, (await vmRow(vm.name)).viewRevision);
    for (const f of [vm.unitEnvFile, vm.envDFile, vm.lkgFile, vm.stateFile]) {
      expect(mode(f), f).toBe(0o600);
    }
    expect(mode(join(vm.out, "run/vm-auth"))).toBe(0o700);
    expect(mode(join(vm.out, "etc/environment.d"))).toBe(0o755);

    truncate(vm.systemctlLog);
    const v2 = secretValue();
    const rot = await d.client.secrets.rotateSecret({ name: `openai-${vm.name}`, value: v2 });
    // Each file is replaced atomically, one after the other: wait for both.
    await until(
      () => read(vm.unitEnvFile).includes(v2) && read(vm.envDFile).includes(v2),
      "rotation applied",
    );
    expect(read(vm.unitEnvFile)).not.toContain(vm.openai);
    await expectAcked(vm.name, rot.revision);
    expect(systemctlLog(vm)).toEqual(["try-restart app-a.service"]);
    const row = await vmRow(vm.name);
    expect(row).toMatchObject({ appliedRevision: rot.revision, behind: false, connected: true });
    expect(row.lastRestartedUnits).toEqual(["app-a.service"]);
    expect(row.clientVersion).toBe("vm-auth-shim/0.1.0");
    const state = JSON.parse(read(vm.stateFile));
    expect(state).toMatchObject({ revision: Number(rot.revision) });
    expect(state.vars.OPENAI_API_KEY).toEqual({ secret: `openai-${vm.name}`, version: 2 });

    // `status` reads the status and state files.
    const st = await shimCli(["status", "--json", "--config", vm.config]);
    expect(st.code).toBe(0);
    expect(JSON.parse(st.stdout)).toMatchObject({
      running: true,
      connection: "connected",
      appliedRevision: Number(rot.revision),
      vars: ["OPENAI_API_KEY", "OTHER_KEY"],
    });
    expect((await shimCli(["status", "--config", vm.config])).stdout).toMatch(
      /connection: +connected since/,
    );
    await shim.stop();
    const stopped = await shimCli(["status", "--config", vm.config]);
    expect(stopped.code).toBe(3);
    expect(stopped.stdout).toMatch(/shim: +not running/);
  }, 30_000);

  test("a change to another VM's secret writes nothing and restarts nothing", async () => {
    const vm = await setupVm("s2");
    startShim(vm);
    await until(() => systemctlLog(vm).length === 1, "initial apply");
    await expectAcked(vm.name, (await vmRow(vm.name)).viewRevision);
    const before = snapshotFiles(vm);
    truncate(vm.systemctlLog);
    await d.client.access.createVm({ name: "s2-other" });
    const other = await d.client.secrets.createSecret({
      name: "other-s2-other",
      env: "OPENAI_API_KEY",
      scope: "vm:s2-other",
      value: secretValue(),
    });
    // Once a heartbeat at or past that revision arrived, any snapshot for it would have, too.
    await until(() => status(vm).serverRevision >= Number(other.revision), "heartbeat past it");
    expect(snapshotFiles(vm)).toEqual(before);
    expect(systemctlLog(vm)).toEqual([]);
  });

  test("daemon stopped → files untouched, shim retries; restarted → reconnects, applies a rotation made after", async () => {
    const vm = await setupVm("s3");
    const shim = startShim(vm);
    await until(() => systemctlLog(vm).length === 1, "initial apply");
    await expectAcked(vm.name, (await vmRow(vm.name)).viewRevision);
    const before = snapshotFiles(vm);
    truncate(vm.systemctlLog);

    await d.stop();
    await until(() => status(vm).connection === "disconnected", "disconnected");
    const retries = () => shim.logs().filter((l) => l.msg === "still failing").length;
    await until(() => retries() >= 3, "several reconnect attempts");
    expect(snapshotFiles(vm)).toEqual(before);
    expect(shim.exited()).toBe(false);
    const warn = shim.logs().find((l) => l.msg.startsWith("disconnected"));
    expect(warn).toMatchObject({ level: "warn", code: "unavailable" });

    await d.restart();
    // Rotate at once: the shim is still backing off and learns of it on reconnect.
    const v2 = secretValue();
    const rot = await d.client.secrets.rotateSecret({ name: `openai-${vm.name}`, value: v2 });
    await until(() => read(vm.unitEnvFile).includes(v2), "rotation applied after restart");
    await expectAcked(vm.name, rot.revision);
    expect(systemctlLog(vm)).toEqual(["try-restart app-a.service"]);
    expect(status(vm).connection).toBe("connected");
  }, 30_000);

  test("a black-holed server is noticed by the heartbeat watchdog; the shim recovers", async () => {
    const vm = await setupVm("s4");
    const shim = startShim(vm);
    await until(() => status(vm).connection === "connected", "connected");
    await until(() => systemctlLog(vm).length === 1, "initial apply");
    proxy.pause();
    await until(() => status(vm).connection === "disconnected", "watchdog fired", 5000);
    const dead = shim.logs().find((l) => l.msg.startsWith("disconnected"));
    expect(dead?.code).toMatch(/watchdog|unavailable/);
    proxy.resume();
    const v2 = secretValue();
    const rot = await d.client.secrets.rotateSecret({ name: `openai-${vm.name}`, value: v2 });
    await until(() => read(vm.unitEnvFile).includes(v2), "rotation applied after recovery");
    await expectAcked(vm.name, rot.revision);
  }, 30_000);

  test("token revoked → auth error logged once, files kept; a new token in the file recovers", async () => {
    const vm = await setupVm("s5");
    const shim = startShim(vm);
    await until(() => systemctlLog(vm).length === 1, "initial apply");
    await expectAcked(vm.name, (await vmRow(vm.name)).viewRevision);
    const before = snapshotFiles(vm);

    await d.client.access.revokeVmTokens({ name: vm.name });
    await until(() => status(vm).connection === "unauthenticated", "auth failure");
    const v2 = secretValue();
    const rot = await d.client.secrets.rotateSecret({ name: `openai-${vm.name}`, value: v2 });
    await sleep(1000); // two retries at max backoff (400 ms)
    const authErrors = shim.logs().filter((l) => l.level === "error");
    expect(authErrors.length).toBeGreaterThanOrEqual(1);
    expect(authErrors.length).toBeLessThanOrEqual(2); // revoked, then invalid: two distinct
    expect(authErrors[0]).toMatchObject({ code: "unauthenticated", retryInMs: 400 });
    expect(snapshotFiles(vm)).toEqual(before);
    expect(status(vm).lastError).toMatch(/^unauthenticated: /);

    const issued = await d.client.access.issueVmToken({ name: vm.name });
    writeFileSync(vm.tokenFile, `${issued.token}\n`, { mode: 0o600 });
    await until(() => read(vm.unitEnvFile).includes(v2), "applied with the new token");
    await expectAcked(vm.name, rot.revision);
  }, 30_000);

  test("started while the daemon is down: last-known-good files stay, applied once it is up", async () => {
    const vm = await setupVm("s6");
    const first = startShim(vm);
    await until(() => systemctlLog(vm).length === 1, "initial apply");
    await expectAcked(vm.name, (await vmRow(vm.name)).viewRevision);
    await first.stop();
    // A change while the shim is down, then the daemon goes down too.
    const v2 = secretValue();
    const rot = await d.client.secrets.rotateSecret({ name: `openai-${vm.name}`, value: v2 });
    await d.stop();
    const lkg = snapshotFiles(vm);
    // Like a reboot: /run is empty, the persistent copy restores it.
    rmSync(join(vm.out, "run"), { recursive: true });
    truncate(vm.systemctlLog);

    const shim = startShim(vm);
    await until(() => existsSync(vm.unitEnvFile), "restored from the last-known-good copy");
    expect(read(vm.unitEnvFile)).toBe(read(vm.lkgFile));
    expect(read(vm.unitEnvFile)).toContain(vm.openai);
    await until(() => shim.logs().filter((l) => l.msg === "still failing").length >= 2, "retrying");
    expect(status(vm).connection).toBe("disconnected");
    const { [vm.unitEnvFile]: _, ...persistent } = lkg;
    const { [vm.unitEnvFile]: __, ...now } = snapshotFiles(vm);
    expect(now).toEqual(persistent);
    expect(systemctlLog(vm)).toEqual([]);

    await d.restart();
    await until(() => read(vm.unitEnvFile).includes(v2), "applied once the daemon is up");
    await expectAcked(vm.name, rot.revision);
    expect(systemctlLog(vm)).toEqual(["try-restart app-a.service"]);
  }, 30_000);

  test("refuses a token file readable by others, naming the file and not printing the token", async () => {
    const vm = await setupVm("s7");
    const token = read(vm.tokenFile).trim();
    chmodSync(vm.tokenFile, 0o644);
    const shim = startShim(vm);
    await until(() => shim.logs().some((l) => l.level === "error"), "error logged");
    const err = shim.logs().find((l) => l.level === "error");
    expect(err?.error).toContain(vm.tokenFile);
    expect(err?.error).toContain("0644");
    expect(shim.raw()).not.toContain(token);
    expect(existsSync(vm.unitEnvFile)).toBe(false);
  });

  test("TLS: with the CA it applies; without TLS it stays disconnected and writes nothing", async () => {
    const { dir, p } = await spawnTlsDaemon("shim-tls-");
    const cert = join(dir, "cert.pem");
    const admin = createClient({ socket: p.socket ?? "" });
    try {
      const vm = await setupVm("tls-ok", { admin, server: p.tcp ?? "", config: { ca: cert } });
      const tls = startShim(vm);
      await until(() => read(vm.unitEnvFile).includes(vm.openai), "applied over TLS");
      // 127.0.0.1 is an IP: node's DEP0123 (TLS ServerName) would be a journal line per connect.
      expect(tls.raw()).not.toContain("DEP0123");
      expect(
        tls
          .raw()
          .split("\n")
          .filter((l) => l && !l.startsWith("{")),
      ).toEqual([]);
      const plain = await setupVm("tls-plain", { admin, server: p.tcp ?? "" });
      const shim = startShim(plain);
      await until(() => status(plain).connection === "disconnected", "plaintext refused");
      expect(shim.logs().find((l) => l.msg.startsWith("disconnected"))?.code).toBe("unavailable");
      expect(existsSync(plain.unitEnvFile)).toBe(false);
    } finally {
      admin.close();
      p.child.kill("SIGTERM");
      await p.exited;
    }
  }, 30_000);

  test("install --root writes config, unit, drop-ins and the shim copy; refuses a loose token", async () => {
    const root = mkdtempSync(join(outRoot, "root-"));
    const sysctl = fakeSystemctl(root);
    mkdirSync(join(root, "etc/vm-auth"), { recursive: true });
    writeFileSync(join(root, "etc/vm-auth/token"), "vmat_install_test\n", { mode: 0o600 });
    // A drop-in from an earlier install for a unit no longer listed is removed.
    mkdirSync(join(root, "etc/systemd/system/old.service.d"), { recursive: true });
    writeFileSync(
      join(root, "etc/systemd/system/old.service.d/vm-auth.conf"),
      "# Written by vm-auth-shim install; rewritten on each install.\n",
    );
    const args = [
      "install",
      "--root",
      root,
      "--server",
      "10.0.0.2:3090",
      "--insecure",
      "--token-file",
      "/etc/vm-auth/token",
      "--unit",
      "app-a.service:OPENAI_API_KEY",
      "--unit",
      "app-b:OTHER,THIRD:reload",
      "--enable",
      "--systemctl",
      sysctl.bin,
    ];
    const r = await shimCli(args);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const config = JSON.parse(read(join(root, "etc/vm-auth/shim.json")));
    expect(config).toEqual({
      server: "10.0.0.2:3090",
      insecure: true,
      tokenFile: "/etc/vm-auth/token",
      systemctl: sysctl.bin,
      units: [
        { name: "app-a.service", keys: ["OPENAI_API_KEY"], action: "restart" },
        { name: "app-b.service", keys: ["OTHER", "THIRD"], action: "reload" },
      ],
    });
    const unit = read(join(root, "etc/systemd/system/vm-auth-shim.service"));
    expect(unit).toContain(
      "ExecStart=/usr/bin/env node /usr/local/lib/vm-auth/shim.cjs run --config /etc/vm-auth/shim.json\n",
    );
    expect(unit).toContain("Type=simple\n");
    expect(unit).toContain("Restart=always\nRestartSec=2\n");
    expect(unit).toContain("After=network-online.target\n");
    expect(unit).toContain(
      "ExecStartPre=-/usr/bin/env node /usr/local/lib/vm-auth/shim.cjs restore",
    );
    const dropIn = read(join(root, "etc/systemd/system/app-b.service.d/vm-auth.conf"));
    expect(dropIn).toContain("[Unit]\nAfter=vm-auth-shim.service\nWants=vm-auth-shim.service\n");
    expect(dropIn).toContain("[Service]\n");
    expect(dropIn).toContain("EnvironmentFile=-/run/vm-auth/env\n");
    expect(existsSync(join(root, "etc/systemd/system/old.service.d/vm-auth.conf"))).toBe(false);
    expect(readFileSync(join(root, "usr/local/lib/vm-auth/shim.cjs"))).toEqual(readFileSync(SHIM));
    expect(mode(join(root, "usr/local/lib/vm-auth/shim.cjs"))).toBe(0o755);
    expect(sysctl.log()).toEqual([`--root=${root} enable vm-auth-shim.service`]);

    // A loose token file: nothing written, the file named, the token not printed.
    const root2 = mkdtempSync(join(outRoot, "root-"));
    mkdirSync(join(root2, "etc/vm-auth"), { recursive: true });
    writeFileSync(join(root2, "etc/vm-auth/token"), "vmat_loose_token\n", { mode: 0o644 });
    const bad = await shimCli([...args.slice(0, 2), root2, ...args.slice(3)]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(join(root2, "etc/vm-auth/token"));
    expect(bad.stderr).not.toContain("vmat_loose_token");
    expect(existsSync(join(root2, "etc/vm-auth/shim.json"))).toBe(false);
  });

  test("install --bundle, its refusals (one line, exit 1, nothing written), uninstall twice", async () => {
    const root = mkdtempSync(join(outRoot, "bundle-root-"));
    const sysctl = fakeSystemctl(root);
    const token = "vmat_cli_bundle_token_do_not_print";
    const bundleFile = join(outRoot, "guest.bundle");
    writeFileSync(bundleFile, encodeBundle({ server: "192.168.122.1:3090", token, ca: FAKE_CA }), {
      mode: 0o600,
    });
    const common = ["--root", root, "--unit", "app.service", "--systemctl", sysctl.bin];
    const refused = async (args: string[], msg: RegExp) => {
      const r = await shimCli(args);
      expect(r.code, r.stderr).toBe(1);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(msg);
      expect(r.stderr + r.stdout).not.toContain(token);
      expect(readdirSync(root).filter((f) => f !== "token")).toEqual(["systemctl"]);
    };
    await refused(
      ["install", "--bundle", bundleFile, "--server", "h:1", ...common],
      /^vm-auth-shim: --server: cannot be combined with --bundle/,
    );
    await refused(
      ["install", "--bundle", bundleFile, "--ca", "/x.pem", ...common],
      /^vm-auth-shim: --ca: cannot be combined with --bundle/,
    );
    await refused(
      ["install", "--bundle", join(outRoot, "missing.bundle"), ...common],
      /^vm-auth-shim: --bundle: cannot read .*missing.bundle: ENOENT/,
    );
    writeFileSync(join(root, "token"), `${token}\n`, { mode: 0o600 });
    await refused(
      ["install", "--server", "10.0.0.2:3090", "--token-file", "/token", ...common],
      /^vm-auth-shim: server: 10.0.0.2:3090 is not a loopback address; give --ca FILE or --tls for TLS, or --insecure/,
    );
    rmSync(join(root, "token"));

    const r = await shimCli(["install", "--bundle", bundleFile, ...common, "--enable"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toContain(`wrote ${join(root, "etc/vm-auth/token")}\n`);
    expect(r.stdout).not.toContain(token);
    expect(read(join(root, "etc/vm-auth/token"))).toBe(`${token}\n`);
    expect(mode(join(root, "etc/vm-auth/token"))).toBe(0o600);
    expect(read(join(root, "etc/vm-auth/ca.pem"))).toBe(FAKE_CA);
    const unit = read(join(root, "etc/systemd/system/vm-auth-shim.service"));
    expect(unit).toContain("LoadCredential=token:/etc/vm-auth/token\n");
    expect(unit).toContain("ProtectSystem=strict\n");

    const un = await shimCli(["uninstall", "--purge", "--root", root, "--systemctl", sysctl.bin]);
    expect(un.stderr).toBe("");
    expect(un.stdout).toContain(`ran systemctl --root=${root} disable vm-auth-shim.service\n`);
    expect(un.stdout).toContain(`removed ${join(root, "etc/vm-auth/token")}\n`);
    expect(existsSync(join(root, "etc/systemd/system/vm-auth-shim.service"))).toBe(false);
    expect(existsSync(join(root, "etc/systemd/system/app.service.d"))).toBe(false);
    expect(existsSync(join(root, "etc/vm-auth"))).toBe(false);
    const again = await shimCli(["uninstall", "--root", root, "--systemctl", sysctl.bin]);
    expect(again).toEqual({ code: 0, stdout: "nothing to remove\n", stderr: "" });
  });
});

// --- helpers ---

interface Vm {
  name: string;
  openai: string;
  other: string;
  out: string;
  config: string;
  tokenFile: string;
  unitEnvFile: string;
  envDFile: string;
  lkgFile: string;
  stateFile: string;
  statusFile: string;
  logFile: string;
  systemctlLog: string;
}

/**
 * A VM with two VM-scoped secrets, its token file, config and fake systemctl; by default on
 * the in-process daemon through the proxy.
 */
async function setupVm(
  name: string,
  opts: { admin?: VmAuthClient; server?: string; config?: Record<string, unknown> } = {},
): Promise<Vm> {
  const admin = opts.admin ?? d.client;
  const created = await admin.access.createVm({ name });
  const openai = secretValue(`sk-${name}`);
  const other = secretValue(`other-${name}`);
  await admin.secrets.createSecret({
    name: `openai-${name}`,
    provider: "openai",
    scope: `vm:${name}`,
    value: openai,
  });
  await admin.secrets.createSecret({
    name: `other-${name}`,
    env: "OTHER_KEY",
    scope: `vm:${name}`,
    value: other,
  });
  const out = join(outRoot, name);
  // State, status and logs go under the suite root: the leak check reads them.
  const kept = join(testRoot() ?? outRoot, `shim-${name}`);
  mkdirSync(out, { recursive: true });
  mkdirSync(kept, { recursive: true });
  const sysctl = fakeSystemctl(out);
  const vm: Vm = {
    name,
    openai,
    other,
    out,
    config: join(out, "shim.json"),
    tokenFile: join(out, "token"),
    unitEnvFile: join(out, "run/vm-auth/env"),
    envDFile: join(out, "etc/environment.d/vm-auth.conf"),
    lkgFile: join(out, "var/lib/vm-auth/last-known-good.env"),
    stateFile: join(kept, "shim-state.json"),
    statusFile: join(kept, "status.json"),
    logFile: join(kept, "shim.log"),
    systemctlLog: sysctl.logFile,
  };
  writeFileSync(vm.tokenFile, `${created.token}\n`, { mode: 0o600 });
  const config = {
    server: opts.server ?? `127.0.0.1:${proxy.port}`,
    tokenFile: vm.tokenFile,
    environmentDFile: vm.envDFile,
    unitEnvFile: vm.unitEnvFile,
    lastKnownGoodFile: vm.lkgFile,
    stateFile: vm.stateFile,
    statusFile: vm.statusFile,
    units: [
      { name: "app-a.service", keys: ["OPENAI_API_KEY"] },
      { name: "app-b.service", keys: ["OTHER_KEY"] },
    ],
    debounceMs: 50,
    backoff: { initialMs: 50, maxMs: 400 },
    heartbeatMs: HEARTBEAT_MS,
    systemctl: sysctl.bin,
    logLevel: "debug",
    ...opts.config,
  };
  writeFileSync(vm.config, JSON.stringify(config, null, 2));
  return vm;
}

interface LogLine {
  level: string;
  msg: string;
  [k: string]: unknown;
}

interface Shim {
  child: ChildProcess;
  logs(): LogLine[];
  raw(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

function startShim(vm: Vm): Shim {
  const child = spawn(process.execPath, [SHIM, "run", "--config", vm.config], {
    stdio: ["ignore", "ignore", "pipe"],
  });
  let raw = "";
  let exited = false;
  const exit = new Promise<void>((r) =>
    child.on("exit", () => {
      exited = true;
      r();
    }),
  );
  child.stderr?.on("data", (b: Buffer) => {
    raw += b.toString();
    appendFileSync(vm.logFile, b);
  });
  const shim: Shim = {
    child,
    raw: () => raw,
    logs: () =>
      raw
        .split("\n")
        .filter((l) => l.startsWith("{"))
        .map((l) => JSON.parse(l) as LogLine),
    exited: () => exited,
    async stop() {
      if (!exited) child.kill("SIGTERM");
      await exit;
    },
  };
  shims.push(shim);
  return shim;
}

function fakeSystemctl(dir: string) {
  const bin = join(dir, "systemctl");
  const logFile = join(dir, "systemctl.log");
  writeFileSync(bin, `#!/bin/sh\necho "$*" >> '${logFile}'\n`, { mode: 0o755 });
  return { bin, logFile, log: () => lines(logFile) };
}

function systemctlLog(vm: Vm): string[] {
  return lines(vm.systemctlLog);
}

function lines(f: string): string[] {
  return existsSync(f) ? read(f).split("\n").filter(Boolean) : [];
}

function truncate(f: string) {
  writeFileSync(f, "");
}

function read(f: string): string {
  return existsSync(f) ? readFileSync(f, "utf8") : "";
}

function mode(f: string): number {
  return statSync(f).mode & 0o777;
}

function status(vm: Vm): { connection: string; serverRevision: number; lastError?: string } {
  try {
    return JSON.parse(readFileSync(vm.statusFile, "utf8"));
  } catch {
    return { connection: "", serverRevision: 0 };
  }
}

/** Content, inode and mtime of every file the shim writes. */
function snapshotFiles(vm: Vm): Record<string, { content: string; ino: number; mtimeMs: number }> {
  const out: Record<string, { content: string; ino: number; mtimeMs: number }> = {};
  for (const f of [vm.unitEnvFile, vm.envDFile, vm.lkgFile, vm.stateFile]) {
    const st = statSync(f);
    out[f] = { content: read(f), ino: st.ino, mtimeMs: st.mtimeMs };
  }
  return out;
}

async function vmRow(name: string) {
  const row = (await d.client.access.listVms({})).vms.find((v) => v.name === name);
  if (!row) throw new Error(`vm ${name} not listed`);
  return row;
}

/** The server saw the shim apply `revision` (or a later one: token changes bump it too). */
async function expectAcked(name: string, revision: bigint) {
  await until(async () => {
    const r = await vmRow(name);
    return r.appliedRevision >= revision && r.connected && !r.behind;
  }, `vm ${name} acked revision ${revision}`);
}

function shimCli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) =>
    execFile(process.execPath, [SHIM, ...args], (err, stdout, stderr) =>
      res({ code: err ? (typeof err.code === "number" ? err.code : 1) : 0, stdout, stderr }),
    ),
  );
}

async function until(pred: () => boolean | Promise<boolean>, what: string, ms = 8000) {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await sleep(25);
  }
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}

interface Proxy {
  port: number;
  /** Stops forwarding bytes (connections stay open): a server that hangs. */
  pause(): void;
  /** Forwards again; connections opened before are dropped (their streams are corrupt). */
  resume(): void;
  close(): Promise<void>;
}

/** A loopback TCP proxy with a fixed port in front of whatever address `target()` gives. */
async function createProxy(target: () => string): Promise<Proxy> {
  const sockets = new Set<Socket>();
  let paused = false;
  const server: Server = createServer((client) => {
    const [host = "", port = ""] = target().split(/:(?=\d+$)/);
    const upstream = createConnection(Number(port), host);
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.on("close", () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.on("data", (b) => paused || upstream.write(b));
    upstream.on("data", (b) => paused || client.write(b));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  if (!addr || typeof addr === "string") throw new Error("proxy has no port");
  return {
    port: addr.port,
    pause() {
      paused = true;
    },
    resume() {
      paused = false;
      for (const s of sockets) s.destroy();
    },
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
