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
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { install, uninstall } from "./install.js";
import { logrotateConfig, MARK, serviceUnit } from "./service-unit.js";

const dir = mkdtempSync(join(tmpdir(), "secretsd-install-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const put = (p: string, text: string) => {
  mkdirSync(dirname(p), { recursive: true });
  writeFileSync(p, text);
};

/** A root, and a built package: a bundle importing two packages, one with a dependency. */
function setup(name: string, imports = ["fakepkg", "@scope/two/sub"]) {
  const root = join(dir, name, "root");
  mkdirSync(root, { recursive: true });
  const pkg = join(dir, name, "pkg");
  const bundle = join(pkg, "dist/bin/secretsd.js");
  // What esbuild writes with packages external: one import statement a line, builtins too.
  put(
    bundle,
    `#!/usr/bin/env node\nimport { readFileSync } from "node:fs";\nimport { join } from "path";\n${imports.map((s, i) => `import * as m${i} from "${s}";`).join("\n")}\nconst s = 'import x from "not-a-package";';\n`,
  );
  put(
    join(pkg, "node_modules/fakepkg/package.json"),
    JSON.stringify({ name: "fakepkg", dependencies: { dep: "1" } }),
  );
  put(join(pkg, "node_modules/fakepkg/index.js"), "export const a = 1;\n");
  put(
    join(pkg, "node_modules/dep/package.json"),
    JSON.stringify({ name: "dep", optionalDependencies: { absent: "1" } }),
  );
  put(join(pkg, "node_modules/@scope/two/package.json"), JSON.stringify({ name: "@scope/two" }));
  put(join(pkg, "node_modules/devonly/package.json"), JSON.stringify({ name: "devonly" }));
  const calls: string[][] = [];
  const run = async (bin: string, args: string[]) => {
    calls.push([bin, ...args]);
    return { code: 0, stdout: "", stderr: "" };
  };
  return { root, bundle, calls, run, at: (p: string) => join(root, p) };
}

/** Every file under `root`, relative. */
function tree(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p.slice(root.length));
    }
  };
  if (existsSync(root)) walk(root);
  return out.sort();
}

