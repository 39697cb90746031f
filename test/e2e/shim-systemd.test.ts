// biome-ignore-all lint/suspicious/noTemplateCurlyInString: literal ${...} is test data here
/**
 * The built shim under real systemd (252) in a throw-away nspawn machine, against the built
 * secretsd run as a child process on host 127.0.0.1 (the machine shares the host network):
 * `vm-auth-shim install` inside, two dependent services, and proof from /proc/<MainPID>/environ
 * that (1) tricky values arrive byte for byte, (2) a rotation restarts exactly the service that
 * reads the key, (3) a SIGKILLed secretsd that comes back loses no revision, and (4) a machine
 * booted while secretsd is down starts its services on the last-known-good env and takes the
 * change once secretsd is up. The machine's /etc/vm-auth, /etc/systemd/system,
 * /etc/environment.d, /var/lib/vm-auth and /usr/local are host temp dirs, so they
 * survive a "reboot" (a new container) the way a VM's disk does; /run does not.
 * Skips only when nspawn is unavailable, and fails instead when CI is set.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type VmAuthClient } from "../../client/index.js";
import { type DaemonProcess, SECRETSD, spawnDaemon } from "../helpers/process.js";
import { testRoot, track } from "../helpers/values.js";
import { bootContainer, type Container, nspawnAvailable } from "./helpers/nspawn.js";

const avail = nspawnAvailable();
const inCI = Boolean(process.env.CI);
if (!avail.ok) {
  console.warn(`shim-systemd e2e: ${inCI ? "FAILING (CI requires it)" : "skipped"}: ${avail.why}`);
}

const DIST = resolve(import.meta.dirname, "../../dist");
const SHIM_IN = "/opt/vm-auth/dist/shim.cjs";
const INSTALLED = "/usr/local/lib/vm-auth/shim.cjs";
const VM = "e2e-vm";
const rand = () => Math.random().toString(36).slice(2, 10);

/** Every value is unique per run (so the suite's leak check can look for it) and tricky. */
const TRICKY: Record<string, string> = {
  T_QUOTES: `he said "hi" and 'bye' ${rand()}`,
  T_BACKSLASH: `C:\\path\\n\\t\\\\end\\ ${rand()}\\`,
  T_DOLLAR: `$HOME $$ $ ${rand()} end$`,
  T_BRACES: `\${X} \${HOME:-d} \${Y:+a} $(id) ${rand()}`,
  T_BACKTICK: `\`id\` and \\\` ${rand()}`,
  T_HASH: `#not a comment ${rand()}`,
  T_SEMI: `;nor this; ${rand()}`,
  T_SPACES: `  lead and trail ${rand()}  `,
  T_EQUALS: `=a=b==${rand()}=`,
  T_TAB: `\ta\tb ${rand()}\t`,
  T_UNICODE: `héllo wörld 日本 😀 \u2028 ${rand()}`,
  T_NEWLINES: `line1\nline2 ${rand()}\n\nT_EVIL=1\n# c\n`,
  T_PEM: `-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBgkqhkiG9w0BAQEFAAS+/=${rand()}\n-----END PRIVATE KEY-----\n`,
};

