import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { resolveServerConfig } from "./config.js";

describe("resolveServerConfig", () => {
  test("defaults: data dir from VM_AUTH_HOME, socket in it, loopback TCP 3090", () => {
    const c = resolveServerConfig({}, { VM_AUTH_HOME: "/srv/vm-auth" });
    expect(c).toMatchObject({
      dataDir: "/srv/vm-auth",
      socket: "/srv/vm-auth/secretsd.sock",
      listen: { host: "127.0.0.1", port: 3090 },
      tls: null,
    });
    expect(Object.isFrozen(c)).toBe(true);
  });

  test("flags beat SECRETSD_* env", () => {
    const c = resolveServerConfig(
      { listen: "127.0.0.2:1" },
      { SECRETSD_LISTEN: "127.0.0.3:2", SECRETSD_DATA_DIR: "/d" },
    );
    expect(c.listen).toEqual({ host: "127.0.0.2", port: 1 });
    expect(c.dataDir).toBe("/d");
  });

  test("off disables listeners", () => {
    const c = resolveServerConfig({ listen: "off", socket: "off", dataDir: "/d" }, {});
    expect(c.listen).toBeNull();
    expect(c.socket).toBeNull();
  });

  test("plaintext on a non-loopback address needs --insecure; TLS needs both files", () => {
    expect(() => resolveServerConfig({ listen: "0.0.0.0:3090", dataDir: "/d" }, {})).toThrow(
      /not a loopback address/,
    );
    expect(
      resolveServerConfig({ listen: "0.0.0.0:3090", insecure: true, dataDir: "/d" }, {}).listen,
    ).toEqual({ host: "0.0.0.0", port: 3090 });
    expect(() => resolveServerConfig({ tlsCert: "a.pem", dataDir: "/d" }, {})).toThrow(/together/);
    expect(() => resolveServerConfig({ listen: "nope", dataDir: "/d" }, {})).toThrow(/host:port/);
    expect(() => resolveServerConfig({ logLevel: "loud" as never, dataDir: "/d" }, {})).toThrow(
      /log-level/,
    );
  });

  test("repair: --repair, SECRETSD_REPAIR or the file's repair key; off by default", async () => {
    expect(resolveServerConfig({ dataDir: "/d" }, {}).repair).toBe(false);
    expect(resolveServerConfig({ dataDir: "/d", repair: true }, {}).repair).toBe(true);
    expect(resolveServerConfig({ dataDir: "/d" }, { SECRETSD_REPAIR: "1" }).repair).toBe(true);
    expect(resolveServerConfig({ dataDir: "/d" }, { SECRETSD_REPAIR: "true" }).repair).toBe(true);
    expect(() => resolveServerConfig({ dataDir: "/d" }, { SECRETSD_REPAIR: "yes please" })).toThrow(
      /repair: must be true or false/,
    );
    const dir = await mkdtemp(join(tmpdir(), "vm-auth-config-"));
    try {
      const file = join(dir, "secretsd.json");
      await writeFile(file, JSON.stringify({ repair: true }));
      expect(resolveServerConfig({ dataDir: "/d", config: file }, {}).repair).toBe(true);
      // A flag given as false wins over the file.
      expect(resolveServerConfig({ dataDir: "/d", config: file, repair: false }, {}).repair).toBe(
        false,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
