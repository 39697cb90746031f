import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, test } from "vitest";
import { createLowdbDriver } from "./drivers/lowdb.js";
import { createMemoryDriver } from "./drivers/memory.js";
import { openStore } from "./store.js";
import type { StoreDriver } from "./types.js";

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
    const r = await store.mutate((d, tx) => {
      d.groups.a = { name: "a", createdAt: "t" };
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
        store.mutate((d) => {
          d.groups[`g${i}`] = { name: `g${i}`, createdAt: "t" };
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
      await store.mutate((d) => {
        d.groups[`g${i}`] = { name: `g${i}`, createdAt: "t" };
      });
    }
    expect(store.data.revision).toBe(100);
  });

  test("a failed save fails its mutations and rolls back to the durable state", async () => {
    const state = { failNext: 0 };
    const store = await openStore(failing(createMemoryDriver(), state));
    await store.mutate((d) => {
      d.groups.kept = { name: "kept", createdAt: "t" };
    });
    state.failNext = 1;
    await expect(
      store.mutate((d) => {
        d.groups.lost = { name: "lost", createdAt: "t" };
      }),
    ).rejects.toMatchObject({ code: "unavailable" });
    expect(store.data.groups.lost).toBeUndefined();
    expect(store.data.groups.kept).toBeDefined();
    expect(store.data.revision).toBe(1);
    await store.mutate((d) => {
      d.groups.after = { name: "after", createdAt: "t" };
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
      await store.mutate((d) => {
        d.groups.a = { name: "a", createdAt: "t" };
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
    const store = await openStore(driver);
    await store.mutate((d) => {
      d.schemaVersion = 99;
    });
    await expect(openStore(driver)).rejects.toThrow(/schema version 99/);
  });
});
