/**
 * Damage in the store's files is found and named, never swallowed (issue #8): the snapshot's
 * checksum, the journal's line rules, a journal that is missing or belongs to another
 * snapshot, and what `repair` accepts and says.
 */
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { afterEach, describe, expect, test } from "vitest";
import { openStore } from "../store.js";
import { emptyStore } from "../types.js";
import { createSnapshotJournalDriver } from "./snapshot-journal.js";
import {
  capturedLog,
  crashImage,
  flipByte,
  group,
  journalLines,
  legacyLine,
  offsetOf,
  plain,
  scratchDirs,
} from "./test-fixtures.js";

const scratch = scratchDirs();
afterEach(() => scratch.cleanup());

/**
 * Opens a store on `file`, puts the groups `names` one per save and waits for the work the
 * saves left running; returns it still open.
 */
async function storeWithGroups(file: string, names: string[]) {
  const driver = createSnapshotJournalDriver({ file });
  const store = await openStore(driver);
  for (const g of names) await store.mutate(group(g));
  await driver.settled();
  return store;
}

/**
 * A crash image (what a kill -9 leaves) of a store after six acknowledged writes, groups a..f
 * at revisions 1..6: its snapshot holds a (revision 1; the first append made it require its
 * journal), its journal a header and b..f, one line each.
 */
async function crashedWithJournal() {
  const live = await scratch.make();
  const store = await storeWithGroups(live.file, ["a", "b", "c", "d", "e", "f"]);
  const image = await crashImage(live.dir, scratch.make);
  await store.close();
  return image;
}

const load = (file: string, opts: { repair?: boolean } = {}) => {
  const { log, entries, text } = capturedLog();
  const driver = createSnapshotJournalDriver({ file, log, ...opts });
  return { driver, entries, text, data: () => driver.load() };
};

const groupsOf = async (file: string, opts: { repair?: boolean } = {}) =>
  Object.keys((await load(file, opts).data())?.groups ?? {});

