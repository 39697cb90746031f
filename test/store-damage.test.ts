/**
 * A corruption table over a real secretsd (issue #8): secrets are written through the real
 * client, then the store's files are damaged as a disk, a crash or an operator would, and the
 * next start is checked. Each case either refuses with one message that names the file (and
 * line), or serves the expected data and names what it dropped; none crashes and none loses
 * an acknowledged write silently. `--repair` then starts and says what it dropped, and every
 * acknowledged write the damage did not touch is still readable.
 */
import { appendFileSync } from "node:fs";
import { copyFile, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { createClient, type VmAuthClient } from "../client/index.js";
import { resolveServerConfig } from "../server/config.js";
import { createDaemon, type Daemon } from "../server/daemon.js";
import { createLogger } from "../server/logger.js";
import { spawnDaemon } from "./helpers/process.js";
import { secretValue, testRoot } from "./helpers/values.js";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});

const tmp = () => mkdtemp(join(testRoot() ?? tmpdir(), "vm-auth-damage-"));
const files = (dir: string) => ({
  store: join(dir, "store.json"),
  wal: join(dir, "store.json.wal"),
  tmp: join(dir, ".store.json.tmp"),
});

interface Running {
  client: VmAuthClient;
  logs: { level: string; msg: string; [k: string]: unknown }[];
  daemon: Daemon;
}

/** Starts secretsd in this process on `dir` (unix socket only); rejects as its start does. */
async function boot(dir: string, repair = false): Promise<Running> {
  const config = resolveServerConfig(
    { dataDir: dir, listen: "off", logLevel: "debug", shutdownGraceMs: 2000, repair },
    {},
  );
  const logs: Running["logs"] = [];
  const log = createLogger({
    level: "debug",
    write: (l) => {
      logs.push(JSON.parse(l));
      appendFileSync(join(dir, "secretsd-test.log"), l);
    },
  });
  const daemon = createDaemon(config, log);
  await daemon.start();
  const client = createClient({ socket: join(dir, "secretsd.sock") });
  cleanup.push(async () => {
    client.close();
    await daemon.stop();
  });
  return { client, logs, daemon };
}

/**
 * Five secrets s1..s5 written through the client (revisions 2..6, after the keyring at 1),
 * and a copy of the data dir taken after the last acknowledgement: what a kill -9 leaves. Its
 * snapshot holds the keyring; its journal a header and one line per secret (lines 2..6).
 */
async function seeded(): Promise<{ dir: string; values: Record<string, string> }> {
  const live = await tmp();
  const d = await boot(live);
  const values: Record<string, string> = {};
  for (let i = 1; i <= 5; i++) {
    values[`s${i}`] = secretValue();
    await d.client.secrets.createSecret({ name: `s${i}`, value: values[`s${i}`] as string });
  }
  // The first append makes the snapshot require its journal, after the ack: wait for it.
  for (let i = 0; i < 200; i++) {
    if (JSON.parse(await readFile(files(live).store, "utf8")).journal.required) break;
    await new Promise((r) => setTimeout(r, 10));
  }
  const dir = await tmp();
  for (const f of ["master.key", "store.json.wal", "store.json"]) {
    await copyFile(join(live, f), join(dir, f));
  }
  return { dir, values };
}

/** The journal's lines, each with its newline. */
async function lines(wal: string): Promise<string[]> {
  return (await readFile(wal, "utf8")).match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** The byte offset where line `n` (1-based) starts. */
async function lineStart(wal: string, n: number): Promise<number> {
  return (await lines(wal)).slice(0, n - 1).reduce((a, l) => a + Buffer.byteLength(l), 0);
}

/** Flips the low bit of the byte at `at`. */
async function flip(file: string, at: number) {
  const b = await readFile(file);
  b[at] = (b[at] as number) ^ 0x01;
  await writeFile(file, b);
}

/** Which of s1..s5 the daemon serves, checking each value. */
async function served(c: VmAuthClient, values: Record<string, string>): Promise<string[]> {
  const out: string[] = [];
  for (const [name, value] of Object.entries(values)) {
    try {
      expect((await c.secrets.getSecretValue({ name })).value).toBe(value);
      out.push(name);
    } catch (err) {
      expect(err).toMatchObject({ code: "not_found" });
    }
  }
  return out;
}

const warnings = (r: Running) => r.logs.filter((l) => l.level === "warn").map((l) => l.msg);

/** The files as they are, to show that a refusal changed none. */
async function snapshotOf(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const n of (await readdir(dir)).sort()) {
    if (n.startsWith("store.json")) out[n] = (await readFile(join(dir, n))).toString("base64");
  }
  return out;
}

/** Starts without --repair and expects a refusal matching `re`, with every file unchanged. */
async function refused(dir: string, re: RegExp) {
  const before = await snapshotOf(dir);
  await expect(boot(dir)).rejects.toThrow(re);
  expect(await snapshotOf(dir)).toEqual(before);
}

