import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { resolveConnection } from "./connect.js";

const dir = mkdtempSync(join(tmpdir(), "vm-auth-connect-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const service = join(dir, "service.sock");
const missing = join(dir, "missing.sock");
writeFileSync(service, "");
const HOME = join(dir, "home");
const own = join(HOME, ".local", "share", "vm-auth", "secretsd.sock");

describe("resolveConnection: which unix socket", () => {
  test("no flag, no VM_AUTH_*: the per-user socket, else the service's (secretsd install) when it exists", () => {
    expect(resolveConnection({}, { HOME }, service).target).toBe(service);
    // Neither exists: the per-user one, which the error message then names.
    expect(resolveConnection({}, { HOME }, missing).target).toBe(own);
    // A per-user daemon's socket wins over the service's.
    mkdirSync(join(HOME, ".local", "share", "vm-auth"), { recursive: true });
    writeFileSync(own, "");
    expect(resolveConnection({}, { HOME }, service).target).toBe(own);
    rmSync(own);
  });

  test("--socket, VM_AUTH_SOCKET, VM_AUTH_HOME and a server win over the service's socket", () => {
    expect(resolveConnection({ socket: "/x.sock" }, { HOME }, service).target).toBe("/x.sock");
    expect(resolveConnection({}, { HOME, VM_AUTH_SOCKET: "/y.sock" }, service).target).toBe(
      "/y.sock",
    );
    // VM_AUTH_HOME names a data dir: its socket, even when it is not there yet.
    expect(resolveConnection({}, { HOME, VM_AUTH_HOME: "/h" }, service).target).toBe(
      "/h/secretsd.sock",
    );
    expect(resolveConnection({}, { HOME, VM_AUTH_SERVER: "127.0.0.1:1" }, service).target).toBe(
      "127.0.0.1:1",
    );
  });
});
