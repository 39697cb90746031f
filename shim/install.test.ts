import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { dropIn, install, shimUnit } from "./install.js";

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

const base = { server: "10.0.0.1:3090", tokenFile: "/etc/vm-auth/token" };
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

describe("unit texts", () => {
  it("the shim unit: simple, restore before start, restart forever", () => {
    const u = shimUnit("/usr/local/lib/vm-auth/shim.cjs", "/etc/vm-auth/shim.json");
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
