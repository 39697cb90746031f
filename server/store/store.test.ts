import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { createLowdbDriver } from "./drivers/lowdb.js";
import { createMemoryDriver } from "./drivers/memory.js";
import type { Store } from "./store.js";
import { openStore } from "./store.js";
import type { Change, StoreData, StoreDriver, VmRecord } from "./types.js";
import { emptyStore } from "./types.js";

/** Decorator driver that fails the next `n` saves (fault injection without mocks). */
function failing(inner: StoreDriver, state: { failNext: number }): StoreDriver {
  return {
    load: () => inner.load(),
    async save(data) {
      if (state.failNext > 0) {
        state.failNext--;
        throw new Error("disk full");
      }
      return inner.save(data);
    },
    close: () => inner.close(),
  };
}

describe("store", () => {
  test("each mutation bumps the revision and resolves after a save", async () => {
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

  test("a burst is group-committed in far fewer saves, in order", async () => {
    const driver = createMemoryDriver();
    const store = await openStore(driver);
    const seen: number[] = [];
    store.onCommit((rev) => seen.push(rev));
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        store.mutate((_d, tx) => {
          tx.put("groups", { name: `g${i}`, createdAt: "t" });
        }),
      ),
    );
    expect(driver.saves).toBeLessThan(5);
    expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
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

  test("a mutator that throws changes nothing and saves nothing", async () => {
    const driver = createMemoryDriver();
    const store = await openStore(driver);
    expect(() =>
      store.mutate(() => {
        throw new Error("invalid");
      }),
    ).toThrow("invalid");
    expect(store.data.revision).toBe(0);
    expect(driver.saves).toBe(0);
  });

  test("lowdb driver: durable JSON file, no temp file left, reopened intact", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vm-auth-store-"));
    try {
      const file = join(dir, "store.json");
      const store = await openStore(createLowdbDriver({ file }));
      await store.mutate((_d, tx) => {
        tx.put("groups", { name: "a", createdAt: "t" });
      });
      await store.close();
      expect(await readdir(dir)).toEqual(["store.json"]);
      expect(JSON.parse(await readFile(file, "utf8")).schemaVersion).toBe(1);
      const again = await openStore(createLowdbDriver({ file }));
      expect(again.data.groups.a?.name).toBe("a");
      expect(again.data.revision).toBe(1);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("refuses a store written by a newer schema", async () => {
    const driver = createMemoryDriver();
    const doc = emptyStore();
    doc.schemaVersion = 99;
    await driver.save(doc);
    await expect(openStore(driver)).rejects.toThrow(/schema version 99/);
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

  test("records are stamped and frozen: an edit in place throws instead of being lost", async () => {
    const store = await openStore(createMemoryDriver());
    const rec = await store.mutate((_d, tx) =>
      tx.put("vms", { name: "vm1", groups: ["g"], tokens: [], createdAt: "t" }),
    );
    expect(rec.modRevision).toBe(1);
    const vm = store.data.vms.vm1 as VmRecord;
    expect(() => {
      (vm as { groups: string[] }).groups = [];
    }).toThrow(TypeError);
    expect(() => vm.groups.push("x")).toThrow(TypeError);
    // Records loaded from a driver are frozen too.
    const again = await openStore(reopened(store));
    expect(Object.isFrozen(again.data.vms.vm1)).toBe(true);
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

/** A driver whose n-th save is in flight until `release(n)`; `saveStarted(n)` waits for it. */
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
    async save(data, changes) {
      const n = ++count;
      // Encoded now, as real drivers do before their first await.
      const saved = inner.save(structuredClone(data), changes);
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

function reopened(store: Store): StoreDriver {
  const doc = structuredClone(store.data) as StoreData;
  return { load: async () => doc, save: async () => {}, close: async () => {} };
}
