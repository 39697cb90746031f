/**
 * Every crash point of a compaction (and of a journal's start) loads correctly. A crash is
 * shown by copying the live store's files at the point a fault stopped it (a directory put
 * where a temp file goes makes that write fail), or by writing the files a crash leaves.
 */
import { mkdirSync } from "node:fs";
import { readdir, readFile, rm, rmdir, stat, writeFile } from "node:fs/promises";
import { afterEach, describe, expect, test } from "vitest";
import { openStore } from "../store.js";
import { emptyStore } from "../types.js";
import { encodeJournalHeader } from "./journal.js";
import { createSnapshotJournalDriver } from "./snapshot-journal.js";
import {
  capturedLog,
  crashImage,
  group,
  journalLines,
  legacyLine,
  plain,
  scratchDirs,
} from "./test-fixtures.js";

const scratch = scratchDirs();
afterEach(() => scratch.cleanup());

const groupsOf = async (file: string) =>
  Object.keys((await createSnapshotJournalDriver({ file }).load())?.groups ?? {});

/** Waits until `log` has an entry whose message matches `re`. */
async function logged(entries: { msg: string }[], re: RegExp) {
  for (let i = 0; i < 200 && !entries.some((e) => re.test(e.msg)); i++) {
    await new Promise((r) => setTimeout(r, 5));
  }
  expect(entries.map((e) => e.msg)).toContainEqual(expect.stringMatching(re));
}

/**
 * A store with group a in a fresh snapshot; putting b (a long line) starts its journal, which
 * then outgrows the snapshot: after the ack, a compaction. `fault` names the temp file that
 * compaction cannot write (a directory is put there): the snapshot's or the journal's.
 */
async function compactionStoppedAt(fault: "snapshot" | "journal") {
  const live = await scratch.make();
  const { log, entries } = capturedLog();
  const store = await openStore(
    createSnapshotJournalDriver({ file: live.file, log, compactAt: 1 }),
  );
  await store.mutate(group("a"));
  await store.mutate(group("b", 2000));
  // Synchronously, before the compaction (which waits a turn after the ack) writes anything.
  const blocked = fault === "snapshot" ? live.snapshotTmp : live.walTmp;
  mkdirSync(blocked);
  await logged(entries, /store compaction failed/);
  const image = await crashImage(live.dir, scratch.make);
  await rmdir(blocked);
  await store.close();
  return { image, entries, acked: ["a", "b"] };
}

describe("crash points of a compaction", () => {
  test("a compaction that fails in the background is logged, and the store goes on", async () => {
    const { entries } = await compactionStoppedAt("journal");
    const warn = entries.find((e) => /store compaction failed/.test(e.msg));
    expect(warn?.level).toBe("warn");
  });

  test("while the new snapshot is written (a temp file left): the old pair loads", async () => {
    const { image } = await compactionStoppedAt("snapshot");
    await writeFile(image.snapshotTmp, '{"checksum":"sha256:00');
    const { log, entries } = capturedLog();
    expect(
      Object.keys(
        (await createSnapshotJournalDriver({ file: image.file, log }).load())?.groups ?? {},
      ),
    ).toEqual(["a", "b"]);
    expect(entries).toContainEqual(
      expect.objectContaining({
        level: "info",
        msg: "removed a leftover temp file",
        file: image.snapshotTmp,
      }),
    );
    await expect(stat(image.snapshotTmp)).rejects.toThrow();
  });

  test("after the snapshot's rename, before the journal is replaced: nothing lost or repeated", async () => {
    const { image } = await compactionStoppedAt("journal");
    // The new snapshot holds a and b; the journal beside it is the one it replaced.
    expect(JSON.parse(await readFile(image.file, "utf8")).revision).toBe(2);
    expect(await journalLines(image.wal)).toHaveLength(2);
    const store = await openStore(createSnapshotJournalDriver({ file: image.file }));
    expect(Object.keys(store.data.groups)).toEqual(["a", "b"]);
    expect(store.data.revision).toBe(2);
    await store.mutate(group("c"));
    const again = await crashImage(image.dir, scratch.make);
    expect(await groupsOf(again.file)).toEqual(["a", "b", "c"]);
    await store.close();
    expect(await groupsOf(image.file)).toEqual(["a", "b", "c"]);
  });

  test("while the new journal is written (a temp file left): loads, temp removed", async () => {
    const { image } = await compactionStoppedAt("journal");
    await writeFile(image.walTmp, "0123456789abcdef ");
    const { log, entries } = capturedLog();
    expect(
      Object.keys(
        (await createSnapshotJournalDriver({ file: image.file, log }).load())?.groups ?? {},
      ),
    ).toEqual(["a", "b"]);
    expect(entries.filter((e) => e.msg === "removed a leftover temp file")).toHaveLength(1);
    expect(await readdir(image.dir)).toEqual(["store.json", "store.json.wal"]);
  });

  test("closing: after the snapshot's rename, before the journal is emptied", async () => {
    const live = await scratch.make();
    const store = await openStore(createSnapshotJournalDriver({ file: live.file }));
    for (const g of ["a", "b", "c", "d"]) await store.mutate(group(g));
    const journal = await readFile(live.wal);
    await store.close();
    expect((await stat(live.wal)).size).toBe(0);
    await writeFile(live.wal, journal);
    const again = await openStore(createSnapshotJournalDriver({ file: live.file }));
    expect(again.data.revision).toBe(4);
    expect(Object.keys(again.data.groups)).toEqual(["a", "b", "c", "d"]);
    await again.mutate(group("e"));
    await again.close();
    expect(await groupsOf(live.file)).toEqual(["a", "b", "c", "d", "e"]);
  });
});