describe("damage in the store's files, over a real secretsd", () => {
  test("a bit flip in store.json: refused naming the file; --repair accepts it", async () => {
    const { dir, values } = await seeded();
    const f = files(dir);
    const text = await readFile(f.store, "latin1");
    // A digit of the keyring's createdAt: the JSON stays valid.
    await flip(f.store, text.indexOf('"createdAt":"') + 14);
    await refused(
      dir,
      new RegExp(
        `^store file ${f.store} is damaged: its checksum does not match its content; refusing to start \\(restore it from a backup, or start with --repair to accept it as it is\\)$`,
      ),
    );
    const r = await boot(dir, true);
    expect(warnings(r)).toEqual([
      expect.stringMatching(
        /^--repair: accepted store file .*store\.json although its checksum does not match; the file as it was is kept as .*store\.json\.damaged-/,
      ),
    ]);
    expect(await served(r.client, values)).toEqual(["s1", "s2", "s3", "s4", "s5"]);
    expect((await r.client.system.getStatus({})).storeWarnings).toEqual(warnings(r));
  });

  test("a bit flip in a middle journal line: refused naming file, line and byte", async () => {
    const { dir, values } = await seeded();
    const f = files(dir);
    const at = await lineStart(f.wal, 4);
    await flip(f.wal, at + 30);
    await refused(
      dir,
      new RegExp(
        `^store journal ${f.wal} is damaged at line 4 \\(byte ${at}\\): its checksum does not match; refusing to start \\(start with --repair to drop line 4 and the 2 lines after it, revisions 4–6\\)$`,
      ),
    );
    const r = await boot(dir, true);
    expect(warnings(r)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^--repair: dropped lines 4–6 of store journal ${f.wal} from byte ${at} \\(line 4: its checksum does not match; revisions 4–6 lost, not to be reused\\); the journal as it was is kept as ${f.wal}\\.damaged-`,
        ),
      ),
    ]);
    // The acknowledged writes before the damage are all there.
    expect(await served(r.client, values)).toEqual(["s1", "s2"]);
    // What --repair did is final: a plain start serves the same, with no warning.
    await r.daemon.stop();
    const again = await boot(dir);
    expect(warnings(again)).toEqual([]);
    expect(await served(again.client, values)).toEqual(["s1", "s2"]);
    await again.client.secrets.createSecret({ name: "after", value: secretValue() });
    expect((await again.client.system.getStatus({})).revision).toBe(7n);
  });

  test("a bit flip in the last complete journal line: refused, not taken for a torn write", async () => {
    const { dir, values } = await seeded();
    const f = files(dir);
    const at = await lineStart(f.wal, 6);
    await flip(f.wal, at + 30);
    await refused(dir, new RegExp(`^store journal ${f.wal} is damaged at line 6 \\(byte ${at}\\)`));
    const r = await boot(dir, true);
    expect(warnings(r)).toEqual([expect.stringMatching(/^--repair: dropped line 6 of store/)]);
    expect(await served(r.client, values)).toEqual(["s1", "s2", "s3", "s4"]);
  });

  test("a last line with only its newline missing: served whole, the newline restored", async () => {
    const { dir, values } = await seeded();
    const f = files(dir);
    const whole = await readFile(f.wal, "utf8");
    await writeFile(f.wal, whole.slice(0, -1));
    const r = await boot(dir);
    expect(warnings(r)).toEqual([]);
    expect(r.logs).toContainEqual(
      expect.objectContaining({
        level: "info",
        msg: expect.stringMatching(/restored the newline/),
      }),
    );
    expect(await served(r.client, values)).toEqual(["s1", "s2", "s3", "s4", "s5"]);
    expect(await readFile(f.wal, "utf8")).toBe(whole);
  });

  test("a journal cut in the middle of its last line: served without it, the cut named", async () => {
    const { dir, values } = await seeded();
    const f = files(dir);
    const at = await lineStart(f.wal, 6);
    const whole = await readFile(f.wal);
    await writeFile(f.wal, whole.subarray(0, at + 40));
    const r = await boot(dir);
    expect(warnings(r)).toEqual([
      `store journal ${f.wal}: dropped incomplete last line 6 at byte ${at} (40 bytes): a write cut short by a crash, never acknowledged; or a journal cut short, losing revision 6 and any after it`,
    ]);
    expect((await r.client.system.getStatus({})).storeWarnings).toEqual(warnings(r));
    expect(await served(r.client, values)).toEqual(["s1", "s2", "s3", "s4"]);
  });

  test("a deleted journal: refused naming both files; --repair starts from the snapshot", async () => {
    const { dir, values } = await seeded();
    const f = files(dir);
    await rm(f.wal);
    await refused(
      dir,
      new RegExp(
        `^store journal ${f.wal} is missing, but snapshot ${f.store} \\(revision 1\\) expects journal [0-9a-f]{16}: the changes after revision 1 are in it; refusing to start \\(put it back, or start with --repair to start from the snapshot alone\\)$`,
      ),
    );
    const r = await boot(dir, true);
    expect(warnings(r)).toEqual([
      `--repair: store journal ${f.wal} is missing; started from snapshot ${f.store} at revision 1; changes after revision 1, if any, are lost`,
    ]);
    expect(await served(r.client, values)).toEqual([]);
  });

  test("a journal from another snapshot: refused naming both; --repair sets it aside", async () => {
    const one = await seeded();
    const two = await seeded();
    const f = files(one.dir);
    const foreign = await readFile(files(two.dir).wal);
    await writeFile(f.wal, foreign);
    await refused(
      one.dir,
      new RegExp(
        `^store journal ${f.wal} \\(journal [0-9a-f]{16}, after revision 1\\) does not belong to snapshot ${f.store} \\(revision 1, journal [0-9a-f]{16}\\); refusing to start`,
      ),
    );
    const r = await boot(one.dir, true);
    const [warn] = warnings(r);
    expect(warn).toMatch(
      new RegExp(
        `^--repair: set aside store journal ${f.wal}, which does not belong to snapshot ${f.store}, as ${f.wal}\\.damaged-\\S+; started from the snapshot at revision 1$`,
      ),
    );
    const kept = warn?.split(" as ")[1]?.split(";")[0] as string;
    expect(await readFile(kept)).toEqual(foreign);
    expect(await served(r.client, one.values)).toEqual([]);
    expect(await served(r.client, two.values)).toEqual([]);
  });

  test("an older store.json restored alone next to the journal: refused", async () => {
    const { dir } = await seeded();
    const f = files(dir);
    const older = await readFile(f.store);
    const r = await boot(dir);
    await r.client.secrets.createSecret({ name: "later", value: secretValue() });
    await r.daemon.stop();
    const again = await boot(dir);
    await again.client.secrets.createSecret({ name: "later2", value: secretValue() });
    const image = await tmp();
    for (const n of ["master.key", "store.json.wal", "store.json"]) {
      await copyFile(join(dir, n), join(image, n));
    }
    await writeFile(files(image).store, older);
    await refused(image, /does not belong to snapshot/);
  });

  test("a leftover .store.json.tmp: removed with an info line, the store served whole", async () => {
    const { dir, values } = await seeded();
    const f = files(dir);
    const partial = (await readFile(f.store)).subarray(0, 100);
    await writeFile(f.tmp, partial);
    const r = await boot(dir);
    expect(r.logs).toContainEqual(
      expect.objectContaining({ level: "info", msg: "removed a leftover temp file", file: f.tmp }),
    );
    expect(await readdir(dir)).not.toContain(".store.json.tmp");
    expect(await served(r.client, values)).toEqual(["s1", "s2", "s3", "s4", "s5"]);
  });
});

describe("the built secretsd after a kill -9", () => {
  test("refuses with one line and exit 1; --repair starts and says what it dropped", async () => {
    const dir = await tmp();
    const p = await spawnDaemon(dir, ["--listen", "off"]);
    const c = createClient({ socket: join(dir, "secretsd.sock") });
    const values: Record<string, string> = {};
    for (let i = 1; i <= 5; i++) {
      values[`s${i}`] = secretValue();
      await c.secrets.createSecret({ name: `s${i}`, value: values[`s${i}`] as string });
    }
    p.child.kill("SIGKILL");
    await p.exited;
    c.close();
    const f = files(dir);
    // Whichever line s3 is on (the snapshot may hold some), damage it.
    const n = (await lines(f.wal)).findIndex((l) => l.includes('"s3":')) + 1;
    expect(n).toBeGreaterThan(1);
    const at = await lineStart(f.wal, n);
    await flip(f.wal, at + 30);
    const err = await spawnDaemon(dir, ["--listen", "off"]).then(
      () => undefined,
      (e: Error) => e.message,
    );
    expect(err).toMatch(
      new RegExp(
        `^secretsd exited \\(1\\): secretsd: store journal ${f.wal} is damaged at line ${n} \\(byte ${at}\\): its checksum does not match; refusing to start \\(start with --repair to drop line ${n}[^\\n]*\\)$`,
      ),
    );
    const r = await spawnDaemon(dir, ["--listen", "off", "--repair"]);
    const rc = createClient({ socket: join(dir, "secretsd.sock") });
    cleanup.push(async () => {
      rc.close();
      r.child.kill("SIGTERM");
      await r.exited;
    });
    expect(await served(rc, values)).toEqual(["s1", "s2"]);
    r.child.kill("SIGTERM");
    const { code, stderr } = await r.exited;
    expect(code).toBe(0);
    const warn = stderr
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as { level: string; msg: string })
      .filter((l) => l.level === "warn");
    expect(warn.map((w) => w.msg)).toEqual([
      expect.stringMatching(
        new RegExp(`^--repair: dropped lines ${n}–\\d+ of store journal ${f.wal} from byte ${at}`),
      ),
    ]);
  });
});