describe.skipIf(!avail.ok && !inCI)("vm-auth-shim under real systemd (nspawn)", () => {
  const host = mkdtempSync(join(tmpdir(), "vm-auth-shim-e2e-"));
  const dataDir = join(testRoot() ?? host, "shim-e2e-secretsd");
  const persisted = [
    "/etc/vm-auth",
    "/etc/systemd/system",
    "/etc/environment.d",
    "/var/lib/vm-auth",
    // /usr is the host's, read-only; a fresh /usr/local over it takes the installed shim.
    "/usr/local",
  ];
  let port = 0;
  let daemon: DaemonProcess | undefined;
  let admin: VmAuthClient;
  let c: Container | undefined;
  let openaiValue = "";

  const boot = async () => {
    c = await bootContainer({
      binds: persisted.map((p) => `${join(host, "root", p)}:${p}`),
      bindRo: [`${DIST}:/opt/vm-auth/dist`],
      timeoutMs: 30_000,
    });
    console.info(`shim-systemd e2e: container ${c.name} booted in ${c.bootMs} ms`);
    return c;
  };
  const startSecretsd = async () => {
    daemon = await spawnDaemon(dataDir, ["--listen", `127.0.0.1:${port}`, "--config", cfgFile]);
    admin?.close();
    admin = createClient({ socket: daemon.socket ?? "" });
  };
  const killSecretsd = async () => {
    if (!daemon) return;
    daemon.child.kill("SIGKILL");
    const e = await daemon.exited;
    expect(e.signal).toBe("SIGKILL");
    daemon = undefined;
  };
  const cfgFile = join(host, "secretsd.json");

  beforeAll(async () => {
    if (!avail.ok) throw new Error(`CI requires the nspawn e2e suite: ${avail.why}`);
    for (const f of [join(DIST, "shim.cjs"), SECRETSD]) {
      if (!existsSync(f) || readFileSync(f, "utf8").includes("not built yet")) {
        throw new Error(`${f} is missing: run \`node scripts/build.mjs\` first`);
      }
    }
    for (const p of persisted) mkdirSync(join(host, "root", p), { recursive: true });
    writeFileSync(cfgFile, JSON.stringify({ heartbeatMs: 1000 }));
    port = await freePort();
    await startSecretsd();
    const vm = await admin.access.createVm({ name: VM });
    for (const v of Object.values(TRICKY)) track(v);
    openaiValue = track(`sk-"quoted" $OPENAI \${KEY} \\ ${rand()}`);
    await admin.secrets.createSecret({
      name: "openai-e2e",
      provider: "openai",
      scope: `vm:${VM}`,
      value: openaiValue,
    });
    await admin.secrets.createSecret({
      name: "other-e2e",
      env: "OTHER",
      scope: `vm:${VM}`,
      value: track(`other ${rand()}`),
    });
    for (const [env, value] of Object.entries(TRICKY)) {
      await admin.secrets.createSecret({
        name: env.toLowerCase().replace(/_/g, "-"),
        env,
        scope: `vm:${VM}`,
        value,
      });
    }
    const m = await boot();
    await m.writeFile("/etc/vm-auth/token", `${vm.token}\n`, 0o600);
    for (const name of ["app-a", "app-b"]) {
      // Type=exec: the start job ends after execve, so /proc/MainPID/environ is the service's.
      await m.writeFile(
        `/etc/systemd/system/${name}.service`,
        `[Unit]\nDescription=${name}\n[Service]\nType=exec\nExecStart=/bin/sh -c 'exec sleep infinity'\n[Install]\nWantedBy=multi-user.target\n`,
      );
    }
  }, 60_000);

  afterAll(async () => {
    await c?.stop();
    await killSecretsd().catch(() => {});
    admin?.close();
    rmSync(host, { recursive: true, force: true });
  }, 30_000);

  it("install, then (1) app-a's environ holds every tricky value byte for byte", async () => {
    const m = c as Container;
    const t0 = Date.now();
    const out = await m.exec([
      "node",
      SHIM_IN,
      "install",
      "--server",
      `127.0.0.1:${port}`,
      "--token-file",
      "/etc/vm-auth/token",
      "--unit",
      "app-a.service:OPENAI_API_KEY",
      "--unit",
      "app-b.service:OTHER",
      "--debounce-ms",
      "200",
      "--heartbeat-ms",
      "1000",
      "--backoff-initial-ms",
      "200",
      "--backoff-max-ms",
      "2000",
      "--enable",
      "--now",
    ]);
    expect(out.stdout).toContain(`wrote ${INSTALLED}`);
    await m.systemctl("enable", "--now", "app-a.service", "app-b.service");
    await until(
      async () => (await m.unitEnv("app-a.service")).get("OPENAI_API_KEY") === openaiValue,
      "app-a has its env",
    );
    console.info(`shim-systemd e2e: install → app-a running with its env in ${Date.now() - t0} ms`);
    // The first apply's restart round (both units: every name is new) is over once acked.
    await expectApplied();
    expect((await m.systemctl("is-active", "vm-auth-shim.service")).trim()).toBe("active");
    expect((await m.systemctl("is-enabled", "vm-auth-shim.service")).trim()).toBe("enabled");
    const env = await m.unitEnv("app-a.service");
    const wrong = Object.entries(TRICKY).filter(
      ([k, v]) => !Buffer.from(env.get(k) ?? "\0").equals(Buffer.from(v)),
    );
    expect(wrong.map(([k]) => `${k}: got ${JSON.stringify(env.get(k))}`)).toEqual([]);
    expect(env.has("T_EVIL")).toBe(false);
    // The environment.d file reaches user services too: every value without a control
    // character (the ones that dialect cannot carry, reported as omitted in the ack).
    const user = await m.userServiceEnv();
    const control = (v: string) => [...v].some((ch) => ch < " " || ch === "\x7f");
    const carried = Object.entries(TRICKY).filter(([, v]) => !control(v));
    expect(carried.length).toBeGreaterThan(8);
    expect(carried.filter(([k, v]) => user.get(k) !== v).map(([k]) => k)).toEqual([]);
    expect(user.has("T_NEWLINES")).toBe(false);
    // The unit file and environment.d file are 0600 root; /run/vm-auth 0700.
    const modes = await m.exec([
      "stat",
      "-c",
      "%a %U %n",
      "/run/vm-auth",
      "/run/vm-auth/env",
      "/etc/environment.d/vm-auth.conf",
      "/var/lib/vm-auth/shim-state.json",
    ]);
    expect(modes.stdout.trim().split("\n")).toEqual([
      "700 root /run/vm-auth",
      "600 root /run/vm-auth/env",
      "600 root /etc/environment.d/vm-auth.conf",
      "600 root /var/lib/vm-auth/shim-state.json",
    ]);
  }, 60_000);

  it("(2) rotation: app-a restarts with the new value, app-b keeps its PID", async () => {
    const m = c as Container;
    const pidA = await m.mainPid("app-a.service");
    const pidB = await m.mainPid("app-b.service");
    const v2 = track(`sk-rotated ${rand()} "$X"`);
    const t0 = Date.now();
    const rot = await admin.secrets.rotateSecret({ name: "openai-e2e", value: v2 });
    await until(
      async () => (await m.unitEnv("app-a.service")).get("OPENAI_API_KEY") === v2,
      "rotated",
    );
    console.info(`shim-systemd e2e: rotate → app-a restarted with it in ${Date.now() - t0} ms`);
    expect(await m.mainPid("app-a.service")).not.toBe(pidA);
    expect(await m.mainPid("app-b.service")).toBe(pidB);
    await expectApplied(rot.revision);
    const row = await vmRow();
    expect(row.lastRestartedUnits).toEqual(["app-a.service"]);
    const pid = await m.mainPid("vm-auth-shim.service");
    const mem = await m.readFile(`/proc/${pid}/status`);
    const kib = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, "m").exec(mem)?.[1]) / 1024;
    console.info(
      `shim-systemd e2e: shim RSS ${kib("VmRSS").toFixed(1)} MiB, peak ${kib("VmHWM").toFixed(1)} MiB`,
    );
  }, 30_000);

  it("(3) secretsd SIGKILLed and restarted: the shim resumes, a rotation after lands, no revision missed", async () => {
    const m = c as Container;
    const pidB = await m.mainPid("app-b.service");
    const before = await m.readFile("/run/vm-auth/env");
    await killSecretsd();
    await until(async () => (await shimStatus(m)).connection === "disconnected", "shim noticed");
    expect(await m.readFile("/run/vm-auth/env")).toBe(before);
    expect((await m.systemctl("is-active", "vm-auth-shim.service")).trim()).toBe("active");
    await startSecretsd();
    const v3 = track(`sk-after-kill ${rand()}`);
    const rot = await admin.secrets.rotateSecret({ name: "openai-e2e", value: v3 });
    await until(
      async () => (await m.unitEnv("app-a.service")).get("OPENAI_API_KEY") === v3,
      "applied after restart",
    );
    await expectApplied(rot.revision);
    expect(await m.mainPid("app-b.service")).toBe(pidB);
    const st = await shimStatus(m);
    expect(st).toMatchObject({ running: true, connection: "connected" });
    expect(st.appliedRevision).toBeGreaterThanOrEqual(Number(rot.revision));
  }, 30_000);

  it("(4) booted while secretsd is down: services start on the last-known-good env; the change lands once it is up", async () => {
    const lkgValue = (await (c as Container).unitEnv("app-a.service")).get("OPENAI_API_KEY");
    await (c as Container).stop();
    c = undefined;
    // A change made while the machine is off, then secretsd goes away too.
    const v4 = track(`sk-while-off ${rand()}`);
    const rot = await admin.secrets.rotateSecret({ name: "openai-e2e", value: v4 });
    await killSecretsd();

    const m = await boot();
    await until(
      async () =>
        (
          await m.exec(["systemctl", "is-active", "app-a.service"], { allowFail: true })
        ).stdout.trim() === "active",
      "app-a started",
    );
    expect((await m.unitEnv("app-a.service")).get("OPENAI_API_KEY")).toBe(lkgValue);
    expect((await m.unitEnv("app-b.service")).get("OTHER")).toMatch(/^other /);
    expect((await m.systemctl("is-active", "vm-auth-shim.service")).trim()).toBe("active");
    await until(async () => (await shimStatus(m)).connection === "disconnected", "shim retrying");
    const pidB = await m.mainPid("app-b.service");

    await startSecretsd();
    await until(
      async () => (await m.unitEnv("app-a.service")).get("OPENAI_API_KEY") === v4,
      "change landed",
      20_000,
    );
    await expectApplied(rot.revision);
    expect(await m.mainPid("app-b.service")).toBe(pidB);
    const logs = await m.exec([
      "journalctl",
      "-u",
      "vm-auth-shim.service",
      "-o",
      "cat",
      "--no-pager",
    ]);
    expect(logs.stdout).toContain("restored the unit env file from its last-known-good copy");
    for (const v of [...Object.values(TRICKY), openaiValue, v4]) {
      expect(logs.stdout.includes(v), "a value reached the journal").toBe(false);
    }
  }, 60_000);

  async function vmRow() {
    const row = (await admin.access.listVms({})).vms.find((v) => v.name === VM);
    if (!row) throw new Error(`vm ${VM} not listed`);
    return row;
  }

  /** The server saw the shim apply `revision` or later, with nothing newer outstanding. */
  async function expectApplied(revision?: bigint) {
    await until(
      async () => {
        const r = await vmRow();
        return r.connected && !r.behind && r.appliedRevision >= (revision ?? r.viewRevision);
      },
      `acked ${revision ?? "view"} revision`,
    );
  }
});

async function shimStatus(m: Container) {
  const r = await m.exec(["node", INSTALLED, "status", "--json"], { allowFail: true });
  return JSON.parse(r.stdout) as { running: boolean; connection: string; appliedRevision: number };
}

async function until(pred: () => Promise<boolean>, what: string, ms = 15_000) {
  const end = Date.now() + ms;
  for (;;) {
    let ok = false;
    try {
      ok = await pred();
    } catch {
      ok = false; // a unit between restarts has no main PID yet
    }
    if (ok) return;
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once("error", rej);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      s.close(() => (a && typeof a === "object" ? res(a.port) : rej(new Error("no port"))));
    });
  });
}