describe("a whole-document write without a read first", () => {
  test("a crash before it empties the old journal: refused, naming the later revisions", async () => {
    const live = await scratch.make();
    const driver = createSnapshotJournalDriver({ file: live.file });
    const store = await openStore(driver);
    for (const g of ["a", "b", "c"]) await store.mutate(group(g));
    await driver.settled();
    const image = await crashImage(live.dir, scratch.make);
    await store.close();
    const old = await readFile(image.wal);
    const fresh = emptyStore();
    fresh.revision = 1;
    fresh.groups.only = { name: "only", createdAt: "t", modRevision: 1 };
    await createSnapshotJournalDriver({ file: image.file }).replace(fresh);
    expect((await stat(image.wal)).size).toBe(0);
    await writeFile(image.wal, old);
    await expect(createSnapshotJournalDriver({ file: image.file }).load()).rejects.toThrow(
      /store journal .* \(journal [0-9a-f]{16}, after revision 1\) was superseded by snapshot .*store\.json \(revision 1\) but holds revisions after it \(2–3\); refusing to start/,
    );
  });
});

describe("crash points of a journal's start", () => {
  /** A closed store (a, b): a snapshot that is the whole store, an empty journal. */
  async function closed() {
    const live = await scratch.make();
    const store = await openStore(createSnapshotJournalDriver({ file: live.file }));
    for (const g of ["a", "b"]) await store.mutate(group(g));
    await store.close();
    return live;
  }

  test("its temp file written, not renamed: loads, temp removed", async () => {
    const p = await closed();
    await rm(p.wal);
    await writeFile(p.walTmp, "0123");
    expect(await groupsOf(p.file)).toEqual(["a", "b"]);
    expect(await readdir(p.dir)).toEqual(["store.json"]);
  });

  test("its header written, no entry yet: loads, and appends go on after the header", async () => {
    const p = await closed();
    const snap = JSON.parse(await readFile(p.file, "utf8"));
    await writeFile(p.wal, encodeJournalHeader(snap.journal.id, snap.revision));
    const store = await openStore(createSnapshotJournalDriver({ file: p.file }));
    expect(Object.keys(store.data.groups)).toEqual(["a", "b"]);
    await store.mutate(group("c"));
    await store.close();
    expect(await groupsOf(p.file)).toEqual(["a", "b", "c"]);
  });

  test("its first entries written, before the snapshot expects it: they load", async () => {
    const live = await closed();
    const { log, entries } = capturedLog();
    const store = await openStore(createSnapshotJournalDriver({ file: live.file, log }));
    await store.mutate(group("c"));
    // The rewrite that makes the snapshot expect the journal cannot write.
    mkdirSync(live.snapshotTmp);
    await logged(entries, /store snapshot rewrite failed/);
    const image = await crashImage(live.dir, scratch.make);
    await rmdir(live.snapshotTmp);
    await store.close();
    expect(await groupsOf(image.file)).toEqual(["a", "b", "c"]);
  });

  test("upgrading: the first sealed snapshot written, the old journal not yet emptied", async () => {
    const p = await scratch.make();
    const legacy = emptyStore();
    legacy.revision = 1;
    legacy.groups.a = { name: "a", createdAt: "t", modRevision: 1 };
    await writeFile(p.file, JSON.stringify(legacy));
    const oldJournal = legacyLine({
      rev: 2,
      set: {},
      top: { groups: { ...legacy.groups, b: { name: "b", createdAt: "t", modRevision: 2 } } },
    });
    await writeFile(p.wal, oldJournal);
    const store = await openStore(createSnapshotJournalDriver({ file: p.file }));
    await store.mutate(group("c"));
    const expected = plain(store.data);
    await store.close();
    await writeFile(p.wal, oldJournal);
    expect(plain(await createSnapshotJournalDriver({ file: p.file }).load())).toEqual(expected);
  });
});
