import { execFileSync } from "node:child_process";
import { promises as fs } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isSecretsError } from "../../errors.js";
import { FETCH_KILL_GRACE_MS, type FetchSpec, fetchValue } from "./fetch.js";

const run = (command: string[], timeoutMs = 5_000, opts = {}) =>
  fetchValue({ command, timeoutMs, intervalMs: 60_000 }, opts);
const sh = (script: string, ...args: string[]) => run(["/bin/sh", "-c", script, ...args]);
const read = (file: string) => fetchValue({ file, timeoutMs: 1_000, intervalMs: 60_000 });

/** The SecretsError `p` rejects with. */
async function failure(p: Promise<unknown>) {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!isSecretsError(err)) throw new Error(`expected a SecretsError, got ${String(err)}`);
  return { code: err.code, message: err.message };
}

/** True while `pid` runs (a zombie, dead but not yet reaped by its new parent, counts as gone). */
async function alive(pid: number): Promise<boolean> {
  try {
    const stat = await fs.readFile(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2)[0] !== "Z";
  } catch {
    return false;
  }
}

let dir: string;
beforeAll(async () => {
  dir = await fs.mkdtemp(join(tmpdir(), "fetch-test-"));
});
afterAll(async () => {
  await fs.rm(dir, { recursive: true, force: true });
});

describe("fetchValue from a command", () => {
  it("returns stdout minus one trailing newline, and nothing else stripped", async () => {
    expect(await run(["/bin/echo", "s3cret"])).toBe("s3cret");
    expect(await sh("printf '  a b  \\n\\n'")).toBe("  a b  \n");
    expect(await sh("printf 'a\\r\\n'")).toBe("a");
    expect(await sh("printf 'a'")).toBe("a");
    expect(await sh("printf 'h\\303\\251'")).toBe("hé");
  });

  it("runs without a shell, in /, with stdin closed and a minimal environment", async () => {
    expect(await run(["/bin/echo", "$HOME", "`id`", ";", "|"])).toBe("$HOME `id` ; |");
    expect(await run(["/bin/pwd"])).toBe("/");
    expect(await failure(run(["/bin/cat"]))).toEqual({
      code: "unavailable",
      message: "fetch: '/bin/cat' printed nothing (stderr: 0 bytes)",
    });
    process.env.FETCH_TEST_LEAK = "daemon-only";
    try {
      const env = await run(["/usr/bin/env"], 5_000, { env: { VAULT_ADDR: "https://vault:8200" } });
      const names = env.split("\n").map((l) => l.slice(0, l.indexOf("=")));
      expect(names.sort()).toEqual(
        ["HOME", "LANG", "PATH", "VAULT_ADDR"].filter((n) => n === "VAULT_ADDR" || process.env[n]),
      );
      expect(env).toContain("VAULT_ADDR=https://vault:8200");
    } finally {
      delete process.env.FETCH_TEST_LEAK;
    }
    // The caller's env may also replace PATH, which finds a bare program name.
    await fs.writeFile(join(dir, "tool"), "#!/bin/sh\necho from-path\n", { mode: 0o755 });
    expect(await run(["tool"], 5_000, { env: { PATH: dir } })).toBe("from-path");
  });

  it("reports a non-zero exit with the stderr size, never stderr or stdout", async () => {
    const e = await failure(sh("echo OUT-s3cret; echo ERR-s3cret >&2; exit 3"));
    expect(e).toEqual({
      code: "unavailable",
      message: "fetch: '/bin/sh' exited with code 3 (stderr: 11 bytes)",
    });
    expect(e.message).not.toMatch(/s3cret/);
    // Nor its arguments, which may hold a token.
    expect((await failure(sh("exit 1", "--token=s3cret"))).message).not.toMatch(/s3cret/);
  });

  it("reports death by a signal", async () => {
    expect((await failure(sh("kill -9 $$"))).message).toBe(
      "fetch: '/bin/sh' was killed by SIGKILL (stderr: 0 bytes)",
    );
  });

  it("kills a command that runs too long, with what it started", async () => {
    const pidFile = join(dir, "pid");
    const t = Date.now();
    const e = await failure(run(["/bin/sh", "-c", 'sleep 5 & echo $! > "$0"; wait', pidFile], 200));
    expect(e).toEqual({ code: "unavailable", message: "fetch: '/bin/sh' timed out after 200 ms" });
    expect(Date.now() - t).toBeLessThan(FETCH_KILL_GRACE_MS);
    expect(await alive(Number(await fs.readFile(pidFile, "utf8")))).toBe(false);
    expect((await failure(run(["/bin/sleep", "5"], 200))).message).toBe(
      "fetch: '/bin/sleep' timed out after 200 ms",
    );
  });

  it("sends SIGKILL when SIGTERM is ignored", async () => {
    const pidFile = join(dir, "pid-term");
    const t = Date.now();
    const script = `trap '' TERM; echo $$ > "$0"; sleep 5; sleep 5`;
    const e = await failure(run(["/bin/sh", "-c", script, pidFile], 200));
    expect(e.message).toBe("fetch: '/bin/sh' timed out after 200 ms");
    expect(Date.now() - t).toBeGreaterThanOrEqual(200 + FETCH_KILL_GRACE_MS - 50);
    expect(await alive(Number(await fs.readFile(pidFile, "utf8")))).toBe(false);
  });

  it("refuses output over 64 KiB and kills the command", async () => {
    expect(await sh("head -c 65536 /dev/zero | tr '\\0' a")).toHaveLength(65536);
    expect(await failure(sh("head -c 70000 /dev/zero | tr '\\0' a"))).toEqual({
      code: "unavailable",
      message: "fetch: '/bin/sh' output over 64 KiB",
    });
    // `yes` never stops on its own.
    expect((await failure(run(["/usr/bin/yes", "s3cret"], 10_000))).message).toBe(
      "fetch: '/usr/bin/yes' output over 64 KiB",
    );
  });

  it("refuses output that is not UTF-8 text without NUL", async () => {
    const notText = "fetch: '/bin/sh' output is not UTF-8 text without NUL";
    expect((await failure(sh("printf 'a\\000b'"))).message).toBe(notText);
    expect((await failure(sh("printf '\\377\\n'"))).message).toBe(notText);
    expect((await failure(sh("printf '\\n'"))).message).toBe(
      "fetch: '/bin/sh' printed nothing (stderr: 0 bytes)",
    );
  });

  it("reports a missing program and one it may not run", async () => {
    expect(await failure(run(["/nonexistent/vault", "kv", "get"]))).toEqual({
      code: "unavailable",
      message: "fetch: '/nonexistent/vault' not found (ENOENT)",
    });
    expect((await failure(run(["no-such-tool-here"]))).message).toBe(
      "fetch: 'no-such-tool-here' not found (ENOENT)",
    );
    const noExec = join(dir, "no-exec");
    await fs.writeFile(noExec, "#!/bin/sh\necho x\n", { mode: 0o644 });
    expect((await failure(run([noExec]))).message).toBe(
      `fetch: '${noExec}' permission denied (EACCES)`,
    );
  });

  it("kills the command when the caller aborts, rejecting with the abort reason", async () => {
    const ac = new AbortController();
    const pidFile = join(dir, "pid-abort");
    const p = run(["/bin/sh", "-c", 'echo $$ > "$0"; exec sleep 5', pidFile], 10_000, {
      signal: ac.signal,
    });
    setTimeout(() => ac.abort(new Error("client went away")), 200);
    await expect(p).rejects.toThrow("client went away");
    expect(await alive(Number(await fs.readFile(pidFile, "utf8")))).toBe(false);
    await expect(run(["/bin/echo"], 1_000, { signal: AbortSignal.abort() })).rejects.toThrow(
      /abort/i,
    );
  });
});