describe("store.json carries its own checksum", () => {
  test("it stays one line of plain JSON, starting with its sha256, and loads back", async () => {
    const { file } = await scratch.make();
    const store = await storeWithGroups(file, ["a"]);
    const text = await readFile(file, "utf8");
    expect(text).toMatch(/^\{"checksum":"sha256:[0-9a-f]{64}","journal":\{/);
    const parsed = JSON.parse(text);
    expect(parsed.groups.a.name).toBe("a");
    expect(plain(await load(file).data())).toEqual(plain(store.data));
    await store.close();
  });

  test("one flipped bit anywhere refuses to load, naming the file and --repair", async () => {
    const { file } = await scratch.make();
    await (await storeWithGroups(file, ["alpha", "beta"])).close();
    const good = await readFile(file);
    // In a record, in the checksum itself, in the journal member, in the key "checksum".
    const spots = [
      await offsetOf(file, "beta"),
      await offsetOf(file, "sha256:", 1),
      (await offsetOf(file, '"journal"')) + 3,
      2,
    ];
    for (const at of spots) {
      await writeFile(file, good);
      await flipByte(file, at);
      await expect(load(file).data()).rejects.toThrow(
        /store file .*\/store\.json is damaged: its checksum does not match its content; refusing to start.*--repair/,
      );
    }
  });

  test("a snapshot written before checksums loads, and the next write seals it", async () => {
    const { file, wal } = await scratch.make();
    const legacy = emptyStore();
    legacy.revision = 2;
    legacy.groups.a = { name: "a", createdAt: "t", modRevision: 2 };
    await writeFile(file, JSON.stringify(legacy));
    // Its journal: no header, one line past the snapshot and one at or below it.
    await writeFile(
      wal,
      legacyLine({ rev: 2, set: {}, top: { groups: legacy.groups } }) +
        legacyLine({ rev: 3, set: {}, top: { groups: { ...legacy.groups, b: { name: "b" } } } }),
    );
    const store = await openStore(createSnapshotJournalDriver({ file }));
    expect(Object.keys(store.data.groups)).toEqual(["a", "b"]);
    await store.mutate(group("c"));
    expect(await readFile(file, "utf8")).toMatch(/^\{"checksum":"sha256:/);
    expect(await groupsOf(file)).toEqual(["a", "b", "c"]);
    await store.mutate(group("d"));
    await store.close();
    expect(await groupsOf(file)).toEqual(["a", "b", "c", "d"]);
  });

  test("--repair accepts a snapshot that fails its checksum but parses, keeps it, says so", async () => {
    const { file, dir } = await scratch.make();
    await (await storeWithGroups(file, ["alpha", "beta"])).close();
    await flipByte(file, await offsetOf(file, "beta"));
    const r = load(file, { repair: true });
    expect(Object.keys((await r.data())?.groups ?? {})).toEqual(["alpha", "ceta"]);
    const warn = r.entries.find((e) => e.level === "warn");
    expect(warn?.msg).toMatch(
      /--repair: accepted store file .*\/store\.json although its checksum does not match; the file as it was is kept as .*store\.json\.damaged-/,
    );
    const kept = (await readdir(dir)).filter((n) => n.startsWith("store.json.damaged-"));
    expect(kept).toHaveLength(1);
    expect(r.driver.report?.()?.warnings).toEqual([warn?.msg]);
    // The accepted content is sealed again: the next start needs no --repair.
    expect(await groupsOf(file)).toEqual(["alpha", "ceta"]);
  });

  test("a snapshot that is not JSON refuses, with or without --repair", async () => {
    const { file } = await scratch.make();
    await (await storeWithGroups(file, ["a"])).close();
    const text = await readFile(file, "utf8");
    await writeFile(file, text.slice(0, text.length - 5));
    for (const repair of [false, true]) {
      await expect(load(file, { repair }).data()).rejects.toThrow(
        /store file .*\/store\.json is not valid JSON; refusing to start/,
      );
    }
  });
});

describe("journal lines: only an incomplete last line is a torn write", () => {
  test("a damaged middle line refuses, naming the file, line and byte", async () => {
    const { file, wal } = await crashedWithJournal();
    const lines = await journalLines(wal);
    expect(lines).toHaveLength(6); // header, b, c, d, e, f
    const at = (lines[0]?.length as number) + (lines[1]?.length as number);
    await flipByte(wal, at + 30);
    await expect(load(file).data()).rejects.toThrow(
      new RegExp(
        `store journal .*/store\\.json\\.wal is damaged at line 3 \\(byte ${at}\\): its checksum does not match; refusing to start \\(start with --repair to drop line 3 and the 3 lines after it, revisions 3–6\\)`,
      ),
    );
  });

  test("a damaged last complete line is corruption, not a torn write", async () => {
    const { file, wal } = await crashedWithJournal();
    const lines = await journalLines(wal);
    const at = (await stat(wal)).size - (lines[5]?.length as number);
    await flipByte(wal, at + 20);
    await expect(load(file).data()).rejects.toThrow(
      new RegExp(`is damaged at line 6 \\(byte ${at}\\): its checksum does not match`),
    );
  });

  test("a line whose JSON is cut but whose newline is there is corruption", async () => {
    const { file, wal } = await crashedWithJournal();
    const text = await readFile(wal, "utf8");
    const lines = await journalLines(wal);
    const cut = (lines[0]?.length as number) + 30;
    await writeFile(wal, `${text.slice(0, cut)}\n${text.slice(cut)}`);
    await expect(load(file).data()).rejects.toThrow(/is damaged at line 2 \(byte \d+\)/);
  });

  test("a last line missing only its newline is applied and its newline restored", async () => {
    const { file, wal } = await crashedWithJournal();
    const text = await readFile(wal, "utf8");
    await writeFile(wal, text.slice(0, -1));
    const r = load(file);
    expect(Object.keys((await r.data())?.groups ?? {})).toEqual(["a", "b", "c", "d", "e", "f"]);
    expect(await readFile(wal, "utf8")).toBe(text);
    expect(r.entries.find((e) => /newline/.test(e.msg))?.level).toBe("info");
  });

  test("a torn last line is dropped with a warning naming file, offset and bytes", async () => {
    const { file, wal } = await crashedWithJournal();
    const text = await readFile(wal, "utf8");
    const lines = await journalLines(wal);
    const start = text.length - (lines[5]?.length as number);
    // A journal cut in the middle of its last line (a crash mid-append, or a truncation).
    await writeFile(wal, text.slice(0, start + 25));
    const r = load(file);
    expect(Object.keys((await r.data())?.groups ?? {})).toEqual(["a", "b", "c", "d", "e"]);
    const warn = r.entries.find((e) => e.level === "warn");
    expect(warn?.msg).toBe(
      `store journal ${wal}: dropped incomplete last line 6 at byte ${start} (25 bytes): a write cut short by a crash, never acknowledged; or a journal cut short, losing revision 6 and any after it`,
    );
    expect(warn).toMatchObject({ file: wal, offset: start, bytes: 25, line: 6 });
    expect(r.driver.report?.()?.warnings).toEqual([warn?.msg]);
    expect(await readFile(wal, "utf8")).toBe(text.slice(0, start));
    // Saving goes on after the cut.
    const store = await openStore(createSnapshotJournalDriver({ file }));
    await store.mutate(group("g"));
    await store.close();
    expect(await groupsOf(file)).toEqual(["a", "b", "c", "d", "e", "g"]);
  });

  test("--repair drops a damaged line and all after it, names them, keeps the journal", async () => {
    const { file, wal, dir } = await crashedWithJournal();
    const lines = await journalLines(wal);
    const at = (lines[0]?.length as number) + (lines[1]?.length as number);
    await flipByte(wal, at + 30);
    const r = load(file, { repair: true });
    const data = await r.data();
    expect(Object.keys(data?.groups ?? {})).toEqual(["a", "b"]);
    const warn = r.entries.find((e) => e.level === "warn");
    expect(warn?.msg).toMatch(
      new RegExp(
        `^--repair: dropped lines 3–6 of store journal ${wal} from byte ${at} \\(line 3: its checksum does not match; revisions 3–6 lost, not to be reused\\); the journal as it was is kept as ${wal}\\.damaged-`,
      ),
    );
    expect(
      (await readdir(dir)).filter((n) => n.startsWith("store.json.wal.damaged-")),
    ).toHaveLength(1);
    // What was kept is durable and whole: a plain start now loads it.
    expect(await groupsOf(file)).toEqual(["a", "b"]);
    const store = await openStore(createSnapshotJournalDriver({ file }));
    expect(store.data.revision).toBe(6);
    await store.mutate(group("z"));
    expect(store.data.revision).toBe(7);
    await store.close();
    expect(await groupsOf(file)).toEqual(["a", "b", "z"]);
  });
});

describe("a journal the snapshot expects", () => {
  test("deleted: refuses, naming both files and the revision it would start from", async () => {
    const { file, wal } = await crashedWithJournal();
    await rm(wal);
    await expect(load(file).data()).rejects.toThrow(
      new RegExp(
        `store journal ${wal} is missing, but snapshot ${file} \\(revision 1\\) expects journal [0-9a-f]{16}: the changes after revision 1 are in it; refusing to start \\(put it back, or start with --repair to start from the snapshot alone\\)`,
      ),
    );
  });

  test("emptied: refuses the same way", async () => {
    const { file, wal } = await crashedWithJournal();
    await writeFile(wal, "");
    await expect(load(file).data()).rejects.toThrow(/store journal .* is empty, but snapshot/);
  });

  test("from another snapshot: refuses, naming both files", async () => {
    const one = await crashedWithJournal();
    const two = await crashedWithJournal();
    await writeFile(one.wal, await readFile(two.wal));
    await expect(load(one.file).data()).rejects.toThrow(
      new RegExp(
        `store journal ${one.wal} \\(journal [0-9a-f]{16}, after revision 1\\) does not belong to snapshot ${one.file} \\(revision 1, journal [0-9a-f]{16}\\); refusing to start \\(put back the matching pair, or start with --repair to set the journal aside`,
      ),
    );
  });

  test("an older store.json restored alone next to a newer journal refuses", async () => {
    const live = await scratch.make();
    const store = await storeWithGroups(live.file, ["a", "b", "c"]);
    const older = await readFile(live.file);
    await store.close();
    const again = await storeWithGroups(live.file, ["d", "e", "f"]);
    const image = await crashImage(live.dir, scratch.make);
    await again.close();
    await writeFile(image.file, older);
    await expect(load(image.file).data()).rejects.toThrow(/does not belong to snapshot/);
  });

  test("a journal with no header next to a sealed snapshot refuses", async () => {
    const { file, wal } = await crashedWithJournal();
    const lines = await journalLines(wal);
    await writeFile(wal, lines.slice(1).join(""));
    await expect(load(file).data()).rejects.toThrow(/has no header, so it does not belong/);
  });

  test("--repair sets a missing or foreign journal aside and starts from the snapshot", async () => {
    const one = await crashedWithJournal();
    const two = await crashedWithJournal();
    const foreign = await readFile(two.wal);
    await writeFile(one.wal, foreign);
    const r = load(one.file, { repair: true });
    expect(Object.keys((await r.data())?.groups ?? {})).toEqual(["a"]);
    const warn = r.entries.find((e) => e.level === "warn");
    expect(warn?.msg).toMatch(
      new RegExp(
        `^--repair: set aside store journal ${one.wal}, which does not belong to snapshot ${one.file}, as ${one.wal}\\.damaged-[^ ]+; started from the snapshot at revision 1`,
      ),
    );
    const kept = (await readdir(one.dir)).filter((n) => n.startsWith("store.json.wal.damaged-"));
    expect(await readFile(`${one.dir}/${kept[0]}`)).toEqual(foreign);
    expect(await groupsOf(one.file)).toEqual(["a"]);

    await rm(two.wal);
    const m = load(two.file, { repair: true });
    expect(Object.keys((await m.data())?.groups ?? {})).toEqual(["a"]);
    expect(m.entries.find((e) => e.level === "warn")?.msg).toMatch(
      /^--repair: store journal .* is missing; started from snapshot .* at revision 1; changes after revision 1, if any, are lost/,
    );
    expect(await groupsOf(two.file)).toEqual(["a"]);
  });

  test("a journal without its snapshot refuses, with or without --repair", async () => {
    const { file } = await crashedWithJournal();
    await rm(file);
    for (const repair of [false, true]) {
      await expect(load(file, { repair }).data()).rejects.toThrow(
        /exists but its snapshot .* does not/,
      );
    }
  });
});

describe("a clean close leaves store.json alone as the whole store", () => {
  test("the journal is emptied and may then be deleted", async () => {
    const { file, wal } = await scratch.make();
    await (await storeWithGroups(file, ["a", "b", "c"])).close();
    expect((await stat(wal)).size).toBe(0);
    await rm(wal);
    expect(await groupsOf(file)).toEqual(["a", "b", "c"]);
  });

  test("after a restart, the first write makes the snapshot expect its journal", async () => {
    const live = await scratch.make();
    await (await storeWithGroups(live.file, ["a", "b"])).close();
    const store = await storeWithGroups(live.file, ["c", "d"]);
    const image = await crashImage(live.dir, scratch.make);
    await store.close();
    expect(await groupsOf(image.file)).toEqual(["a", "b", "c", "d"]);
    await rm(image.wal);
    await expect(load(image.file).data()).rejects.toThrow(/is missing, but snapshot/);
  });
});
