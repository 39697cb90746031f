import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { readIfExists } from "../common/fs.js";
import { writeFileAtomic } from "./sink.js";

const dir = mkdtempSync(join(tmpdir(), "shim-sink-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const mode = (p: string) => statSync(p).mode & 0o7777;

describe("writeFileAtomic", () => {
  it("creates missing parents with dirMode exactly and the file 0600, whatever the umask", async () => {
    const old = process.umask(0);
    try {
      const f = join(dir, "a/b/c/env");
      const r = await writeFileAtomic(f, "X=1\n", { dirMode: 0o700 });
      expect(r).toEqual({ changed: true, previous: undefined });
      expect(readFileSync(f, "utf8")).toBe("X=1\n");
      expect(mode(f)).toBe(0o600);
      for (const d of ["a", "a/b", "a/b/c"]) expect(mode(join(dir, d))).toBe(0o700);
    } finally {
      process.umask(old);
    }
    const old2 = process.umask(0o077);
    try {
      const f = join(dir, "envd/vm-auth.conf");
      await writeFileAtomic(f, "X=1\n", { dirMode: 0o755 });
      expect(mode(join(dir, "envd"))).toBe(0o755);
      expect(mode(f)).toBe(0o600);
    } finally {
      process.umask(old2);
    }
  });

  it("leaves an existing parent's mode alone", async () => {
    const d = join(dir, "existing");
    mkdirSync(d, { mode: 0o755 });
    await writeFileAtomic(join(d, "f"), "x", { dirMode: 0o700 });
    expect(mode(d)).toBe(0o755);
  });

  it("is a no-op when the bytes are the same: same inode, same mtime; fixes only the mode", async () => {
    const f = join(dir, "same");
    await writeFileAtomic(f, "A=1\n");
    const before = statSync(f);
    await new Promise((r) => setTimeout(r, 20));
    const r = await writeFileAtomic(f, Buffer.from("A=1\n"));
    expect(r.changed).toBe(false);
    expect(r.previous?.toString()).toBe("A=1\n");
    const after = statSync(f);
    expect(after.ino).toBe(before.ino);
    expect(after.mtimeMs).toBe(before.mtimeMs);
    // Someone loosened the mode: same content, mode put back, still no rewrite.
    const { chmodSync } = await import("node:fs");
    chmodSync(f, 0o644);
    expect((await writeFileAtomic(f, "A=1\n")).changed).toBe(false);
    expect(mode(f)).toBe(0o600);
    expect(statSync(f).ino).toBe(before.ino);
  });

  it("replaces by rename (new inode), returns the previous bytes, leaves no temp file", async () => {
    const f = join(dir, "repl/env");
    await writeFileAtomic(f, "A=1\n");
    const ino = statSync(f).ino;
    const r = await writeFileAtomic(f, "A=2\n");
    expect(r.changed).toBe(true);
    expect(r.previous?.toString()).toBe("A=1\n");
    expect(statSync(f).ino).not.toBe(ino);
    expect(readdirSync(join(dir, "repl"))).toEqual(["env"]);
  });

  it("a reader never sees a partial file", async () => {
    const f = join(dir, "race");
    const a = `A="${"a".repeat(256 * 1024)}"\n`;
    const b = `B="${"b".repeat(300 * 1024)}"\n`;
    await writeFileAtomic(f, a);
    let stop = false;
    let reads = 0;
    const bad: number[] = [];
    const reader = (async () => {
      while (!stop) {
        const s = (await readIfExists(f))?.toString();
        if (s !== a && s !== b) bad.push(s?.length ?? -1);
        reads++;
        await new Promise((r) => setImmediate(r));
      }
    })();
    for (let i = 0; i < 40; i++) await writeFileAtomic(f, i % 2 ? a : b);
    stop = true;
    await reader;
    expect(bad).toEqual([]);
    expect(reads).toBeGreaterThan(10);
  });

  it("on failure the target is unchanged and no temp file is left", async () => {
    const d = join(dir, "fail");
    mkdirSync(join(d, "target"), { recursive: true });
    writeFileSync(join(d, "target/keep"), "x");
    // Renaming a file over a non-empty directory fails (EISDIR / ENOTEMPTY).
    await expect(writeFileAtomic(join(d, "target"), "new")).rejects.toThrow();
    expect(readdirSync(d)).toEqual(["target"]);
    expect(readFileSync(join(d, "target/keep"), "utf8")).toBe("x");
  });

  it("readIfExists: undefined for a missing file, throws for other errors", async () => {
    expect(await readIfExists(join(dir, "missing"))).toBeUndefined();
    await expect(readIfExists(dir)).rejects.toThrow(/EISDIR/);
  });
});