describe("fetchValue from a file", () => {
  it("reads the content minus one trailing newline, each time afresh, through symlinks", async () => {
    const f = join(dir, "token");
    await fs.writeFile(f, "first\n");
    expect(await read(f)).toBe("first");
    await fs.writeFile(f, "second\r\n");
    expect(await read(f)).toBe("second");
    await fs.symlink(f, join(dir, "link"));
    expect(await read(join(dir, "link"))).toBe("second");
  });

  it("reports a missing file, a directory, a FIFO, an empty or big file and non-text", async () => {
    const msg = async (file: string) => (await failure(read(file))).message;
    expect(await failure(read("/run/secrets/x-missing"))).toEqual({
      code: "unavailable",
      message: "fetch: /run/secrets/x-missing: no such file",
    });
    expect(await msg(dir)).toBe(`fetch: ${dir}: not a regular file`);
    const fifo = join(dir, "fifo");
    execFileSync("mkfifo", [fifo]);
    expect(await msg(fifo)).toBe(`fetch: ${fifo}: not a regular file`);
    const f = join(dir, "value");
    await fs.writeFile(f, "");
    expect(await msg(f)).toBe(`fetch: ${f}: is empty`);
    await fs.writeFile(f, "a".repeat(64 * 1024 + 1));
    expect(await msg(f)).toBe(`fetch: ${f}: over 64 KiB`);
    await fs.writeFile(f, "a".repeat(64 * 1024));
    expect(await read(f)).toHaveLength(64 * 1024);
    await fs.writeFile(f, Buffer.from([0x61, 0x00, 0x62]));
    expect(await msg(f)).toBe(`fetch: ${f}: not UTF-8 text without NUL`);
  });
});

describe("fetchValue's spec check", () => {
  const spec = (s: Partial<FetchSpec>) => ({ intervalMs: 1, timeoutMs: 1_000, ...s });
  it.each([
    [{}, "fetch: exactly one of command and file"],
    [{ command: ["/bin/echo"], file: "/x" }, "fetch: exactly one of command and file"],
    [{ command: [] }, "fetch.command: must be a program and its arguments, without NUL"],
    [
      { command: ["/bin/echo", "a\0b"] },
      "fetch.command: must be a program and its arguments, without NUL",
    ],
    [{ command: ["/bin/echo"], timeoutMs: 0 }, "fetch.timeoutMs: must be a positive integer"],
    [{ file: "relative/path" }, "fetch.file: must be an absolute path"],
  ])("refuses %j", async (s, message) => {
    expect(await failure(fetchValue(spec(s)))).toEqual({ code: "invalid_argument", message });
  });
});
