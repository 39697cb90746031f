import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { encodeBundle } from "../common/bundle.js";
import { install } from "./install.js";
import { resolveShimConfig } from "./resolve-config.js";
import { uninstall } from "./uninstall.js";
import { dropIn, shimUnit } from "./unit-files.js";

const dir = mkdtempSync(join(tmpdir(), "shim-install-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function setup(name: string, tokenMode = 0o600) {
  const root = join(dir, name);
  mkdirSync(join(root, "etc/vm-auth"), { recursive: true });
  writeFileSync(join(root, "etc/vm-auth/token"), "vmat_x\n", { mode: tokenMode });
  const shim = join(dir, `${name}-shim.cjs`);
  writeFileSync(shim, "// shim\n");
  const calls: string[][] = [];
  const run = async (bin: string, args: string[]) => {
    calls.push([bin, ...args]);
    return { code: 0, stderr: "" };
  };
  return { root, shim, calls, run };
}

const base = { server: "10.0.0.1:3090", tokenFile: "/etc/vm-auth/token", insecure: true };
const units = [{ name: "app.service", keys: ["A"], action: "restart" as const }];

describe("install", () => {
  it("writes everything under root, validates first, runs systemctl --root enable", async () => {
    const t = setup("ok");
    const res = await install({
      config: { ...base, debounceMs: 100 },
      units,
      root: t.root,
      shimSource: t.shim,
      enable: true,
      run: t.run,
    });
    expect(res.calls).toEqual([`systemctl --root=${t.root} enable vm-auth-shim.service`]);
    expect(t.calls).toEqual([["systemctl", `--root=${t.root}`, "enable", "vm-auth-shim.service"]]);
    expect(JSON.parse(readFileSync(join(t.root, "etc/vm-auth/shim.json"), "utf8"))).toEqual({
      ...base,
      debounceMs: 100,
      units,
    });
    expect(readFileSync(join(t.root, "usr/local/lib/vm-auth/shim.cjs"), "utf8")).toBe("// shim\n");
    expect(
      readFileSync(join(t.root, "etc/systemd/system/app.service.d/vm-auth.conf"), "utf8"),
    ).toBe(dropIn(units[0] as (typeof units)[0], "/run/vm-auth/env"));
  });

  it("--node: the unit runs that node (an older guest's own build); refused unless executable and visible", async () => {
    const t = setup("node");
    const unitFile = join(t.root, "etc/systemd/system/vm-auth-shim.service");
    const opts = { config: base, units, root: t.root, shimSource: t.shim, run: t.run };
    await install(opts);
    expect(readFileSync(unitFile, "utf8")).toContain(
      "ExecStart=/usr/bin/env node /usr/local/lib/vm-auth/shim.cjs run",
    );
    mkdirSync(join(t.root, "opt/node/bin"), { recursive: true });
    writeFileSync(join(t.root, "opt/node/bin/node"), "#!/bin/sh\n", { mode: 0o755 });
    await install({ ...opts, node: "/opt/node/bin/node" });
    const unit = readFileSync(unitFile, "utf8");
    expect(unit).toContain(
      "ExecStartPre=-/opt/node/bin/node /usr/local/lib/vm-auth/shim.cjs restore",
    );
    expect(unit).toContain("ExecStart=/opt/node/bin/node /usr/local/lib/vm-auth/shim.cjs run");
    writeFileSync(join(t.root, "opt/node/bin/old"), "", { mode: 0o644 });
    for (const [node, msg] of [
      ["/opt/node/bin/missing", "--node: /opt/node/bin/missing is not an executable file"],
      ["/opt/node/bin/old", "--node: /opt/node/bin/old is not an executable file"],
      ["/opt/node/bin", "--node: /opt/node/bin is not an executable file"],
      ["/root/.nvm/node", "--node: /root/.nvm/node is under /root"],
    ] as const) {
      await expect(install({ ...opts, node })).rejects.toThrow(msg);
      expect(readFileSync(unitFile, "utf8")).toBe(unit);
    }
  });

  it("--now cannot be combined with --root (nothing there to start)", async () => {
    const t = setup("calls");
    await expect(
      install({ config: base, units, root: t.root, shimSource: t.shim, now: true, run: t.run }),
    ).rejects.toThrow(/--now cannot be used with --root/);
  });

  it("refuses a loose token file or a bad config before writing anything", async () => {
    const t = setup("loose", 0o644);
    await expect(
      install({ config: base, units, root: t.root, shimSource: t.shim, run: t.run }),
    ).rejects.toThrow(/mode 0644/);
    const u = setup("bad");
    await expect(
      install({
        config: { ...base, server: "nope" },
        units,
        root: u.root,
        shimSource: u.shim,
        run: u.run,
      }),
    ).rejects.toThrow(/server/);
    for (const r of [t.root, u.root]) {
      expect(existsSync(join(r, "etc/vm-auth/shim.json"))).toBe(false);
      expect(existsSync(join(r, "etc/systemd"))).toBe(false);
    }
  });

  it("a systemctl failure is an error naming the call", async () => {
    const t = setup("fail");
    await expect(
      install({
        config: base,
        units,
        root: t.root,
        shimSource: t.shim,
        enable: true,
        run: async () => ({ code: 1, stderr: "Failed to enable unit\n" }),
      }),
    ).rejects.toThrow(
      /systemctl --root=.* enable vm-auth-shim.service exited 1: Failed to enable unit/,
    );
  });
});

const unitOpts = {
  shim: "/usr/local/lib/vm-auth/shim.cjs",
  config: "/etc/vm-auth/shim.json",
  tokenFile: "/etc/vm-auth/token",
};

describe("unit texts", () => {
  it("the shim unit: simple, restore before start, restart forever", () => {
    const u = shimUnit(unitOpts);
    expect(u).toContain("[Service]\n");
    expect(u).toContain("Type=simple\n");
    expect(u).toContain(
      "ExecStartPre=-/usr/bin/env node /usr/local/lib/vm-auth/shim.cjs restore --config /etc/vm-auth/shim.json\n",
    );
    expect(u).toContain(
      "ExecStart=/usr/bin/env node /usr/local/lib/vm-auth/shim.cjs run --config /etc/vm-auth/shim.json\n",
    );
    expect(u).toContain("Restart=always\nRestartSec=2\n");
    expect(u).toContain("StartLimitIntervalSec=0\n");
    expect(u).toContain("WantedBy=multi-user.target\n");
  });

  it("a drop-in loads the env file only for services", () => {
    const svc = dropIn({ name: "a.service", keys: ["*"], action: "restart" }, "/run/vm-auth/env");
    expect(svc).toContain("After=vm-auth-shim.service\nWants=vm-auth-shim.service\n");
    expect(svc).toContain("EnvironmentFile=-/run/vm-auth/env\n");
    const timer = dropIn({ name: "a.timer", keys: ["*"], action: "restart" }, "/run/vm-auth/env");
    expect(timer).not.toContain("[Service]");
  });
});

describe("the hardened unit", () => {
  it("passes the token (and CA) as credentials, keeps /run/vm-auth, sandboxes the rest", () => {
    const u = shimUnit({ ...unitOpts, ca: "/etc/vm-auth/ca.pem", readWritePaths: ["/srv/env"] });
    for (const line of [
      "LoadCredential=token:/etc/vm-auth/token",
      "LoadCredential=ca:/etc/vm-auth/ca.pem",
      "StateDirectory=vm-auth",
      "StateDirectoryMode=0700",
      "RuntimeDirectory=vm-auth",
      "RuntimeDirectoryMode=0700",
      "RuntimeDirectoryPreserve=yes",
      "ProtectSystem=strict",
      "ReadWritePaths=-/srv/env",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "PrivateDevices=yes",
      "NoNewPrivileges=yes",
      "CapabilityBoundingSet=",
      "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
      "SystemCallFilter=@system-service",
      "SystemCallArchitectures=native",
      "LockPersonality=yes",
      "RestrictNamespaces=yes",
      "RestrictRealtime=yes",
      "RestrictSUIDSGID=yes",
      "ProtectKernelTunables=yes",
      "ProtectKernelModules=yes",
      "ProtectKernelLogs=yes",
      "ProtectControlGroups=yes",
      "ProtectClock=yes",
      "ProtectHostname=yes",
    ]) {
      expect(u.split("\n"), line).toContain(line);
    }
    // V8's JIT writes code pages: the one option node cannot run under.
    expect(u).not.toMatch(/^MemoryDenyWriteExecute=/m);
    expect(shimUnit(unitOpts)).not.toContain("LoadCredential=ca:");
    expect(shimUnit(unitOpts)).not.toContain("ReadWritePaths=");
  });

  it("ReadWritePaths= names the env file directories outside /var/lib/vm-auth and /run/vm-auth", async () => {
    const t = setup("rw");
    await install({ config: base, units, root: t.root, shimSource: t.shim, run: t.run });
    const unit = readFileSync(join(t.root, "etc/systemd/system/vm-auth-shim.service"), "utf8");
    expect(unit.match(/^ReadWritePaths=.*$/gm)).toEqual(["ReadWritePaths=-/etc/environment.d"]);
    // It must exist when the unit starts (ProtectSystem=strict cannot create it).
    expect(statSync(join(t.root, "etc/environment.d")).mode & 0o777).toBe(0o755);
    const u = setup("rw2");
    await install({
      config: { ...base, unitEnvFile: "/srv/vm-auth/env", stateFile: "/var/lib/vm-auth/s/x.json" },
      units,
      root: u.root,
      shimSource: u.shim,
      run: u.run,
    });
    const unit2 = readFileSync(join(u.root, "etc/systemd/system/vm-auth-shim.service"), "utf8");
    expect(unit2.match(/^ReadWritePaths=.*$/gm)).toEqual([
      "ReadWritePaths=-/etc/environment.d",
      "ReadWritePaths=-/srv/vm-auth",
    ]);
    expect(statSync(join(u.root, "srv/vm-auth")).mode & 0o777).toBe(0o700);
  });

  it("refuses a file the unit could not see (ProtectHome=, PrivateTmp=), before writing", async () => {
    const t = setup("hidden");
    await expect(
      install({
        config: { ...base, stateFile: "/root/state.json" },
        units,
        root: t.root,
        shimSource: t.shim,
        run: t.run,
      }),
    ).rejects.toThrow(/^stateFile: \/root\/state.json is under \/root, which the hardened unit/);
    await expect(
      install({
        config: base,
        units,
        root: t.root,
        configFile: "/tmp/shim.json",
        shimSource: t.shim,
        run: t.run,
      }),
    ).rejects.toThrow(/^--config: \/tmp\/shim.json is under \/tmp/);
    expect(existsSync(join(t.root, "etc/systemd"))).toBe(false);
  });
});

const TOKEN = "vmat_BundleTokenDoNotPrint0123456789";
const CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";

describe("install --ca", () => {
  it("the CA must be a readable PEM (LoadCredential= would keep the unit from starting)", async () => {
    const t = setup("ca");
    const opts = { units, root: t.root, shimSource: t.shim, run: t.run };
    const config = { server: "10.0.0.1:3090", tokenFile: "/etc/vm-auth/token", ca: "/srv/ca.pem" };
    await expect(install({ ...opts, config })).rejects.toThrow(
      `ca: cannot read ${join(t.root, "srv/ca.pem")}: ENOENT`,
    );
    mkdirSync(join(t.root, "srv"));
    writeFileSync(join(t.root, "srv/ca.pem"), "not a certificate\n");
    await expect(install({ ...opts, config })).rejects.toThrow(/^ca: .* holds no PEM certificate/);
    expect(existsSync(join(t.root, "etc/systemd"))).toBe(false);
    writeFileSync(join(t.root, "srv/ca.pem"), CA);
    await install({ ...opts, config });
    const unit = readFileSync(join(t.root, "etc/systemd/system/vm-auth-shim.service"), "utf8");
    expect(unit).toContain("LoadCredential=ca:/srv/ca.pem\n");
  });
});

describe("install --bundle", () => {
  const bare = (name: string) => {
    const t = setup(name);
    rmSync(join(t.root, "etc"), { recursive: true });
    return t;
  };

  it("writes the token 0600 in a 0700 /etc/vm-auth, the CA, and a config pointing at them", async () => {
    const t = bare("bundle-ca");
    const bundle = encodeBundle({ server: "192.168.122.1:3090", token: TOKEN, ca: CA });
    const res = await install({
      config: {},
      bundle,
      units,
      root: t.root,
      shimSource: t.shim,
      run: t.run,
    });
    const at = (p: string) => join(t.root, p);
    expect(readFileSync(at("etc/vm-auth/token"), "utf8")).toBe(`${TOKEN}\n`);
    expect(statSync(at("etc/vm-auth/token")).mode & 0o777).toBe(0o600);
    expect(statSync(at("etc/vm-auth")).mode & 0o777).toBe(0o700);
    expect(readFileSync(at("etc/vm-auth/ca.pem"), "utf8")).toBe(CA);
    expect(statSync(at("etc/vm-auth/ca.pem")).mode & 0o777).toBe(0o644);
    const config = JSON.parse(readFileSync(at("etc/vm-auth/shim.json"), "utf8"));
    expect(config).toEqual({
      server: "192.168.122.1:3090",
      tokenFile: "/etc/vm-auth/token",
      ca: "/etc/vm-auth/ca.pem",
      units,
    });
    expect(resolveShimConfig(config).tls).toEqual({ ca: "/etc/vm-auth/ca.pem" });
    const unit = readFileSync(at("etc/systemd/system/vm-auth-shim.service"), "utf8");
    expect(unit).toContain("LoadCredential=token:/etc/vm-auth/token\n");
    expect(unit).toContain("LoadCredential=ca:/etc/vm-auth/ca.pem\n");
    expect(res.files.map((f) => relative(t.root, f))).toContain("etc/vm-auth/token");
    // The output lists paths, never the token.
    expect(JSON.stringify(res)).not.toContain(TOKEN);
  });

  it("an insecure bundle gives insecure: true; a loopback one needs nothing", async () => {
    const t = bare("bundle-insecure");
    const bundle = encodeBundle({ server: "10.1.2.3:3090", token: TOKEN, insecure: true });
    await install({ config: {}, bundle, units, root: t.root, shimSource: t.shim, run: t.run });
    const config = JSON.parse(readFileSync(join(t.root, "etc/vm-auth/shim.json"), "utf8"));
    expect(config).toMatchObject({ server: "10.1.2.3:3090", insecure: true });
    expect(existsSync(join(t.root, "etc/vm-auth/ca.pem"))).toBe(false);
    const u = bare("bundle-loopback");
    const lo = encodeBundle({ server: "127.0.0.1:3090", token: TOKEN });
    await install({ config: {}, bundle: lo, units, root: u.root, shimSource: u.shim, run: u.run });
    const c2 = JSON.parse(readFileSync(join(u.root, "etc/vm-auth/shim.json"), "utf8"));
    expect(c2).toEqual({ server: "127.0.0.1:3090", tokenFile: "/etc/vm-auth/token", units });
  });

  it("refuses --server, --token-file or --ca with it, a plaintext remote bundle, a bad bundle: nothing written", async () => {
    const t = bare("bundle-bad");
    const good = encodeBundle({ server: "192.168.122.1:3090", token: TOKEN, ca: CA });
    const attempt = (config: object, bundle = good) =>
      install({ config, bundle, units, root: t.root, shimSource: t.shim, run: t.run });
    await expect(attempt({ server: "h:1" })).rejects.toThrow(
      /^--server: cannot be combined with --bundle/,
    );
    await expect(attempt({ tokenFile: "/t" })).rejects.toThrow(/^--token-file: cannot be combined/);
    await expect(attempt({ ca: "/c.pem" })).rejects.toThrow(/^--ca: cannot be combined/);
    const plain = encodeBundle({ server: "192.168.122.1:3090", token: TOKEN });
    await expect(attempt({}, plain)).rejects.toThrow(
      /^server: 192.168.122.1:3090 is not a loopback/,
    );
    const cut = good.slice(0, 40);
    let msg = "";
    await attempt({}, cut).catch((e: Error) => {
      msg = e.message;
    });
    expect(msg).toMatch(/^bundle: /);
    expect(msg).not.toContain(TOKEN.slice(5, 20));
    await expect(attempt({}, "hello")).rejects.toThrow(/^bundle: does not start with/);
    expect(readdirSync(t.root)).toEqual([]);
    expect(existsSync(join(t.root, "etc"))).toBe(false);
  });
});

/** Every file (not directory) under `dir`, relative, sorted. */
function filesUnder(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import("node:fs").Dirent[])
    .filter((e) => !e.isDirectory())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

describe("uninstall", () => {
  const adminDropIn = "etc/systemd/system/app.service.d/override.conf";
  const prepare = async (name: string) => {
    const t = setup(name);
    rmSync(join(t.root, "etc/vm-auth"), { recursive: true });
    // The administrator's own files beside ours: none of them may go.
    mkdirSync(join(t.root, "etc/systemd/system/app.service.d"), { recursive: true });
    writeFileSync(join(t.root, adminDropIn), "[Service]\nNice=5\n");
    writeFileSync(
      join(t.root, "etc/systemd/system/app.service"),
      "[Service]\nExecStart=/bin/true\n",
    );
    mkdirSync(join(t.root, "etc/environment.d"), { recursive: true });
    writeFileSync(join(t.root, "etc/environment.d/other.conf"), "A=1\n");
    const before = filesUnder(t.root);
    const bundle = encodeBundle({ server: "192.168.122.1:3090", token: TOKEN, ca: CA });
    await install({
      config: {},
      bundle,
      units: [...units, { name: "web.service", keys: ["*"], action: "reload" }],
      root: t.root,
      shimSource: t.shim,
      enable: true,
      run: t.run,
    });
    // What a running shim writes.
    for (const f of ["var/lib/vm-auth/shim-state.json", "var/lib/vm-auth/last-known-good.env"]) {
      mkdirSync(join(t.root, f, ".."), { recursive: true });
      writeFileSync(join(t.root, f), "x");
    }
    for (const f of [
      "run/vm-auth/env",
      "run/vm-auth/status.json",
      "etc/environment.d/vm-auth.conf",
    ]) {
      mkdirSync(join(t.root, f, ".."), { recursive: true });
      writeFileSync(join(t.root, f), "x");
    }
    t.calls.length = 0;
    return { ...t, before };
  };
  const config = (root: string) =>
    JSON.parse(readFileSync(join(root, "etc/vm-auth/shim.json"), "utf8"));

  it("removes the unit, our drop-ins, the shim copy and the config; keeps token, state, env files and the admin's files", async () => {
    const t = await prepare("un");
    const res = await uninstall({
      config: config(t.root),
      configFile: "/etc/vm-auth/shim.json",
      root: t.root,
      run: t.run,
    });
    expect(t.calls).toEqual([["systemctl", `--root=${t.root}`, "disable", "vm-auth-shim.service"]]);
    expect(res.removed.map((f) => relative(t.root, f))).toEqual([
      "etc/systemd/system/vm-auth-shim.service",
      "etc/systemd/system/app.service.d/vm-auth.conf",
      "etc/systemd/system/web.service.d/vm-auth.conf",
      "etc/systemd/system/web.service.d",
      "usr/local/lib/vm-auth/shim.cjs",
      "usr/local/lib/vm-auth",
      "etc/vm-auth/shim.json",
    ]);
    expect(filesUnder(t.root)).toEqual(
      [
        ...t.before,
        "etc/vm-auth/token",
        "etc/vm-auth/ca.pem",
        "var/lib/vm-auth/shim-state.json",
        "var/lib/vm-auth/last-known-good.env",
        "run/vm-auth/env",
        "run/vm-auth/status.json",
        "etc/environment.d/vm-auth.conf",
      ].sort(),
    );
    expect(readFileSync(join(t.root, adminDropIn), "utf8")).toBe("[Service]\nNice=5\n");
  });

  it("--purge also removes the token, CA, state and env files; a second run finds nothing", async () => {
    const t = await prepare("purge");
    const cfg = config(t.root);
    await uninstall({
      config: cfg,
      configFile: "/etc/vm-auth/shim.json",
      purge: true,
      root: t.root,
      run: t.run,
    });
    expect(filesUnder(t.root)).toEqual(t.before);
    for (const d of ["etc/vm-auth", "var/lib/vm-auth", "run/vm-auth"]) {
      expect(existsSync(join(t.root, d)), d).toBe(false);
    }
    t.calls.length = 0;
    const again = await uninstall({
      config: {},
      configFile: "/etc/vm-auth/shim.json",
      purge: true,
      root: t.root,
      run: t.run,
    });
    expect(again).toEqual({ removed: [], kept: [], calls: [] });
    expect(t.calls).toEqual([]);
    expect(filesUnder(t.root)).toEqual(t.before);
  });

  it("leaves a vm-auth-shim.service it did not write alone (not stopped, not removed)", async () => {
    const t = setup("foreign");
    const unit = join(t.root, "etc/systemd/system/vm-auth-shim.service");
    mkdirSync(join(unit, ".."), { recursive: true });
    writeFileSync(unit, "[Service]\nExecStart=/bin/true\n");
    const res = await uninstall({
      config: {},
      configFile: "/etc/vm-auth/shim.json",
      root: t.root,
      run: t.run,
    });
    expect(res.kept).toEqual([`${unit} (not written by vm-auth-shim install)`]);
    expect(t.calls).toEqual([]);
    expect(existsSync(unit)).toBe(true);
  });
});
