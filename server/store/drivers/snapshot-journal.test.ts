import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { createLogger } from "../../logger.js";
import { createAccessUseCases } from "../../secrets/access.js";
import { createSecretUseCases } from "../../secrets/secrets.js";
import { testDeps } from "../../secrets/test-deps.js";
import { testStoreDriver } from "../contract.js";
import type { StoreView, Tx } from "../store.js";
import { openStore } from "../store.js";
import type { StoreData } from "../types.js";
import { emptyStore } from "../types.js";
import { encodeEntry } from "./journal.js";
import { createMemoryDriver } from "./memory.js";
import { createStoreSerializer } from "./snapshot.js";
import type { SnapshotJournalDriver } from "./snapshot-journal.js";
import { createSnapshotJournalDriver } from "./snapshot-journal.js";

testStoreDriver("snapshot-journal", {
  async create() {
    const dir = await mkdtemp(join(tmpdir(), "vm-auth-contract-"));
    const file = join(dir, "store.json");
    // A small threshold: the suite's few hundred commits compact many times.
    const options = { file, compactAt: 4096 };
    return {
      open: () => createSnapshotJournalDriver(options),
      settled: (d) => (d as SnapshotJournalDriver).settled(),
      // A crash in the middle of appending the next entry: part of a line, no newline.
      async tearNextWrite() {
        const line = encodeEntry(
          { revision: 1_000, puts: [], deletes: [{ section: "secrets", name: "torn" }] },
          emptyStore(),
        );
        await appendFile(`${file}.wal`, line.subarray(0, line.length - 9));
      },
      async footprint() {
        const size = (f: string) =>
          stat(f).then(
            (s) => s.size,
            () => 0,
          );
        return (await size(file)) + (await size(`${file}.wal`));
      },
      child: {
        module: new URL("./snapshot-journal.ts", import.meta.url).href,
        export: "createSnapshotJournalDriver",
        options,
      },
      cleanup: () => rm(dir, { recursive: true, force: true }),
    };
  },
});

/** Drives every kind of change through the real services, calling `check` after each. */
async function everyKindOfChange(
  store: Awaited<ReturnType<typeof openStore>>,
  check: () => Promise<void>,
) {
  const deps = await testDeps(store);
  const secrets = createSecretUseCases(deps);
  const access = createAccessUseCases(deps);
  const actor = { caller: { kind: "local" } as const, requestId: "t" };
  await check();
  await access.createGroup(actor, "ml");
  await access.createVm(actor, "vm1", ["ml"]);
  await check();
  for (let i = 0; i < 5; i++) await secrets.create(actor, { name: `s${i}`, value: `value-${i}` });
  await check();
  await secrets.rotate(actor, "s1", "value-1b");
  await check();
  await secrets.update(actor, { name: "s2", env: "OTHER", description: "d", labels: { a: "b" } });
  await check();
  await secrets.update(actor, { name: "s3", scope: "group:ml" });
  await check();
  await secrets.rollback(actor, "s1", 1);
  await check();
  await secrets.remove(actor, "s4");
  await check();
  await secrets.create(actor, { name: "s4", value: "again", scope: "vm:vm1" });
  await check();
  await access.updateVm(actor, "vm1", [], ["ml"]);
  await access.issueVmToken(actor, "vm1", true);
  await check();
  await expect(secrets.create(actor, { name: "s0", value: "dup" })).rejects.toThrow();
  await check();
  await access.createGroup(actor, "g2");
  await access.updateVm(actor, "vm1", ["g2"], []);
  await check();
  await access.deleteGroup(actor, "g2");
  await check();
  await access.revokeVmTokens(actor, "vm1");
  await check();
  await access.createAdminToken(actor, "ci");
  await check();
  // A keyring change (what rekey commits) is journaled whole.
  await store.mutate((d, tx) => {
    tx.setKeyring({ ...(d.keyring as NonNullable<StoreData["keyring"]>), masterKeyId: "rekeyed" });
  });
  await check();
  await secrets.remove(actor, "s4");
  await access.deleteVm(actor, "vm1");
  await check();
}

