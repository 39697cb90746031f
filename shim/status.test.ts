import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { saveState } from "./state.js";
import { formatStatus, statusReport } from "./status.js";

const dir = mkdtempSync(join(tmpdir(), "shim-status-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const files = { stateFile: join(dir, "state.json"), statusFile: join(dir, "status.json") };

describe("statusReport", () => {
  it("nothing yet: not running, revision 0", async () => {
    const r = await statusReport(files);
    expect(r).toMatchObject({ running: false, connection: "not running", appliedRevision: 0 });
    expect(formatStatus(r)).toContain("shim:             not running\n");
  });

  it("combines the live status (our own pid: running) with the persisted state", async () => {
    await saveState(files.stateFile, {
      revision: 42,
      digest: "abc",
      vars: { B: { secret: "b", version: 1 }, A: { secret: "a", version: 3 } },
      units: ["app.service"],
      appliedAt: "2026-01-01T00:00:00.000Z",
      changedAt: "2026-01-01T00:00:00.000Z",
    });
    writeFileSync(
      files.statusFile,
      JSON.stringify({
        pid: process.pid,
        version: "0.1.0",
        server: "h:1",
        transport: "TLS, CA /etc/vm-auth/ca.pem",
        connection: "connected",
        since: "2026-01-01T00:00:01.000Z",
        appliedRevision: 42,
        digest: "abc",
        serverRevision: 50,
        omitted: ["NL"],
        lastError: "unavailable: down",
        lastErrorAt: "2026-01-01T00:00:00.500Z",
        updatedAt: "2026-01-01T00:00:02.000Z",
      }),
    );
    const r = await statusReport(files);
    expect(r).toMatchObject({
      running: true,
      pid: process.pid,
      connection: "connected",
      appliedRevision: 42,
      digest: "abc",
      vars: ["A", "B"],
      omitted: ["NL"],
    });
    const text = formatStatus(r);
    expect(text).toContain("applied revision: 42 (server at 50)\n");
    expect(text).toContain("server:           h:1 (TLS, CA /etc/vm-auth/ca.pem)\n");
    expect(text).toContain("last error:       unavailable: down (at 2026-01-01T00:00:00.500Z)\n");
    expect(text).toContain("env vars:         A B\n");
  });

  it("a dead pid or a stopped shim is not running", async () => {
    writeFileSync(
      files.statusFile,
      JSON.stringify({ pid: 2 ** 22 + 1, connection: "connected", omitted: [] }),
    );
    expect((await statusReport(files)).running).toBe(false);
    writeFileSync(files.statusFile, JSON.stringify({ pid: process.pid, connection: "stopped" }));
    expect((await statusReport(files)).connection).toBe("not running");
  });
});
