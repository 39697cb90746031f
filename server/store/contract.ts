/**
 * The driver conformance suite (STYLE.md §10, issue #9): what every StoreDriver must do,
 * called from each driver's test file with `testStoreDriver(name, factory)`. A capability a
 * driver lacks (the memory driver has no files, so no torn tail) is declared by its factory
 * with the reason, and its tests show as skipped with that reason; a factory that neither
 * declares a lack nor provides what the test needs fails. (Past ~250 lines on purpose: the
 * contract reads top to bottom in one place; its fixtures are in contract-fixtures.ts.)
 */
import { describe, expect, test } from "vitest";
import type { ChildDriver } from "./contract-fixtures.js";
import {
  admin,
  group,
  keyring,
  plain,
  secret,
  set,
  vm,
  writeThenKill,
} from "./contract-fixtures.js";
import { openStore } from "./store.js";
import type { StoreData, StoreDriver } from "./types.js";

/** Storage for one test, and drivers over it. */
export interface DriverHarness {
  /** A new driver over this storage; a second one is a restart: it loads what is durable. */
  open(): StoreDriver;
  /** Waits for the work `driver` left running after its acks (a compaction). */
  settled?(driver: StoreDriver): Promise<void>;
  /** Leaves what a crash in the middle of writing the next commit would (capability tornTail). */
  tearNextWrite?(): Promise<void>;
  /** The bytes the storage takes (capability compaction). */
  footprint?(): Promise<number>;
  /** How a child process opens a driver over this storage (capability killMidWrite). */
  child?: ChildDriver;
  /** Removes the storage. */
  cleanup(): Promise<void>;
}

/** What a driver may lack, each with the harness member its tests need. */
export type DriverCapability = "tornTail" | "compaction" | "killMidWrite";

/** What a driver's test file hands the suite. */
export interface DriverFactory {
  /** New, empty storage (compacting early, if the driver compacts: the test is short). */
  create(): Promise<DriverHarness>;
  /** What the driver cannot do, and why: those tests are listed as skipped with the reason. */
  lacks?: Partial<Record<DriverCapability, string>>;
}

