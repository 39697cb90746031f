import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { createMemoryDriver } from "./drivers/memory.js";
import { createSnapshotJournalDriver } from "./drivers/snapshot-journal.js";
import { openStore } from "./store.js";
import type { Change, ChangeSet, StoreDriver, VmRecord } from "./types.js";
import { emptyStore } from "./types.js";

/** Decorator driver that fails the next `n` commits (fault injection without mocks). */
function failing(inner: StoreDriver, state: { failNext: number }): StoreDriver {
  return {
    load: () => inner.load(),
    async commit(set) {
      if (state.failNext > 0) {
        state.failNext--;
        throw new Error("disk full");
      }
      return inner.commit(set);
    },
    close: () => inner.close(),
  };
}

/** Decorator driver that keeps every change set it is handed. */
function recording(inner: StoreDriver, sets: ChangeSet[]): StoreDriver {
  return {
    load: () => inner.load(),
    commit: (set) => {
      sets.push(set);
      return inner.commit(set);
    },
    close: () => inner.close(),
  };
}

describe("store", () => {
  test("each mutation bumps the revision and resolves after its commit", async () => {
    const driver = createMemoryDriver();
    const store = await openStore(driver);
    const r = await store.mutate((_d, tx) => {
      tx.put("groups", { name: "a", createdAt: "t" });
      return tx.revision;
    });
    expect(r).toBe(1);
    expect(store.data.revision).toBe(1);
    expect((await driver.load())?.groups.a?.name).toBe("a");
  });

  test("a burst is group-committed in far fewer commits, in order", async () => {
    const driver = createMemoryDriver();
    const sets: ChangeSet[] = [];
    const store = await openStore(recording(driver, sets));
    const seen: number[] = [];
    store.onCommit((rev) => seen.push(rev));
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.mutate((_d, tx) => {
          tx.put("groups", { name: `g${i}`, createdAt: "t" });
        }),
      ),
    );
    expect(driver.commits).toBeLessThan(5);
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    // Each set carries its mutations' puts, at increasing revisions, ending at the last.
    expect(sets.flatMap((s) => s.puts.map((p) => p.record.modRevision))).toEqual(seen);
    expect(sets.at(-1)?.revision).toBe(50);
  });

  test("a group commit merges its mutations' ops: the last op on a name wins", async () => {
    const sets: ChangeSet[] = [];
    const store = await openStore(recording(createMemoryDriver(), sets));
    const put = (name: string, createdAt: string) =>
      store.mutate((_d, tx) => {
        tx.put("groups", { name, createdAt });
      });
    await put("keep", "t0");
    // While the first commit is in flight, four mutations queue up: one set for all four.
    const first = put("a", "t1");
    const burst = [
      put("a", "t2"),
      put("b", "t1"),
      store.mutate((_d, tx) => tx.delete("groups", "b")),
      store.mutate((_d, tx) => tx.delete("groups", "keep")),
    ];
    await Promise.all([first, ...burst]);
    const last = sets.at(-1) as ChangeSet;
    expect(last.revision).toBe(6);
    expect(last.puts).toEqual([
      { section: "groups", name: "a", record: { name: "a", createdAt: "t2", modRevision: 3 } },
    ]);
    expect(last.deletes).toEqual([
      { section: "groups", name: "b" },
      { section: "groups", name: "keep" },
    ]);
    expect(Object.keys(store.data.groups)).toEqual(["a"]);
  });

  test("awaited back-to-back mutations never stall (regression)", async () => {
    // The caller of a finished mutation resumes before the flush clears its in-flight flag;
    // a mutation made right then once sat in the queue forever.
    const store = await openStore(createMemoryDriver());
    for (let i = 0; i < 100; i++) {
      await store.mutate((_d, tx) => {
        tx.put("groups", { name: `g${i}`, createdAt: "t" });
      });
    }
    expect(store.data.revision).toBe(100);
  });

  test("a failed save fails its mutations and rolls back to the durable state", async () => {
    const state = { failNext: 0 };
    const store = await openStore(failing(createMemoryDriver(), state));
    await store.mutate((_d, tx) => {
      tx.put("groups", { name: "kept", createdAt: "t" });
    });
    state.failNext = 1;
    await expect(
      store.mutate((_d, tx) => {
        tx.put("groups", { name: "lost", createdAt: "t" });
      }),
    ).rejects.toMatchObject({ code: "unavailable" });
    expect(store.data.groups.lost).toBeUndefined();
    expect(store.data.groups.kept).toBeDefined();
    expect(store.data.revision).toBe(1);
    await store.mutate((_d, tx) => {
      tx.put("groups", { name: "after", createdAt: "t" });
    });
    expect(store.data.revision).toBe(2);
  });

  test("a mutator that throws changes nothing and commits nothing", async () => {
    const driver = createMemoryDriver();
    const store = await openStore(driver);
    expect(() =>
      store.mutate(() => {
        throw new Error("invalid");
      }),
    ).toThrow("invalid");
    expect(store.data.revision).toBe(0);
    expect(driver.commits).toBe(0);
  });

  test("snapshot-journal driver: durable JSON file, no temp file left, reopened intact", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vm-auth-store-"));
    try {
      const file = join(dir, "store.json");
      const store = await openStore(createSnapshotJournalDriver({ file }));
      await store.mutate((_d, tx) => {
        tx.put("groups", { name: "a", createdAt: "t" });
      });
      await store.close();
      expect(await readdir(dir)).toEqual(["store.json"]);
      expect(JSON.parse(await readFile(file, "utf8")).schemaVersion).toBe(1);
      const again = await openStore(createSnapshotJournalDriver({ file }));
      expect(again.data.groups.a?.name).toBe("a");
      expect(again.data.revision).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("refuses a store written by a newer schema", async () => {
    const doc = emptyStore();
    doc.schemaVersion = 99;
    await expect(openStore(createMemoryDriver({ data: doc }))).rejects.toThrow(/schema version 99/);
  });
});

