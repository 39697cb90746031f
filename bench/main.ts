/**
 * `npm run bench`: runs every part against the built programs (dist/) and writes
 * BENCHMARKS.md. Parts run one after another; inside a part, servers, load generators and
 * watchers are separate processes sharing the machine's cores, as in production.
 *
 *   tsx bench/main.ts [--quick] [--only getenv,store,fanout,shim,oauth-scheduler,oauth-refresh]
 *                     [--ns 100,1000,5000]
 *                     [--no-profile] [--out FILE]
 *
 * --quick gives short runs for trying the bench out (its figures are marked as such).
 */
import { execSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { Ctx, Section } from "./lib/context.js";
import { FD_LIMIT, stopAll } from "./lib/proc.js";
import { fmt, nowMs, table } from "./lib/stats.js";
import { BUILT, bundleChildren, ROOT, snapshotPrograms } from "./lib/workers.js";
import { benchFanout } from "./parts/fanout.js";
import { benchGetEnv } from "./parts/getenv.js";
import { benchOAuthRefresh } from "./parts/oauth-refresh.js";
import { benchOAuthScheduler } from "./parts/oauth-scheduler.js";
import { benchShim } from "./parts/shim.js";
import { benchStore } from "./parts/store.js";

const { values } = parseArgs({
  options: {
    quick: { type: "boolean" },
    only: { type: "string" },
    ns: { type: "string" },
    "no-profile": { type: "boolean" },
    out: { type: "string" },
  },
});
const only = new Set(
  (values.only ?? "getenv,store,fanout,shim,oauth-scheduler,oauth-refresh").split(","),
);
const ns = (values.ns ?? "100,1000,5000").split(",").map(Number);
const out = values.out ?? join(ROOT, "BENCHMARKS.md");

const started = nowMs();
const startedAt = new Date();
const log = (msg: string) =>
  process.stderr.write(`[bench ${((nowMs() - started) / 1000).toFixed(1).padStart(6)} s] ${msg}\n`);

async function main() {
  if (!existsSync(BUILT.secretsd)) {
    throw new Error(`${BUILT.secretsd} is missing: run npm run build first`);
  }
  await snapshotPrograms();
  const tmp = mkdtempSync(join(tmpdir(), "vmauth-bench-"));
  const shm = shmDir();
  const runDir = join(ROOT, ".bench-tmp", "run");
  rmSync(runDir, { recursive: true, force: true });
  const ctx: Ctx = {
    tmp,
    shm,
    logDir: join(runDir, "logs"),
    profDir: join(runDir, "profiles"),
    quick: values.quick === true,
    profile: values["no-profile"] !== true,
    log,
  };
  await mkdir(ctx.logDir, { recursive: true });
  await mkdir(ctx.profDir, { recursive: true });
  log(`bundling bench children; temp ${tmp}, tmpfs ${shm}, logs ${ctx.logDir}`);
  await bundleChildren();
  const load0 = loadavg();

  const parts: [string, () => Promise<Section>, string][] = [
    ["getenv", () => benchGetEnv(ctx), "GetEnv throughput"],
    ["store", () => benchStore(ctx), "Store write latency"],
    ["fanout", () => benchFanout(ctx, ns), "Rotation fan-out"],
    ["shim", () => benchShim(ctx), "Shim footprint"],
    ["oauth-scheduler", () => benchOAuthScheduler(ctx), "OAuth refresh scheduler"],
    // Issue #10 asks for 100 and 1,000 VMs.
    [
      "oauth-refresh",
      () =>
        benchOAuthRefresh(
          ctx,
          ns.filter((n) => n <= 1000),
        ),
      "OAuth refresh fan-out",
    ],
  ];
  const sections: (Section & { seconds: number })[] = [];
  try {
    for (const [key, run, title] of parts) {
      if (!only.has(key)) continue;
      const t0 = nowMs();
      try {
        sections.push({ ...(await run()), seconds: (nowMs() - t0) / 1000 });
      } catch (err) {
        log(`${key} failed: ${(err as Error).stack}`);
        sections.push({
          title,
          body: `not measured: the bench failed: ${(err as Error).message}`,
          targets: [],
          seconds: (nowMs() - t0) / 1000,
        });
      }
      log(`${key} done in ${fmt((nowMs() - t0) / 1000)} s`);
    }
  } finally {
    await stopAll();
    rmSync(tmp, { recursive: true, force: true });
    rmSync(shm, { recursive: true, force: true });
  }
  const totalS = (nowMs() - started) / 1000;
  writeFileSync(out, report(sections, ctx, totalS, load0));
  log(`wrote ${out} in ${fmt(totalS)} s`);
}

function shmDir(): string {
  const mounts = readFileSync("/proc/mounts", "utf8");
  const isTmpfs = (dir: string) =>
    mounts.split("\n").some((l) => {
      const [, mnt, type] = l.split(" ");
      return mnt === dir && type === "tmpfs";
    });
  if (isTmpfs("/dev/shm")) return mkdtempSync("/dev/shm/vmauth-bench-");
  // No tmpfs at /dev/shm: mount one (root) on a temp dir.
  const dir = mkdtempSync(join(tmpdir(), "vmauth-shm-"));
  execSync(`mount -t tmpfs -o size=512m tmpfs ${dir}`);
  process.on("exit", () => {
    try {
      execSync(`umount ${dir}`);
    } catch {}
  });
  return dir;
}

function report(
  sections: (Section & { seconds: number })[],
  ctx: Ctx,
  totalS: number,
  load0: number[],
): string {
  const sh = (cmd: string) => {
    try {
      return execSync(cmd, { encoding: "utf8" }).trim();
    } catch {
      return "?";
    }
  };
  const rows = sections.flatMap((s) =>
    s.targets.map((t) => [
      t.figure,
      t.value,
      t.baseline,
      t.ratio,
      t.target,
      t.ok ? "PASS" : "**FAIL**",
    ]),
  );
  const etcdVersion = /etcd Version: (\S+)/.exec(sh("etcd --version 2>/dev/null"))?.[1] ?? "?";
  return [
    "# Benchmarks",
    "",
    "Written by `npm run bench` (bench/main.ts); every figure below comes from one run, with its " +
      "baseline measured side by side in the same run on the same machine. Do not edit by hand.",
    ctx.quick
      ? "\n> **--quick run: short windows and few samples; not figures for the record.**"
      : "",
    "",
    "## Machine",
    "",
    table(
      ["", ""],
      [
        ["date", startedAt.toISOString()],
        ["nproc", `${availableParallelism()} (${cpus()[0]?.model ?? "?"})`],
        ["memory", `${fmt(totalmem() / 2 ** 30)} GiB`],
        ["kernel", `Linux ${release()}`],
        ["os", sh("sed -n 's/^PRETTY_NAME=//p' /etc/os-release").replace(/"/g, "")],
        ["node", process.version],
        ["@grpc/grpc-js", pkgVersion("@grpc/grpc-js")],
        ["etcd", etcdVersion],
        ["fd limit (children)", String(FD_LIMIT)],
        [
          "load average",
          `${load0.map((v) => v.toFixed(2)).join(" ")} at start, ${loadavg()
            .map((v) => v.toFixed(2))
            .join(" ")} at end (shared, noisy host)`,
        ],
        [
          "bench duration",
          `${fmt(totalS)} s (${sections.map((s) => `${s.title}: ${fmt(s.seconds)} s`).join(", ")})`,
        ],
      ],
    ),
    "",
    "## Targets",
    "",
    rows.length
      ? table(["figure", "measured", "baseline (same run)", "ratio", "target", "result"], rows)
      : "(none measured)",
    "",
    ...sections.flatMap((s) => [`## ${s.title}`, "", s.body, ""]),
    "## Method",
    "",
    "- Programs under test are the built ones: `dist/bin/secretsd.js` (esbuild bundle; copied to .bench-tmp/bin " +
      "at the start, with dist/shim.cjs, so that a rebuild during the run changes nothing) with its defaults " +
      "(log level info, heartbeat 15 s), a temp `--data-dir` on the real disk, `--socket` in that dir " +
      "(local admin: setup and rotations) and `--listen 127.0.0.1:0` (VMs, bearer tokens). " +
      "The bench's own children (bench/children/*.ts) are bundled the same way into .bench-tmp/ " +
      "and run as plain `node` processes; the coordinator (bench/main.ts) runs under tsx.",
    "- Every server, load generator and watcher is its own process, so the machine's cores are shared " +
      "as in production; only loopback addresses; every child is killed at the end (also on error or ^C).",
    "- Times are CLOCK_MONOTONIC (`process.hrtime`), the same clock in every process; percentiles " +
      "interpolate linearly between closest ranks; with ~20 rounds a p99 is close to the maximum.",
    "- Loops are bounded in count and time; a part that fails is reported as not measured with the reason.",
    "- When a target fails, secretsd is run again under `node --cpu-prof --cpu-prof-dir` with the same " +
      "load, and the samples inside the measured windows are summarised (profiles kept in .bench-tmp/run/profiles).",
    `- Logs of every child: .bench-tmp/run/logs. Command: \`npm run bench\`${ctx.quick ? " -- --quick" : ""}.`,
    "",
  ].join("\n");
}

function pkgVersion(name: string): string {
  try {
    return (
      JSON.parse(readFileSync(join(ROOT, "node_modules", name, "package.json"), "utf8")) as {
        version: string;
      }
    ).version;
  } catch {
    return "?";
  }
}

main().then(
  () => process.exit(0),
  async (err: unknown) => {
    log(`failed: ${(err as Error).stack ?? String(err)}`);
    await stopAll();
    process.exit(1);
  },
);