describe("secretsd install --root", () => {
  it("writes the bundle, the packages it imports, the unit and a manifest; creates no user; enables with --root", async () => {
    const t = setup("ok");
    mkdirSync(t.at("etc/tls"), { recursive: true });
    writeFileSync(t.at("etc/tls/server.pem"), "cert");
    writeFileSync(t.at("etc/tls/server.key"), "key");
    const out = await install({
      bundle: t.bundle,
      node: "/usr/bin/node",
      listen: "0.0.0.0:3090",
      tlsDir: "/etc/tls",
      root: t.root,
      enable: true,
      run: t.run,
    });
    // No useradd, no daemon-reload under --root: only the offline enable.
    expect(t.calls).toEqual([["systemctl", `--root=${t.root}`, "enable", "secretsd.service"]]);
    expect(out[0]).toBe("user vm-auth: not created under --root (create it in the image)");
    expect(tree(t.root)).toEqual([
      "/etc/systemd/system/secretsd.service",
      "/etc/tls/server.key",
      "/etc/tls/server.pem",
      "/usr/local/lib/vm-auth/node_modules/@scope/two/package.json",
      "/usr/local/lib/vm-auth/node_modules/dep/package.json",
      "/usr/local/lib/vm-auth/node_modules/fakepkg/index.js",
      "/usr/local/lib/vm-auth/node_modules/fakepkg/package.json",
      "/usr/local/lib/vm-auth/secretsd.install.json",
      "/usr/local/lib/vm-auth/secretsd.js",
    ]);
    expect(readFileSync(t.at("usr/local/lib/vm-auth/secretsd.js"), "utf8")).toBe(
      readFileSync(t.bundle, "utf8"),
    );
    expect(statSync(t.at("usr/local/lib/vm-auth/secretsd.js")).mode & 0o777).toBe(0o755);
    const unit = readFileSync(t.at("etc/systemd/system/secretsd.service"), "utf8");
    expect(unit).toBe(
      serviceUnit({
        user: "vm-auth",
        execStart: [
          "/usr/bin/node",
          "/usr/local/lib/vm-auth/secretsd.js",
          ...["--listen", "0.0.0.0:3090", "--audit-max-bytes", "67108864", "--audit-keep", "5"],
        ],
        tlsDir: "/etc/tls",
      }),
    );
    for (const line of [
      "User=vm-auth",
      "Group=vm-auth",
      "StateDirectory=secretsd",
      "StateDirectoryMode=0700",
      "RuntimeDirectory=secretsd",
      "UMask=0077",
      "ExecReload=/bin/kill -HUP $MAINPID",
      "LoadCredential=tls-cert:/etc/tls/server.pem",
      "LoadCredential=tls-key:/etc/tls/server.key",
      "ProtectSystem=strict",
      "ProtectHome=yes",
      "PrivateTmp=yes",
      "PrivateDevices=yes",
      "NoNewPrivileges=yes",
      "CapabilityBoundingSet=",
      "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
      "SystemCallFilter=@system-service",
      "SystemCallFilter=~@privileged @resources",
      "SystemCallArchitectures=native",
      "ProtectProc=invisible",
      "ProcSubset=pid",
    ]) {
      expect(unit.split("\n")).toContain(line);
    }
    expect(unit).not.toMatch(/^MemoryDenyWriteExecute=/m);
  });

  it("--logrotate writes /etc/logrotate.d/secretsd and leaves size rotation out of ExecStart", async () => {
    const t = setup("logrotate");
    await install({
      bundle: t.bundle,
      node: "/usr/bin/node",
      logrotate: true,
      root: t.root,
      run: t.run,
    });
    expect(readFileSync(t.at("etc/logrotate.d/secretsd"), "utf8")).toBe(logrotateConfig());
    const unit = readFileSync(t.at("etc/systemd/system/secretsd.service"), "utf8");
    expect(unit).toContain("ExecStart=/usr/bin/node /usr/local/lib/vm-auth/secretsd.js\n");
    expect(unit).not.toContain("LoadCredential");
    expect(logrotateConfig()).toContain("systemctl reload secretsd.service");
  });

  it("refuses a bad option naming its flag before writing anything", async () => {
    const t = setup("bad");
    const base = { bundle: t.bundle, node: "/usr/bin/node", root: t.root, run: t.run };
    const cases: [Partial<Parameters<typeof install>[0]>, string | RegExp][] = [
      [{ listen: "0.0.0.0:3090" }, /^listen: 0\.0\.0\.0 is not a loopback address/],
      [{ listen: "nope" }, "listen: 'nope' must be host:port"],
      [{ tlsDir: "/etc/none" }, `tls-dir: ${t.root}/etc/none/server.pem does not exist`],
      [{ tlsDir: "/etc/has space" }, "tls-dir: '/etc/has space' must be an absolute path"],
      [{ user: "Root!" }, "user: 'Root!' is not a valid system user name"],
      [{ now: true }, "now: --now cannot be used with --root"],
      [{ node: "/root/.nvm/node" }, /^node: \/root\/\.nvm\/node is under a home directory/],
      [{ logrotate: true, auditMaxBytes: 10 }, "audit-max-bytes: give it or --logrotate, not both"],
      [{ auditKeep: 0 }, "audit-keep: must be a positive integer"],
      [{ bundle: join(dir, "missing.js") }, /^bundle: .* does not exist/],
    ];
    for (const [opts, msg] of cases) {
      await expect(install({ ...base, ...opts })).rejects.toThrow(msg);
      expect(tree(t.root)).toEqual([]);
    }
    expect(t.calls).toEqual([]);
    // A package the bundle imports but that is not installed: named, nothing written.
    const m = setup("missing-pkg", ["fakepkg", "nowhere"]);
    await expect(install({ ...base, bundle: m.bundle, root: m.root })).rejects.toThrow(
      `bundle: cannot find package 'nowhere' that ${m.bundle} imports`,
    );
    expect(tree(m.root)).toEqual([]);
  });

  it("a reinstall removes the packages the new bundle no longer imports", async () => {
    const t = setup("reinstall");
    await install({ bundle: t.bundle, node: "/usr/bin/node", root: t.root, run: t.run });
    put(t.bundle, 'import { a } from "fakepkg";\n');
    const out = await install({
      bundle: t.bundle,
      node: "/usr/bin/node",
      root: t.root,
      run: t.run,
    });
    expect(out).toContain(`removed ${t.at("usr/local/lib/vm-auth/node_modules/@scope/two")}`);
    expect(readdirSync(t.at("usr/local/lib/vm-auth/node_modules")).sort()).toEqual([
      "@scope",
      "dep",
      "fakepkg",
    ]);
  });
});