const plain = (d: Readonly<StoreData> | undefined) => JSON.parse(JSON.stringify(d ?? null));

describe("createStoreSerializer", () => {
  test("after every kind of change, writes what JSON.stringify would (cache never stale)", async () => {
    const store = await openStore(createMemoryDriver());
    const serialize = createStoreSerializer();
    await everyKindOfChange(store, async () => {
      expect(JSON.parse(Buffer.concat(serialize(store.data)).toString("utf8"))).toEqual(
        plain(store.data),
      );
    });
  });
});

describe("snapshot-journal driver", () => {
  const dirs: string[] = [];
  afterEach(async () => {
    for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
  });
  const scratch = async () => {
    const dir = await mkdtemp(join(tmpdir(), "vm-auth-journal-"));
    dirs.push(dir);
    return { file: join(dir, "store.json"), wal: join(dir, "store.json.wal") };
  };
  /** What a second process would load from disk right now (changing no file). */
  const onDisk = (file: string) => createSnapshotJournalDriver({ file, readOnly: true }).load();
  const group = (name: string) => (_d: StoreView, tx: Tx) => {
    tx.put("groups", { name, createdAt: "t" });
  };
  /** A store of groups a, b, c, closed (so compacted), with its journal from before put back. */
  const withStaleJournal = async () => {
    const paths = await scratch();
    const store = await openStore(createSnapshotJournalDriver({ file: paths.file }));
    for (const g of ["a", "b", "c"]) await store.mutate(group(g));
    const journal = await readFile(paths.wal);
    await store.close();
    await writeFile(paths.wal, journal);
    return paths;
  };

  test("after every kind of change, snapshot + journal load back as the document", async () => {
    const { file, wal } = await scratch();
    const store = await openStore(createSnapshotJournalDriver({ file }));
    await everyKindOfChange(store, async () => {
      if (store.data.revision === 0) expect(await onDisk(file)).toBeUndefined();
      else expect(plain(await onDisk(file))).toEqual(plain(store.data));
    });
    // The changes went to the journal; the snapshot is only the first commit (its journal
    // member rewritten after the first append, to require the journal).
    expect((await stat(wal)).size).toBeGreaterThan(0);
    const first = JSON.parse(await readFile(file, "utf8"));
    expect(first.revision).toBe(1);
    expect(first.journal.required).toBe(true);
    await store.close();
    // Closing compacts: the JSON file alone is the store, and the journal is empty.
    expect((await stat(wal)).size).toBe(0);
    const { checksum, journal, ...doc } = JSON.parse(await readFile(file, "utf8"));
    expect(journal.required).toBe(false);
    expect(plain(doc)).toEqual(plain(store.data));
  });

  test("a rotation appends about one record, not the document", async () => {
    const { file, wal } = await scratch();
    const store = await openStore(createSnapshotJournalDriver({ file }));
    await store.mutate((_d, tx) => {
      for (let i = 0; i < 2000; i++) {
        tx.put("vms", { name: `vm${i}`, groups: [], tokens: [], createdAt: "t" });
      }
    });
    const snapshot = (await stat(file)).size;
    await store.mutate(group("g"));
    const size = (await stat(wal)).size;
    expect(snapshot).toBeGreaterThan(100_000);
    expect(size).toBeLessThan(300);
    await store.close();
  });

  test("compacts once the journal outgrows the snapshot, and reloads the same", async () => {
    const { file, wal } = await scratch();
    const store = await openStore(createSnapshotJournalDriver({ file, compactAt: 1 }));
    const vm = (name: string) =>
      store.mutate((_d, tx) => {
        tx.put("vms", { name, groups: [], tokens: [], createdAt: "t" });
      });
    await vm("first");
    const snapshots = new Set<number>();
    for (let i = 0; i < 60; i++) {
      await vm(`vm${i}`);
      snapshots.add(JSON.parse(await readFile(file, "utf8")).revision);
      // The journal: its header line (~55 bytes) and at most about one snapshot's worth.
      expect((await stat(wal)).size).toBeLessThan(Math.max(1, (await stat(file)).size) + 300);
      expect(plain(await onDisk(file))).toEqual(plain(store.data));
    }
    expect(snapshots.size).toBeGreaterThan(3);
    await store.close();
  });

  test("a torn last entry (never acknowledged) is dropped and cut off; saving goes on", async () => {
    const { file, wal } = await scratch();
    const first = createSnapshotJournalDriver({ file });
    let store = await openStore(first);
    for (const g of ["a", "b", "c"]) await store.mutate(group(g));
    await first.settled();
    const good = plain(store.data);
    // What a crash in the middle of appending the next entry leaves.
    await appendFile(wal, '0123456789abcdef {"rev":4,"set":{"secr');
    const log: string[] = [];
    const driver = createSnapshotJournalDriver({
      file,
      log: createLogger({ write: (l) => log.push(l) }),
    });
    store = await openStore(driver);
    expect(plain(store.data)).toEqual(good);
    expect((await readFile(wal, "utf8")).endsWith("\n")).toBe(true);
    expect(log.join("")).toMatch(/"level":"warn","msg":"store journal .* dropped incomplete last/);
    await store.mutate(group("d"));
    expect(Object.keys((await onDisk(file))?.groups ?? {})).toEqual(["a", "b", "c", "d"]);
    await store.close();
  });

  test("damage before intact entries refuses to load, naming the journal and line", async () => {
    const { file, wal } = await scratch();
    const store = await openStore(createSnapshotJournalDriver({ file }));
    for (const g of ["a", "b", "c", "d"]) await store.mutate(group(g));
    // Line 1 is the header, line 2 puts b (the first to name it), lines 3 and 4 follow.
    const text = await readFile(wal, "utf8");
    await writeFile(wal, text.replace('"b"', '"B"'));
    await expect(onDisk(file)).rejects.toThrow(
      /store journal .*store\.json\.wal is damaged at line 2 \(byte \d+\)/,
    );
    await store.close();
  });

  test("a whole document written without a read first empties a journal left beside it", async () => {
    const { file, wal } = await withStaleJournal();
    const fresh = emptyStore();
    fresh.revision = 1;
    fresh.groups.only = { name: "only", createdAt: "t", modRevision: 1 };
    await createSnapshotJournalDriver({ file }).replace(fresh);
    expect((await stat(wal)).size).toBe(0);
    expect(Object.keys((await onDisk(file))?.groups ?? {})).toEqual(["only"]);
  });

  test("a journal without its snapshot refuses to load", async () => {
    const { file, wal } = await scratch();
    const driver = createSnapshotJournalDriver({ file });
    const store = await openStore(driver);
    for (const g of ["a", "b", "c"]) await store.mutate(group(g));
    // The snapshot rewrite the first append started must not put the file back.
    await driver.settled();
    await rm(file);
    await expect(onDisk(file)).rejects.toThrow(/exists but its snapshot .* does not/);
    expect((await stat(wal)).size).toBeGreaterThan(0);
    await store.close();
  });

  test("a crash between a compaction's rename and its truncation loses and repeats nothing", async () => {
    // The new snapshot is in place but the old journal was not emptied.
    const { file } = await withStaleJournal();
    const again = await openStore(createSnapshotJournalDriver({ file }));
    expect(again.data.revision).toBe(3);
    expect(Object.keys(again.data.groups)).toEqual(["a", "b", "c"]);
    await again.mutate(group("d"));
    expect(Object.keys((await onDisk(file))?.groups ?? {})).toEqual(["a", "b", "c", "d"]);
    await again.close();
  });
});