describe("store: nothing uncommitted is visible (issue #8)", () => {
  test("readers and commit listeners see a change only once its save is durable", async () => {
    const gate = slow(createMemoryDriver());
    const store = await openStore(gate.driver);
    const seen: string[][] = [];
    store.onCommit(() => seen.push(Object.keys(store.data.groups)));
    const first = store.mutate((_d, tx) => tx.put("groups", { name: "a", createdAt: "t" }));
    // Queued behind the first save, applied to the head, not yet written.
    const second = store.mutate((d, tx) => {
      expect(d.groups.a).toBeDefined(); // mutators build on what is pending
      tx.put("groups", { name: "b", createdAt: "t" });
    });
    await gate.saveStarted(1);
    expect(store.data.groups).toEqual({});
    expect(store.data.revision).toBe(0);
    gate.release(1);
    await first;
    expect(Object.keys(store.data.groups)).toEqual(["a"]);
    expect(store.data.revision).toBe(1);
    await gate.saveStarted(2);
    expect(store.data.groups.b).toBeUndefined();
    gate.release(2);
    await second;
    expect(Object.keys(store.data.groups)).toEqual(["a", "b"]);
    expect(seen).toEqual([["a"], ["a", "b"]]);
  });

  test("a failed save takes back its batch and the ones queued after it; none was visible", async () => {
    const state = { failNext: 0 };
    const gate = slow(failing(createMemoryDriver(), state));
    const store = await openStore(gate.driver);
    const kept = store.mutate((_d, tx) => tx.put("groups", { name: "kept", createdAt: "t" }));
    await gate.saveStarted(1);
    gate.release(1);
    await kept;
    state.failNext = 1;
    const lost = store.mutate((_d, tx) => tx.put("groups", { name: "lost", createdAt: "t" }));
    await gate.saveStarted(2);
    const queued = store.mutate((_d, tx) => tx.put("groups", { name: "queued", createdAt: "t" }));
    expect(store.data.groups.lost).toBeUndefined();
    gate.release(2);
    await expect(lost).rejects.toMatchObject({ code: "unavailable" });
    await expect(queued).rejects.toMatchObject({ code: "unavailable" });
    expect(Object.keys(store.data.groups)).toEqual(["kept"]);
    // The head went back too: the next mutation does not see the lost ones.
    const next = store.mutate((d, tx) => {
      expect(Object.keys(d.groups)).toEqual(["kept"]);
      return tx.put("groups", { name: "next", createdAt: "t" }).modRevision;
    });
    await gate.saveStarted(3);
    gate.release(3);
    expect(await next).toBe(2);
  });

  test("a mutator that throws after a put leaves no trace in the head", async () => {
    const store = await openStore(createMemoryDriver());
    expect(() =>
      store.mutate((_d, tx) => {
        tx.put("groups", { name: "half", createdAt: "t" });
        throw new Error("invalid");
      }),
    ).toThrow("invalid");
    await store.mutate((d) => expect(d.groups.half).toBeUndefined());
  });

  test("commit listeners get the changes each put implies", async () => {
    const store = await openStore(createMemoryDriver());
    const changes: Change[] = [];
    store.onCommit((_r, c) => changes.push(...c));
    await store.mutate((_d, tx) => tx.put("groups", { name: "g", createdAt: "t" }));
    await store.mutate((_d, tx) =>
      tx.put("vms", { name: "v", groups: ["g"], tokens: [], createdAt: "t" }),
    );
    await store.mutate((d, tx) => tx.put("vms", { ...(d.vms.v as VmRecord), tokens: [] }));
    await store.mutate((_d, tx) => tx.delete("vms", "v"));
    expect(changes).toEqual([
      { kind: "group", group: "g", vms: [] },
      { kind: "vm", vm: "v" },
      { kind: "vm", vm: "v" },
      { kind: "token", vm: "v" },
      { kind: "vm", vm: "v" },
      { kind: "token", vm: "v" },
    ]);
  });
});

// --- internal ---

/** A driver whose n-th commit is in flight until `release(n)`; `saveStarted(n)` waits for it. */
function slow(inner: StoreDriver) {
  const started = new Map<number, Deferred>();
  const released = new Map<number, Deferred>();
  const at = (m: Map<number, Deferred>, n: number) => {
    let d = m.get(n);
    if (!d) {
      d = deferred();
      m.set(n, d);
    }
    return d;
  };
  let count = 0;
  const driver: StoreDriver = {
    load: () => inner.load(),
    async commit(set) {
      const n = ++count;
      // Handed over now, as real drivers encode before their first await.
      const saved = inner.commit(set);
      saved.catch(() => {});
      at(started, n).resolve();
      await at(released, n).promise;
      await saved;
    },
    close: () => inner.close(),
  };
  return {
    driver,
    saveStarted: (n: number) => at(started, n).promise,
    release: (n: number) => at(released, n).resolve(),
  };
}

interface Deferred {
  promise: Promise<void>;
  resolve(): void;
}

function deferred(): Deferred {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
}
