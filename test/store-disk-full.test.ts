/**
 * The store on a file system that fills up: a real tmpfs of 256 KiB, mounted for the test
 * (root only; CI runs as root and fails instead of skipping). A write refused by the disk
 * must fail its request and change nothing, in memory or on disk; every acknowledged write
 * must load back; and the store must work again once there is room.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { open, readdir, readFile, rm, stat, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createSnapshotJournalDriver } from "../server/store/drivers/snapshot-journal.js";
import type { StoreView, Tx } from "../server/store/store.js";
import { openStore } from "../server/store/store.js";
import type { StoreData } from "../server/store/types.js";

const inCI = Boolean(process.env.CI);
let dir = "";
let mounted = false;
let why = "";
try {
  dir = mkdtempSync(join(tmpdir(), "vm-auth-full-"));
  execFileSync("mount", ["-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", dir], {
    stdio: "pipe",
  });
  mounted = true;
} catch (err) {
  why = (err as Error).message.split("\n")[0] ?? "mount failed";
}
if (!mounted) {
  console.warn(`disk-full test: ${inCI ? "FAILING (CI requires it)" : "skipped"}: ${why}`);
}

const plain = (d: Readonly<StoreData> | undefined) => JSON.parse(JSON.stringify(d ?? null));
const group =
  (name: string, pad = 0) =>
  (_d: StoreView, tx: Tx) => {
    tx.put("groups", { name, createdAt: `t${"x".repeat(pad)}` });
  };

/** Fills the file system up to about `leave` free bytes. */
async function fill(file: string, leave: number) {
  const fh = await open(file, "w");
  try {
    const chunk = Buffer.alloc(4096, 0x61);
    for (;;) {
      const { bavail, bsize } = await statfs(dir);
      if (bavail * bsize <= leave) break;
      await fh.write(chunk);
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
  } finally {
    await fh.close();
  }
}

describe.skipIf(!mounted && !inCI)("store on a full disk", () => {
  beforeAll(() => {
    if (!mounted) throw new Error(`cannot mount a tmpfs: ${why}`);
  });
  afterAll(() => {
    // Lazily: a failed test may leave the store's journal open.
    if (mounted) execFileSync("umount", ["-l", dir]);
    rmSync(dir, { recursive: true, force: true });
  });

  test("a write the disk refuses fails, changes nothing, loses nothing; room again, it works", async () => {
    const file = join(dir, "store.json");
    const store = await openStore(createSnapshotJournalDriver({ file }));
    for (const g of ["a", "b", "c"]) await store.mutate(group(g));
    const acked = plain(store.data);

    // Leave less room than the next entry needs: the append is cut short by ENOSPC.
    const filler = join(dir, "filler");
    await fill(filler, 4096);
    const walBefore = await readFile(`${file}.wal`);
    await expect(store.mutate(group("big", 40_000))).rejects.toMatchObject({
      code: "unavailable",
    });
    expect(plain(store.data)).toEqual(acked);
    // Nothing of the refused entry is left in the journal, not even a torn piece.
    expect(await readFile(`${file}.wal`)).toEqual(walBefore);
    expect(plain(await createSnapshotJournalDriver({ file }).load())).toEqual(acked);

    await rm(filler);
    await store.mutate(group("d"));
    const reloaded = await createSnapshotJournalDriver({ file }).load();
    expect(Object.keys(reloaded?.groups ?? {})).toEqual(["a", "b", "c", "d"]);
    await store.close();
    expect((await stat(`${file}.wal`)).size).toBe(0);
  });

  test("a snapshot rewrite the disk refuses loses nothing and leaves no temp file", async () => {
    const file = join(dir, "store2.json");
    const store = await openStore(createSnapshotJournalDriver({ file }));
    for (const g of ["a", "b", "c"]) await store.mutate(group(g, 2000));
    const acked = plain(store.data);
    const filler = join(dir, "filler2");
    await fill(filler, 0);
    // Closing compacts: the new snapshot does not fit.
    await expect(store.close()).rejects.toMatchObject({ code: "ENOSPC" });
    expect((await readdir(dir)).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    await rm(filler);
    expect(plain(await createSnapshotJournalDriver({ file }).load())).toEqual(acked);
  });
});