describe("secretsd uninstall --root", () => {
  it("removes only what install wrote: the shim beside it, an admin's files and the data dir stay", async () => {
    const t = setup("un");
    await install({
      bundle: t.bundle,
      node: "/usr/bin/node",
      logrotate: true,
      root: t.root,
      run: t.run,
    });
    put(t.at("usr/local/lib/vm-auth/shim.cjs"), "// the shim's\n");
    put(t.at("usr/local/lib/vm-auth/node_modules/admin-extra/package.json"), "{}");
    put(t.at("etc/systemd/system/other.service"), "[Service]\n");
    put(t.at("var/lib/secretsd/master.key"), "k");
    t.calls.length = 0;
    const out = await uninstall({ root: t.root, run: t.run });
    expect(t.calls).toEqual([["systemctl", `--root=${t.root}`, "disable", "secretsd.service"]]);
    expect(out).toContain(
      `kept ${t.at("var/lib/secretsd")} (store, master key, audit log); --purge removes it`,
    );
    expect(tree(t.root)).toEqual([
      "/etc/systemd/system/other.service",
      "/usr/local/lib/vm-auth/node_modules/admin-extra/package.json",
      "/usr/local/lib/vm-auth/shim.cjs",
      "/var/lib/secretsd/master.key",
    ]);
    // Again: nothing of install's is left to remove.
    t.calls.length = 0;
    const again = await uninstall({ root: t.root, run: t.run });
    expect(again.filter((l) => l.startsWith("removed"))).toEqual([]);
    expect(t.calls).toEqual([]);
    // --purge: the data dir too (no user is touched under --root).
    const purge = await uninstall({ root: t.root, purge: true, run: t.run });
    expect(purge).toEqual([`removed ${t.at("var/lib/secretsd")} (store, master key, audit log)`]);
    expect(t.calls).toEqual([]);
  });

  it("a secretsd.service that install did not write is kept, and nothing is stopped", async () => {
    const t = setup("foreign");
    put(t.at("etc/systemd/system/secretsd.service"), "[Service]\nExecStart=/opt/mine\n");
    const out = await uninstall({ root: t.root, run: t.run });
    expect(out).toEqual([
      `kept ${t.at("etc/systemd/system/secretsd.service")}: not written by secretsd install`,
    ]);
    expect(t.calls).toEqual([]);
    expect(readFileSync(t.at("etc/systemd/system/secretsd.service"), "utf8")).not.toContain(MARK);
  });

  it("a manifest naming paths outside what install writes removes none of them", async () => {
    const t = setup("tampered");
    put(t.at("etc/passwd"), "root:x:0:0::/root:/bin/sh\n");
    put(
      t.at("usr/local/lib/vm-auth/secretsd.install.json"),
      JSON.stringify({ files: ["/etc/passwd", "/usr/local/lib/vm-auth/../../../../etc/passwd"] }),
    );
    await uninstall({ root: t.root, run: t.run });
    expect(existsSync(t.at("etc/passwd"))).toBe(true);
  });
});
