import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, test } from "vitest";
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
    // A name that merely starts with "127." resolves anywhere: not loopback.
    expect(() =>
      resolveServerConfig({ listen: "127.example.net:3090", dataDir: "/d" }, {}),
    ).toThrow(/127\.example\.net is not a loopback address/);
    expect(resolveServerConfig({ listen: "127.0.0.2:3090", dataDir: "/d" }, {}).listen).toEqual({
      host: "127.0.0.2",
      port: 3090,
    });
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

  describe("under systemd", () => {
    let dir = "";
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), "vm-auth-config-"));
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });
    const touch = async (...parts: string[]) => {
      await mkdir(join(dir, ...parts.slice(0, -1)), { recursive: true });
      await writeFile(join(dir, ...parts), "pem");
    };

    test("STATE_DIRECTORY is the data dir and RUNTIME_DIRECTORY holds the socket, unless given", () => {
      const env = { STATE_DIRECTORY: "/var/lib/vm-auth", RUNTIME_DIRECTORY: "/run/vm-auth" };
      expect(resolveServerConfig({}, env)).toMatchObject({
        dataDir: "/var/lib/vm-auth",
        socket: "/run/vm-auth/secretsd.sock",
        tls: null,
      });
      // systemd lists several directories colon-separated; the first is the service's own.
      expect(resolveServerConfig({}, { STATE_DIRECTORY: "/a:/b" }).dataDir).toBe("/a");
      // Given settings win: flag, SECRETSD_* and VM_AUTH_HOME for the data dir; flag/env for the socket.
      expect(resolveServerConfig({ dataDir: "/d", socket: "/s.sock" }, env)).toMatchObject({
        dataDir: "/d",
        socket: "/s.sock",
      });
      expect(resolveServerConfig({}, { ...env, SECRETSD_DATA_DIR: "/e" }).dataDir).toBe("/e");
      expect(resolveServerConfig({}, { ...env, VM_AUTH_HOME: "/h" }).dataDir).toBe("/h");
      expect(resolveServerConfig({}, { ...env, SECRETSD_SOCKET: "off" }).socket).toBeNull();
      // Without RUNTIME_DIRECTORY the socket stays in the data dir.
      expect(resolveServerConfig({}, { STATE_DIRECTORY: "/var/lib/vm-auth" }).socket).toBe(
        "/var/lib/vm-auth/secretsd.sock",
      );
    });

    test("TLS: flags first, then CREDENTIALS_DIRECTORY's tls-cert + tls-key, then <data dir>/tls", async () => {
      const creds = join(dir, "creds");
      const data = join(dir, "data");
      await touch("creds", "tls-cert");
      await touch("creds", "tls-key");
      await touch("data", "tls", "server.pem");
      await touch("data", "tls", "server.key");
      const env = { CREDENTIALS_DIRECTORY: creds, STATE_DIRECTORY: data };
      expect(resolveServerConfig({}, env).tls).toEqual({
        cert: join(creds, "tls-cert"),
        key: join(creds, "tls-key"),
        source: "credentials",
      });
      expect(resolveServerConfig({ tlsCert: "/c.pem", tlsKey: "/k.pem" }, env).tls).toEqual({
        cert: "/c.pem",
        key: "/k.pem",
        source: "config",
      });
      expect(resolveServerConfig({}, { STATE_DIRECTORY: data }).tls).toEqual({
        cert: join(data, "tls", "server.pem"),
        key: join(data, "tls", "server.key"),
        source: "data-dir",
      });
      // A TLS pair found this way lets TCP leave loopback without --insecure.
      expect(resolveServerConfig({ dataDir: data, listen: "0.0.0.0:3090" }, {}).listen).toEqual({
        host: "0.0.0.0",
        port: 3090,
      });
    });

    test("half a TLS pair is an error naming both files, never a plaintext start", async () => {
      await touch("creds", "tls-cert");
      await touch("data", "tls", "server.key");
      expect(() =>
        resolveServerConfig({ dataDir: "/d" }, { CREDENTIALS_DIRECTORY: join(dir, "creds") }),
      ).toThrow(
        `tls: found ${join(dir, "creds", "tls-cert")} but not ${join(dir, "creds", "tls-key")}`,
      );
      expect(() => resolveServerConfig({ dataDir: join(dir, "data") }, {})).toThrow(
        `tls: found ${join(dir, "data", "tls", "server.key")} but not ${join(dir, "data", "tls", "server.pem")}`,
      );
      // Neither file: plaintext, as before.
      expect(resolveServerConfig({ dataDir: join(dir, "none") }, {}).tls).toBeNull();
    });
  });

  test("audit rotation: off by default; --audit-max-bytes / SECRETSD_AUDIT_MAX_BYTES, keep 5", () => {
    expect(resolveServerConfig({ dataDir: "/d" }, {}).audit).toEqual({ maxBytes: null, keep: 5 });
    expect(
      resolveServerConfig(
        { dataDir: "/d" },
        { SECRETSD_AUDIT_MAX_BYTES: "1048576", SECRETSD_AUDIT_KEEP: "2" },
      ).audit,
    ).toEqual({ maxBytes: 1048576, keep: 2 });
    expect(() => resolveServerConfig({ dataDir: "/d", auditMaxBytes: 0 }, {})).toThrow(
      /auditMaxBytes: must be a positive integer/,
    );
    expect(() => resolveServerConfig({ dataDir: "/d" }, { SECRETSD_AUDIT_KEEP: "x" })).toThrow(
      /auditKeep: must be a positive integer/,
    );
  });
});
