import { mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
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

describe("file audit device rotation", () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const setup = async () => {
    const dir = await mkdtemp(join(tmpdir(), "vm-auth-audit-rot-"));
    dirs.push(dir);
    return { dir, file: join(dir, "audit.log") };
  };
  const entry = (i: number) => ({
    requestId: `r${i}`,
    actor: "local",
    action: "secret.get",
    secret: `s${i}`,
    result: "ok",
  });
  /** Every requestId in audit.log and its rotated files, oldest first. */
  const allIds = async (file: string, keep: number) => {
    const ids: string[] = [];
    for (let i = keep; i >= 0; i--) {
      const text = await readFile(i === 0 ? file : `${file}.${i}`, "utf8").catch(() => "");
      for (const l of text.split("\n").filter(Boolean)) {
        ids.push((JSON.parse(l) as { requestId: string }).requestId);
      }
    }
    return ids;
  };

  test("by size at flush time: audit.log → .1 → … → .keep, the oldest dropped; each line once, in order", async () => {
    const { file } = await setup();
    const errors: unknown[] = [];
    const dev = createFileAuditDevice(file, {
      maxBytes: 1000,
      keep: 3,
      onRotateError: (e) => errors.push(e),
    });
    const audit = createAuditBroker([dev], silent);
    // One flush per round of 5 entries (~500 bytes): a rotation every second round.
    for (let round = 0; round < 6; round++) {
      await Promise.all(
        Array.from({ length: 5 }, (_, i) => audit.record("read", entry(round * 5 + i))),
      );
    }
    expect(errors).toEqual([]);
    // 6 rounds: rotations after rounds 2, 4, 6; all three kept, the file itself new and empty.
    const ids = await allIds(file, 3);
    expect(ids).toEqual(Array.from({ length: 30 }, (_, i) => `r${i}`));
    expect((await stat(`${file}.3`)).mode & 0o777).toBe(0o600);
    expect((await stat(file)).size).toBe(0);
    // Two more rotations: the oldest two rounds' file is dropped, never more.
    for (let round = 6; round < 10; round++) {
      await Promise.all(
        Array.from({ length: 5 }, (_, i) => audit.record("read", entry(round * 5 + i))),
      );
    }
    expect(await allIds(file, 4)).toEqual(Array.from({ length: 30 }, (_, i) => `r${i + 20}`));
    // The query reads across the files, newest last, and stops at its limit.
    const found = await audit.query({ limit: 12 });
    expect(found.map((e) => e.requestId)).toEqual(
      Array.from({ length: 12 }, (_, i) => `r${i + 38}`),
    );
    expect((await audit.query({ limit: 100, secret: "s21" })).map((e) => e.requestId)).toEqual([
      "r21",
    ]);
    await audit.close();
  });

  test("reopen after an outside mv (logrotate): pending lines go to the moved file, later ones to a new one", async () => {
    const { file } = await setup();
    const dev = createFileAuditDevice(file);
    const audit = createAuditBroker([dev], silent);
    await audit.record("read", entry(0));
    await rename(file, `${file}.1`);
    // Written after the mv, before the reopen: still the old (moved) file.
    const pending = audit.record("read", entry(1));
    audit.reopen();
    await pending;
    await audit.record("read", entry(2));
    expect(await allIds(`${file}.1`, 0)).toEqual(["r0", "r1"]);
    expect(await allIds(file, 0)).toEqual(["r2"]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await audit.query({ limit: 10 })).map((e) => e.requestId)).toEqual(["r0", "r1", "r2"]);
    await audit.close();
  });

  test("a failed rotation keeps every line in audit.log, and is tried again after another maxBytes", async () => {
    const { file } = await setup();
    // A non-empty directory where audit.log.1 goes: the rename fails.
    await mkdir(`${file}.1`);
    await writeFile(join(`${file}.1`, "x"), "");
    const errors: unknown[] = [];
    const dev = createFileAuditDevice(file, {
      maxBytes: 150,
      keep: 1,
      onRotateError: (e) => errors.push(e),
    });
    const audit = createAuditBroker([dev], silent);
    // An entry is about 110 bytes: the second reaches 150 and the rotation fails.
    await audit.record("read", entry(0));
    await audit.record("read", entry(1));
    expect(errors).toHaveLength(1);
    // Not retried at every flush: only once another 150 bytes are written.
    await audit.record("read", entry(2));
    expect(errors).toHaveLength(1);
    expect((await audit.query({ limit: 10 })).map((e) => e.requestId)).toEqual(["r0", "r1", "r2"]);
    await rm(`${file}.1`, { recursive: true });
    await audit.record("read", entry(3));
    expect(errors).toHaveLength(1);
    expect(await allIds(`${file}.1`, 0)).toEqual(["r0", "r1", "r2", "r3"]);
    expect((await stat(file)).size).toBe(0);
    await audit.close();
  });
});

describe("file audit device: since", () => {
  test("returns entries at or after since, and stops reading a minute past it (rotated files too)", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vm-auth-audit-since-"));
    try {
      const file = join(dir, "audit.log");
      const line = (t: string, id: string) =>
        `${JSON.stringify({ time: t, requestId: id, actor: "local", action: "secret.read", result: "ok" })}\n`;
      // audit.log.1 is older; one line in it is out of order (newer than since) on purpose:
      // returned when the whole log is read, not when reading stops past `since`.
      await writeFile(
        `${file}.1`,
        line("2026-11-01T00:00:00.000Z", "old-1") + line("2026-11-30T05:00:00.000Z", "planted"),
      );
      await writeFile(
        file,
        line("2026-11-20T00:00:00.000Z", "mid") +
          line("2026-11-29T23:59:30.000Z", "edge") +
          line("2026-11-30T00:00:00.000Z", "new-1") +
          line("2026-11-30T01:00:00.000Z", "new-2"),
      );
      const dev = createFileAuditDevice(file, { keep: 2 });
      const ids = async (q: { since?: string }) =>
        ((await dev.query?.({ limit: 100, ...q })) ?? []).map((e) => e.requestId);
      expect(await ids({})).toEqual(["old-1", "planted", "mid", "edge", "new-1", "new-2"]);
      expect(await ids({ since: "2026-11-30T00:00:00.000Z" })).toEqual(["new-1", "new-2"]);
      await dev.close();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