/** Registers the conformance tests for the driver `name`. */
export function testStoreDriver(name: string, factory: DriverFactory): void {
  const lacks = factory.lacks ?? {};
  /** A test run on fresh storage, cleaned up after. */
  const withStorage = (title: string, body: (h: DriverHarness) => Promise<void>, ms?: number) =>
    test(
      title,
      async () => {
        const h = await factory.create();
        try {
          await body(h);
        } finally {
          await h.cleanup();
        }
      },
      ms,
    );
  /** A test that needs `cap`: skipped, titled with the reason, when the factory lacks it. */
  const needs = (
    cap: DriverCapability,
    title: string,
    body: (h: DriverHarness) => Promise<void>,
    ms?: number,
  ) => {
    const why = lacks[cap];
    if (why !== undefined) test.skip(`${title} (${name} lacks ${cap}: ${why})`, () => {});
    else withStorage(title, body, ms);
  };

  describe(`store driver contract: ${name}`, () => {
    withStorage("loads nothing from new storage", async (h) => {
      expect(await h.open().load()).toBeUndefined();
    });

    withStorage("put: every section and the keyring load back after a restart", async (h) => {
      const d = await loaded(h);
      await d.commit(
        set(1, [group("g", 1), secret("s", 1), vm("v", 1), admin("ci", 1)], [], keyring("k1")),
      );
      await d.commit(set(2, [secret("s", 2, "changed")]));
      await d.close();
      const doc = await h.open().load();
      expect(doc?.revision).toBe(2);
      expect(doc?.keyring?.masterKeyId).toBe("k1");
      expect(plain(doc?.secrets)).toEqual({ s: plain(secret("s", 2, "changed").record) });
      expect(Object.keys(doc?.groups ?? {})).toEqual(["g"]);
      expect(Object.keys(doc?.vms ?? {})).toEqual(["v"]);
      expect(Object.keys(doc?.adminTokens ?? {})).toEqual(["ci"]);
    });

    withStorage(
      "delete: removed records stay removed; deleting a missing one is a no-op",
      async (h) => {
        const d = await loaded(h);
        await d.commit(
          set(1, [group("a", 1), group("b", 1), secret("s", 1), vm("v", 1), admin("ci", 1)]),
        );
        const gone = ["groups", "secrets", "vms", "adminTokens"] as const;
        const names = { groups: "a", secrets: "s", vms: "v", adminTokens: "ci" };
        await d.commit(
          set(
            2,
            [],
            gone.map((section) => ({ section, name: names[section] })),
          ),
        );
        await d.commit(set(3, [], [{ section: "secrets", name: "never" }]));
        await d.close();
        const doc = await h.open().load();
        expect(doc?.revision).toBe(3);
        expect(Object.keys(doc?.groups ?? {})).toEqual(["b"]);
        for (const s of ["secrets", "vms", "adminTokens"] as const) expect(doc?.[s]).toEqual({});
      },
    );

    withStorage(
      "reload: each restart loads every commit; a loaded document is the caller's",
      async (h) => {
        for (let round = 1; round <= 3; round++) {
          const d = await loaded(h);
          await d.commit(set(round, [group(`g${round}`, round)]));
          const doc = (await h.open().load()) as StoreData;
          (doc.groups as Record<string, unknown>).intruder = { name: "intruder" };
          await d.close();
        }
        const doc = await h.open().load();
        expect(Object.keys(doc?.groups ?? {})).toEqual(["g1", "g2", "g3"]);
        expect(doc?.revision).toBe(3);
      },
    );

    withStorage("replay: commits acknowledged and never closed (a crash) load back", async (h) => {
      const d = await loaded(h);
      for (let r = 1; r <= 30; r++) {
        const deletes = r % 5 === 0 ? [{ section: "groups" as const, name: `g${r - 1}` }] : [];
        const k = r % 7 === 0 ? keyring(`k${r}`) : undefined;
        await d.commit(
          set(r, [group(`g${r}`, r), secret(`s${r % 4}`, r), admin(`a${r % 3}`, r)], deletes, k),
        );
      }
      await h.settled?.(d);
      const doc = await h.open().load();
      expect(doc?.revision).toBe(30);
      expect(doc?.keyring?.masterKeyId).toBe("k28");
      expect(Object.keys(doc?.groups ?? {})).toHaveLength(30 - 6);
      expect(doc?.secrets.s2?.modRevision).toBe(30);
      expect(doc?.adminTokens.a0?.modRevision).toBe(30);
      await d.close();
    });

    withStorage(
      "revision order: a set not after the last is refused and changes nothing",
      async (h) => {
        const d = await loaded(h);
        await d.commit(set(1, [group("a", 1)]));
        await d.commit(set(2, [group("b", 2)]));
        for (const r of [2, 1])
          await expect(d.commit(set(r, [group("late", r)]))).rejects.toThrow();
        await d.commit(set(5, [group("c", 5)]));
        await d.close();
        const doc = await h.open().load();
        expect(doc?.revision).toBe(5);
        expect(Object.keys(doc?.groups ?? {})).toEqual(["a", "b", "c"]);
      },
    );

    withStorage("revision order: a burst through the store reloads at its revisions", async (h) => {
      const store = await openStore(h.open());
      const seen: number[] = [];
      store.onCommit((r) => seen.push(r));
      await Promise.all(
        Array.from({ length: 50 }, () =>
          store.mutate((_d, tx) => tx.put("groups", { name: `g${tx.revision}`, createdAt: "t" })),
        ),
      );
      expect(seen).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
      await store.close();
      const doc = await h.open().load();
      expect(doc?.revision).toBe(50);
      for (let r = 1; r <= 50; r++) expect(doc?.groups[`g${r}`]?.modRevision).toBe(r);
    });

    needs(
      "tornTail",
      "torn tail: a write cut short is dropped; acknowledged ones load; writing goes on",
      async (h) => {
        const d = await loaded(h);
        for (let r = 1; r <= 3; r++) await d.commit(set(r, [group(`g${r}`, r)]));
        await h.settled?.(d);
        await required(h.tearNextWrite, "tearNextWrite").call(h);
        const again = await loaded(h);
        expect(Object.keys((await h.open().load())?.groups ?? {})).toEqual(["g1", "g2", "g3"]);
        await again.commit(set(4, [group("g4", 4)]));
        await again.close();
        const doc = await h.open().load();
        expect(Object.keys(doc?.groups ?? {})).toEqual(["g1", "g2", "g3", "g4"]);
        await d.close();
      },
    );

    needs(
      "compaction",
      "compaction: overwrites do not grow the storage; nothing is lost",
      async (h) => {
        const footprint = required(h.footprint, "footprint");
        const d = await loaded(h);
        let written = 0;
        for (let r = 1; r <= 299; r++) {
          const put = secret(`s${r % 5}`, r, "y".repeat(400));
          written += JSON.stringify(put.record).length;
          await d.commit(
            set(
              r,
              [put, group(`g${r % 3}`, r)],
              r % 50 === 49 ? [{ section: "secrets", name: "s0" }] : [],
            ),
          );
          if (r % 100 === 0) expect((await h.open().load())?.revision).toBe(r);
        }
        await h.settled?.(d);
        expect(await footprint.call(h)).toBeLessThan(written / 4);
        await d.close();
        const doc = await h.open().load();
        // The last set (299) deleted s0 and put s4.
        expect(doc?.revision).toBe(299);
        expect(Object.keys(doc?.secrets ?? {}).sort()).toEqual(["s1", "s2", "s3", "s4"]);
        expect(doc?.secrets.s4?.modRevision).toBe(299);
      },
    );

    needs(
      "killMidWrite",
      "kill -9 mid-write: every acknowledged commit reloads, in order",
      async (h) => {
        const child = required(h.child, "child");
        let acked = 0;
        for (let round = 0; round < 3; round++) {
          acked = Math.max(
            acked,
            await writeThenKill(child, acked + 40 + Math.floor(Math.random() * 80)),
          );
          const doc = (await h.open().load()) as StoreData;
          // Every acknowledged revision is there, and nothing after a gap: g1..gR, in order.
          expect(doc.revision).toBeGreaterThanOrEqual(acked);
          const revs = Object.keys(doc.groups)
            .map((g) => Number(g.slice(1)))
            .sort((a, b) => a - b);
          expect(revs).toEqual(Array.from({ length: doc.revision }, (_, i) => i + 1));
          expect(doc.secrets.counter?.description).toBe(String(doc.revision));
          acked = doc.revision;
        }
      },
      60_000,
    );
  });
}

// --- internal ---

const loaded = async (h: DriverHarness) => {
  const d = h.open();
  await d.load();
  return d;
};

function required<T>(member: T | undefined, what: string): T {
  if (member === undefined)
    throw new Error(`the harness neither provides ${what} nor declares the capability lacking`);
  return member;
}
