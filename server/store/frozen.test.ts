/**
 * An edit outside the transaction API fails (issue #9): a record changed in place, or put
 * into a section by assignment, would be acknowledged, look right in memory and be gone after
 * a restart. Every way a record reaches a caller hands it out frozen: from `store.data`, from
 * the head a mutator gets, and as loaded from disk (the snapshot and the journal's replay).
 */
import { copyFile, mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { createMemoryDriver } from "./drivers/memory.js";
import { createSnapshotJournalDriver } from "./drivers/snapshot-journal.js";
import type { StoreView } from "./store.js";
import { openStore } from "./store.js";
import type { SecretRecord, StoreData } from "./types.js";

const secret = (name: string): Omit<SecretRecord, "modRevision"> => ({
  name,
  env: name.toUpperCase(),
  scope: "global",
  kind: "static",
  provider: "",
  description: "",
  labels: { team: "a" },
  currentVersion: 1,
  versions: [{ version: 1, ciphertext: "c1", createdAt: "t", createdBy: "local" }],
  createdAt: "t",
  updatedAt: "t",
});

/** Every in-place edit of secret `name` in `doc`: each must throw a TypeError. */
function expectEditsThrow(doc: StoreView, name: string) {
  const rec = doc.secrets[name] as SecretRecord;
  expect(rec).toBeDefined();
  const edits: (() => void)[] = [
    () => {
      (rec as { env: string }).env = "OTHER";
    },
    () => {
      (rec as { modRevision: number }).modRevision++;
    },
    () => {
      (rec.labels as Record<string, string>).team = "b";
    },
    () => rec.versions.push({ version: 2, ciphertext: "c2", createdAt: "t", createdBy: "x" }),
    () => {
      (rec.versions[0] as { ciphertext: string }).ciphertext = "moved";
    },
    () => {
      delete (rec as { description?: string }).description;
    },
  ];
  for (const edit of edits) expect(edit).toThrow(TypeError);
}

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe("an edit outside the transaction API fails", () => {
  test("records read from store.data, and the keyring", async () => {
    const store = await openStore(createMemoryDriver());
    const put = await store.mutate((_d, tx) => {
      tx.setKeyring({ masterKeyId: "m", activeTerm: 1, terms: [], tokenKey: "k" });
      return tx.put("secrets", secret("a"));
    });
    expect(Object.isFrozen(put)).toBe(true);
    expectEditsThrow(store.data, "a");
    expect(() => {
      (store.data.keyring as { masterKeyId: string }).masterKeyId = "x";
    }).toThrow(TypeError);
    expect(store.data.secrets.a?.env).toBe("A");
  });

  test("records and sections of the head inside a mutator; nothing is committed", async () => {
    const driver = createMemoryDriver();
    const store = await openStore(driver);
    await store.mutate((_d, tx) => tx.put("secrets", secret("a")));
    const before = JSON.stringify(store.data);
    const attempts: ((head: StoreView) => void)[] = [
      (head) => expectEditsThrow(head, "a"),
      // A record put by assignment instead of tx.put: no revision, no change set.
      (head) => {
        (head.secrets as Record<string, SecretRecord>).b = {
          ...(head.secrets.a as SecretRecord),
          name: "b",
        };
      },
      (head) => {
        delete (head.secrets as Record<string, SecretRecord>).a;
      },
      (head) => {
        (head as { revision: number }).revision = 99;
      },
    ];
    for (const attempt of attempts) {
      expect(() =>
        store.mutate((head) => {
          attempt(head);
          // expectEditsThrow returns when every edit threw: fail the mutation like the others.
          throw new TypeError("every edit threw");
        }),
      ).toThrow(TypeError);
    }
    // A record put in this mutation is frozen as soon as tx.put returns it.
    await store.mutate((head, tx) => {
      tx.put("secrets", secret("c"));
      expectEditsThrow(head, "c");
    });
    expect(driver.commits).toBe(2);
    const after = JSON.parse(JSON.stringify(store.data)) as StoreData;
    expect(after.secrets.c?.modRevision).toBe(2);
    delete after.secrets.c;
    expect({ ...after, revision: 1 }).toEqual(JSON.parse(before));
  });

  test("records loaded from disk: from the snapshot and from the journal's replay", async () => {
    const dir = await mkdtemp(join(tmpdir(), "vm-auth-frozen-"));
    dirs.push(dir);
    const file = join(dir, "store.json");
    const first = await openStore(createSnapshotJournalDriver({ file }));
    await first.mutate((_d, tx) => tx.put("secrets", secret("snap")));
    await first.close(); // the snapshot alone is the store
    const driver = createSnapshotJournalDriver({ file });
    const writer = await openStore(driver);
    await writer.mutate((_d, tx) => tx.put("secrets", secret("journaled")));
    await driver.settled();
    // What a kill -9 leaves: `snap` in the snapshot, `journaled` only in the journal.
    const image = join(dir, "image");
    await mkdir(image);
    for (const f of ["store.json.wal", "store.json"]) await copyFile(join(dir, f), join(image, f));
    await writer.close();
    const loaded = await openStore(
      createSnapshotJournalDriver({ file: join(image, "store.json") }),
    );
    for (const name of ["snap", "journaled"]) {
      expectEditsThrow(loaded.data, name);
      expect(() =>
        loaded.mutate((head) => {
          expectEditsThrow(head, name);
          throw new TypeError("every edit threw");
        }),
      ).toThrow(TypeError);
    }
    expect(loaded.data.revision).toBe(2);
    await loaded.close();
  });
});
