/**
 * Audit log rotation in the built secretsd, as a real process: size rotation
 * (--audit-max-bytes) while hundreds of reads are in flight, and logrotate's way (an outside
 * `mv`, then SIGHUP) while reads keep coming. Either way every audited call is in exactly one
 * line of exactly one file, no line is torn, and ListAuditEvents (`secretsctl audit`) reads
 * across the files.
 */
import { mkdtempSync, readdirSync, readFileSync, renameSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { createClient, type VmAuthClient } from "../client/index.js";
import { type DaemonProcess, spawnDaemon } from "./helpers/process.js";
import { secretValue, testRoot } from "./helpers/values.js";

interface Line {
  requestId: string;
  action: string;
  secret?: string;
}

describe("audit log rotation", () => {
  let daemon: DaemonProcess | undefined;
  let client: VmAuthClient | undefined;
  afterEach(async () => {
    client?.close();
    if (daemon) {
      daemon.child.kill("SIGTERM");
      await daemon.exited;
    }
    daemon = undefined;
  });

  const start = async (args: string[]) => {
    const dataDir = mkdtempSync(join(testRoot() ?? tmpdir(), "vm-auth-audit-rot-"));
    daemon = await spawnDaemon(dataDir, ["--listen", "off", ...args]);
    client = createClient({ socket: daemon.socket ?? "", deadlineMs: 30_000 });
    await client.secrets.createSecret({ name: "rot", value: secretValue("rot") });
    return { dataDir, client };
  };
  /** `count` reads of the secret, `parallel` at a time; resolves with how many were made. */
  const reads = async (
    c: VmAuthClient,
    count: number,
    parallel: number,
    onBatch?: (i: number) => void,
  ) => {
    for (let i = 0; i < count; i += parallel) {
      onBatch?.(i);
      await Promise.all(
        Array.from({ length: Math.min(parallel, count - i) }, () =>
          c.secrets.getSecretValue({ name: "rot" }),
        ),
      );
    }
    return count;
  };

  it("by size under load: every read is one line in one file; the query spans the files", async () => {
    const { dataDir, client: c } = await start([
      "--audit-max-bytes",
      "8192",
      "--audit-keep",
      "1000",
    ]);
    const n = await reads(c, 1000, 50);
    const files = auditFiles(dataDir);
    // About 150 bytes a line: 1,000 reads fill well over ten 8 KiB files.
    expect(files.length).toBeGreaterThan(10);
    expect(files[0]).toBe("audit.log");
    const { lines, sizes } = readAll(dataDir, files);
    const readIds = lines.filter((l) => l.action === "secret.read").map((l) => l.requestId);
    expect(readIds).toHaveLength(n);
    expect(new Set(readIds).size).toBe(n);
    // Rotated at flush time: a file ends past the limit by at most one batch (50 lines here).
    for (const [f, size] of sizes) {
      if (f === "audit.log") continue;
      expect(size).toBeGreaterThanOrEqual(8192);
      expect(size).toBeLessThan(8192 + 50 * 400);
    }
    // The query reads newest to oldest across every file, and gives them oldest first.
    const res = await c.system.listAuditEvents({ limit: 10_000, action: "secret.read" });
    expect(res.events.map((e) => e.requestId)).toEqual(readIds);
  }, 60_000);

  it("an outside mv, then SIGHUP, while reads are in flight: the moved file and the new one hold every line once", async () => {
    const { dataDir, client: c } = await start([]);
    const child = daemon?.child;
    let moved = false;
    const n = await reads(c, 1500, 100, (i) => {
      if (i === 500) {
        renameSync(join(dataDir, "audit.log"), join(dataDir, "audit.log.1"));
        moved = true;
      }
      // Some batches after the mv still go to the moved file, then SIGHUP reopens.
      if (i === 800) child?.kill("SIGHUP");
    });
    expect(moved).toBe(true);
    await waitFor(
      () => daemon?.child.exitCode === null && auditFiles(dataDir).includes("audit.log"),
    );
    const files = auditFiles(dataDir);
    expect(files).toEqual(["audit.log", "audit.log.1"]);
    const { lines } = readAll(dataDir, files);
    const readIds = lines.filter((l) => l.action === "secret.read").map((l) => l.requestId);
    expect(readIds).toHaveLength(n);
    expect(new Set(readIds).size).toBe(n);
    const perFile = files.map(
      (f) => readAll(dataDir, [f]).lines.filter((l) => l.action === "secret.read").length,
    );
    // The moved file kept the reads from before the SIGHUP (≥ 800), the new one the rest.
    expect(perFile[1]).toBeGreaterThanOrEqual(800);
    expect(perFile[0]).toBeGreaterThan(0);
    expect(statSync(join(dataDir, "audit.log")).mode & 0o777).toBe(0o600);
    const res = await c.system.listAuditEvents({ limit: 10_000, action: "secret.read" });
    expect(res.events.map((e) => e.requestId)).toEqual(readIds);
    // Still the same process, still serving.
    expect(daemon?.child.exitCode).toBeNull();
    expect((await c.secrets.getSecretValue({ name: "rot" })).value).toMatch(/^rot-/);
  }, 60_000);
});

// --- internal ---

/** audit.log, audit.log.1, … newest first. */
function auditFiles(dataDir: string): string[] {
  const num = (f: string) => (f === "audit.log" ? 0 : Number(f.slice("audit.log.".length)));
  return readdirSync(dataDir)
    .filter((f) => /^audit\.log(\.\d+)?$/.test(f))
    .sort((a, b) => num(a) - num(b));
}

/** Every line of `files` oldest first, each parsed (a torn line fails here). */
function readAll(dataDir: string, files: string[]) {
  const lines: Line[] = [];
  const sizes = new Map<string, number>();
  for (const f of [...files].reverse()) {
    const text = readFileSync(join(dataDir, f), "utf8");
    sizes.set(f, Buffer.byteLength(text));
    if (text !== "") expect(text.endsWith("\n")).toBe(true);
    for (const l of text.split("\n").filter(Boolean)) lines.push(JSON.parse(l) as Line);
  }
  return { lines, sizes };
}

async function waitFor(ok: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`not within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
