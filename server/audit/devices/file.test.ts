import { mkdtemp, readFile, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { createLogger } from "../../logger.js";
import { createAuditBroker } from "../audit.js";
import { createFileAuditDevice } from "./file.js";

const silent = createLogger({ level: "silent" });

describe("file audit device", () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });

  test("record and recordMany write the same JSON lines, in order; query reads them back", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vm-auth-audit-"));
    dirs.push(dir);
    const file = join(dir, "audit.log");
    const audit = createAuditBroker([createFileAuditDevice(file)], silent);
    const one = {
      requestId: "r1",
      actor: "local",
      action: "secret.get",
      secret: "a",
      result: "ok",
    };
    const many = ["vm-1", 'vm-"2"'].map((vm, i) => ({
      requestId: "watch",
      actor: `vm:${vm}`,
      action: "env.watch",
      vm,
      revision: 7 + i,
      result: "ok",
    }));
    await audit.record("read", one);
    await audit.recordMany("delivery", many);
    const lines = (await readFile(file, "utf8")).trimEnd().split("\n");
    expect(lines).toHaveLength(3);
    const parsed = lines.map((l) => JSON.parse(l) as { time: string });
    for (const [i, p] of parsed.entries()) {
      expect(Number.isNaN(Date.parse(p.time))).toBe(false);
      // Time first, then the entry's own keys in order: what JSON.stringify({ time, ...e }) writes.
      expect(lines[i]).toBe(JSON.stringify({ time: p.time, ...[one, ...many][i] }));
    }
    expect(parsed[1]?.time).toBe(parsed[2]?.time);
    const found = await audit.query({ limit: 10, action: "env.watch" });
    expect(found.map((e) => e.vm)).toEqual(["vm-1", 'vm-"2"']);
    await audit.close();
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });

  test("a fan-out's thousands of lines, mixed with single entries, arrive whole and in order", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vm-auth-audit-"));
    dirs.push(dir);
    const file = join(dir, "audit.log");
    const audit = createAuditBroker([createFileAuditDevice(file)], silent);
    const deliveries = (revision: number) =>
      Array.from({ length: 3000 }, (_, i) => ({
        requestId: "watch",
        actor: `vm:vm-${i}`,
        action: "env.watch",
        vm: `vm-${i}`,
        revision,
        result: "ok",
      }));
    // One turn: a single entry, 3,000 deliveries (several chunks), another single entry.
    await Promise.all([
      audit.record("change", {
        requestId: "a",
        actor: "local",
        action: "secret.rotate",
        result: "ok",
      }),
      audit.recordMany("delivery", deliveries(1)),
      audit.record("change", {
        requestId: "b",
        actor: "local",
        action: "secret.rotate",
        result: "ok",
      }),
    ]);
    await audit.recordMany("delivery", deliveries(2));
    const lines = (await readFile(file, "utf8")).trimEnd().split("\n");
    expect(lines).toHaveLength(6002);
    const parsed = lines.map((l) => JSON.parse(l) as { requestId: string; vm?: string });
    expect(parsed[0]?.requestId).toBe("a");
    expect(parsed.slice(1, 3001).map((e) => e.vm)).toEqual(deliveries(1).map((e) => e.vm));
    expect(parsed[3001]?.requestId).toBe("b");
    expect(parsed.slice(3002).map((e) => e.vm)).toEqual(deliveries(2).map((e) => e.vm));
    await audit.close();
  });
});
