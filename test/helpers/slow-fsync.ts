/**
 * The fault-injection library of the crash tests: test/fixtures/slow-fsync.c compiled into a
 * temp dir, to be LD_PRELOADed into a built secretsd (SLOW_FSYNC_MS / SLOW_FDATASYNC_MS make
 * each call sleep first). Without a C compiler the tests that need it skip, and say why,
 * except under CI=true, where they fail.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const FIXTURE = resolve(import.meta.dirname, "../fixtures/slow-fsync.c");

export interface SlowFsync {
  /** The library's path, or "" when it could not be built. */
  preload: string;
  /** Why it could not be built. */
  why: string;
  /** The temp dir it lives in, removed by `remove`: the test may keep other scratch files there. */
  dir: string;
  /** Under CI=true a missing library fails the tests instead of skipping them. */
  required: boolean;
  remove(): void;
}

/** Compiles the library once per test file; `label` names the tests in the warning. */
export function buildSlowFsync(label: string): SlowFsync {
  const work = mkdtempSync(join(tmpdir(), "vm-auth-slow-fsync-"));
  const required = process.env.CI === "true";
  let preload = join(work, "slow-fsync.so");
  let why = "";
  try {
    execFileSync("cc", ["-shared", "-fPIC", "-O2", "-o", preload, FIXTURE, "-ldl"], {
      stdio: "pipe",
    });
  } catch (err) {
    preload = "";
    why = (err as Error).message.split("\n")[0] ?? "cc failed";
    console.warn(`${label}: ${required ? "FAILING (CI requires them)" : "skipped"}: ${why}`);
  }
  return {
    preload,
    why,
    dir: work,
    required,
    remove: () => rmSync(work, { recursive: true, force: true }),
  };
}
