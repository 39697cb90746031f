import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readShimConfigFile, resolveShimConfig, resolveShimPaths } from "./resolve-config.js";

const dir = mkdtempSync(join(tmpdir(), "shim-config-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const base = { server: "127.0.0.1:3090", tokenFile: "/etc/vm-auth/token" };

describe("resolveShimConfig", () => {
  it("fills every default", () => {
    const c = resolveShimConfig(base);
    expect(c).toEqual({
      server: "127.0.0.1:3090",
      tokenFile: "/etc/vm-auth/token",
      tls: false,
      insecure: false,
      environmentDFile: "/etc/environment.d/vm-auth.conf",
      unitEnvFile: "/run/vm-auth/env",
      lastKnownGoodFile: "/var/lib/vm-auth/last-known-good.env",
      stateFile: "/var/lib/vm-auth/shim-state.json",
      statusFile: "/run/vm-auth/status.json",
      units: [],
      debounceMs: 500,
      backoff: { initialMs: 500, maxMs: 30_000 },
      keepalive: { timeMs: 30_000, timeoutMs: 10_000 },
      heartbeatMs: 15_000,
      systemctl: "systemctl",
      logLevel: "info",
    });
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.backoff)).toBe(true);
  });

  it("flags win over the file, field by field; undefined flags do not erase", () => {
    const c = resolveShimConfig(
      { ...base, debounceMs: 100, units: [{ name: "a.service" }] },
      { server: "[::1]:9", debounceMs: undefined, ca: "/etc/ca.pem" },
    );
    expect(c.server).toBe("[::1]:9");
    expect(c.debounceMs).toBe(100);
    expect(c.tls).toEqual({ ca: "/etc/ca.pem" });
    expect(c.units).toEqual([{ name: "a.service", keys: ["*"], action: "restart" }]);
  });

  it("normalises units: .service suffix, * absorbs other keys, duplicates refused", () => {
    const c = resolveShimConfig({
      ...base,
      units: [
        { name: "app", keys: ["B", "A", "B"], action: "reload" },
        { name: "web.service", keys: ["*", "X"] },
      ],
    });
    expect(c.units).toEqual([
      { name: "app.service", keys: ["B", "A"], action: "reload" },
      { name: "web.service", keys: ["*"], action: "restart" },
    ]);
    expect(() =>
      resolveShimConfig({ ...base, units: [{ name: "a.service" }, { name: "a" }] }),
    ).toThrow(/a.service is listed twice/);
  });

  it.each([
    [{ server: undefined }, /server: not set/],
    [{ server: "no-port" }, /server: 'no-port' is not host:port/],
    [{ server: "h:70000" }, /not host:port/],
    [{ tokenFile: undefined }, /tokenFile: not set/],
    [{ tokenFile: "relative/token" }, /tokenFile: 'relative\/token' must be an absolute path/],
    [{ debounceMs: -1 }, /debounceMs: must be an integer ≥ 0/],
    [{ debounceMs: 1.5 }, /debounceMs/],
    [{ backoff: { initialMs: 1000, maxMs: 10 } }, /backoff.maxMs: must be an integer ≥ 1000/],
    [{ backoff: { initial: 1 } }, /backoff: unknown key 'initial'/],
    [{ keepalive: { timeMs: "1" } }, /keepalive.timeMs/],
    [{ units: {} }, /units: must be an array/],
    [{ units: [{ name: "a b" }] }, /units\[0\]: name must be a systemd unit name/],
    [{ units: [{ name: "a", keys: ["lower"] }] }, /units\[0\]: key "lower" is not an env var/],
    [{ units: [{ name: "a", keys: [] }] }, /non-empty/],
    [{ units: [{ name: "a", action: "stop" }] }, /action must be "restart" or "reload"/],
    [{ units: [{ name: "a", after: "x" }] }, /units\[0\]: unknown key 'after'/],
    [{ logLevel: "trace" }, /logLevel: 'trace'/],
    [{ tls: "yes" }, /tls: must be true or false/],
    [{ insecure: 1 }, /insecure: must be true or false/],
    [{ insecure: true, tls: true }, /insecure: cannot be combined with ca or tls/],
    [{ insecure: true, ca: "/ca.pem" }, /insecure: cannot be combined with ca or tls/],
  ])("rejects %j", (bad, msg) => {
    expect(() => resolveShimConfig({ ...base, ...bad } as never)).toThrow(msg);
  });

  it("refuses plaintext to a server that is not loopback unless insecure, naming server", () => {
    for (const server of [
      "10.0.0.1:3090",
      "host.example:3090",
      "[fd00::1]:1",
      "127.example.net:1",
    ]) {
      expect(() => resolveShimConfig({ ...base, server })).toThrow(
        `server: ${server} is not a loopback address; give --ca FILE or --tls for TLS, or --insecure to send the token in plaintext`,
      );
      expect(resolveShimConfig({ ...base, server, insecure: true }).insecure).toBe(true);
      expect(resolveShimConfig({ ...base, server, tls: true }).tls).toBe(true);
      expect(resolveShimConfig({ ...base, server, ca: "/ca.pem" }).tls).toEqual({ ca: "/ca.pem" });
    }
    for (const server of ["localhost:1", "127.0.0.1:1", "127.1.2.3:1", "[::1]:1"]) {
      expect(resolveShimConfig({ ...base, server }).tls, server).toBe(false);
    }
    // A flag can give what the file lacks.
    expect(resolveShimConfig({ ...base, server: "10.0.0.1:1" }, { insecure: true }).insecure).toBe(
      true,
    );
  });

  it("resolveShimPaths needs no server or token", () => {
    expect(resolveShimPaths({ stateFile: "/s.json" }, { logLevel: "debug" })).toMatchObject({
      stateFile: "/s.json",
      unitEnvFile: "/run/vm-auth/env",
      logLevel: "debug",
    });
  });
});

describe("readShimConfigFile", () => {
  it("reads a JSON object; unknown keys are an error naming the file", () => {
    const f = join(dir, "ok.json");
    writeFileSync(f, JSON.stringify({ ...base, debounceMs: 5 }));
    expect(readShimConfigFile(f)).toEqual({ ...base, debounceMs: 5 });
    writeFileSync(f, JSON.stringify({ ...base, servr: "x" }));
    expect(() => readShimConfigFile(f)).toThrow(`config ${f}: unknown key 'servr'`);
  });

  it("a missing file is {} only when optional; bad JSON is an error", () => {
    const missing = join(dir, "missing.json");
    expect(readShimConfigFile(missing, true)).toEqual({});
    expect(() => readShimConfigFile(missing)).toThrow(/cannot read/);
    const f = join(dir, "bad.json");
    writeFileSync(f, "{");
    expect(() => readShimConfigFile(f)).toThrow(/is not JSON/);
    writeFileSync(f, "[]");
    expect(() => readShimConfigFile(f)).toThrow(/must hold a JSON object/);
  });
});
