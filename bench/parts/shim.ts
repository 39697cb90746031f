/**
 * Shim footprint: cold start of `node dist/shim.cjs --version` (spawn → exit, median of 20)
 * next to `node -e 0`, and the steady RSS of `shim run` connected to a secretsd with one VM,
 * next to `node -e 0`'s peak RSS. Measured only when dist/shim.cjs really is the shim.
 */
import { existsSync, statSync, writeFileSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { Ctx, Section } from "../lib/context.js";
import { memOf, spawnChild, stopChild, timeRun } from "../lib/proc.js";
import { fakeKey, startSecretsd } from "../lib/secretsd.js";
import { fmt, median, ms, nowMs, range, sleep, table } from "../lib/stats.js";
import { BUILT, SHIM } from "../lib/workers.js";

const node = process.execPath;

export async function benchShim(ctx: Ctx): Promise<Section> {
  const title = "Shim footprint";
  const notMeasured = (reason: string, extra = ""): Section => ({
    title,
    body: `not measured: ${reason}${extra}`,
    targets: [],
  });
  if (!existsSync(SHIM)) return notMeasured(`${BUILT.shim} does not exist`);
  const probe = await timeRun(node, [SHIM, "--version"], 10_000);
  const version = probe.stdout.trim();
  if (probe.code !== 0 || !/\d+\.\d+/.test(version)) {
    return notMeasured(
      `\`node dist/shim.cjs --version\` does not print a version (exit ${probe.code}, stdout ${JSON.stringify(version.slice(0, 80))}, stderr ${JSON.stringify(probe.stderr.trim().slice(0, 120))}): the shim is not built yet`,
    );
  }

  // Cold start, interleaved.
  const n = ctx.quick ? 8 : 20;
  const shimMs: number[] = [];
  const nodeMs: number[] = [];
  for (let i = 0; i < 2; i++) {
    await timeRun(node, [SHIM, "--version"]);
    await timeRun(node, ["-e", "0"]);
  }
  for (let i = 0; i < n; i++) {
    shimMs.push((await timeRun(node, [SHIM, "--version"])).ms);
    nodeMs.push((await timeRun(node, ["-e", "0"])).ms);
  }
  const nodePeak = await nodePeakRss();
  const bundleKiB = statSync(SHIM).size / 1024;

  const lines = [
    `dist/shim.cjs ${fmt(bundleKiB)} KiB, version ${version}. Spawn → exit, ${n} runs each, interleaved.`,
    "",
    table(
      ["program", "median", "min–max"],
      [
        ["`node dist/shim.cjs --version`", ms(median(shimMs)), range(shimMs, ms)],
        ["`node -e 0`", ms(median(nodeMs)), range(nodeMs, ms)],
      ],
    ),
    "",
    `Cold start over bare node: ${ms(median(shimMs) - median(nodeMs))} (${(median(shimMs) / median(nodeMs)).toFixed(2)}×).`,
    "",
  ];

  const help = await timeRun(node, [SHIM, "--help"], 10_000);
  if (!/\brun\b/.test(help.stdout + help.stderr)) {
    lines.push(
      `Steady RSS — not measured: \`node dist/shim.cjs --help\` lists no \`run\` command. ` +
        `\`node -e 0\` peak RSS: ${fmt(nodePeak.kib / 1024)} MiB (${nodePeak.how}).`,
    );
    return { title, body: lines.join("\n"), targets: [] };
  }

  // Steady RSS of `run` against a secretsd with one VM.
  const dir = join(ctx.tmp, "shim");
  await mkdir(join(dir, "out"), { recursive: true, mode: 0o700 });
  const sd = await startSecretsd({
    dataDir: join(dir, "secretsd"),
    logDir: ctx.logDir,
    tag: "shim",
  });
  let shim: ReturnType<typeof spawnChild> | undefined;
  try {
    await sd.admin.secrets.createSecret({ name: "openai", value: fakeKey(51) });
    const { token } = await sd.admin.access.createVm({ name: "shim-vm" });
    const tokenFile = join(dir, "token");
    const outDir = join(dir, "out");
    writeFileSync(tokenFile, token, { mode: 0o600 });
    const args = process.env.BENCH_SHIM_RUN_ARGS
      ? process.env.BENCH_SHIM_RUN_ARGS.replaceAll("{server}", sd.tcp)
          .replaceAll("{token-file}", tokenFile)
          .replaceAll("{out}", join(dir, "out"))
          .split(" ")
      : [
          "run",
          "--server",
          sd.tcp,
          "--token-file",
          tokenFile,
          "--environment-d-file",
          join(outDir, "vm-auth.conf"),
          "--unit-env-file",
          join(outDir, "env"),
          "--last-known-good-file",
          join(outDir, "last-known-good.env"),
          "--state-file",
          join(outDir, "shim-state.json"),
          "--status-file",
          join(outDir, "status.json"),
          "--systemctl",
          "/bin/true",
        ];
    shim = spawnChild(node, [SHIM, ...args], { logFile: join(ctx.logDir, "shim-run.log") });
    const child = shim;
    let exited = false;
    child.once("exit", () => {
      exited = true;
    });
    // Wait until secretsd sees it connected (at most 15 s), then let it idle for 5 s.
    let connected = false;
    const t0 = nowMs();
    while (!exited && !connected && nowMs() - t0 < 15_000) {
      await sleep(250);
      const vms = await sd.admin.access.listVms({});
      connected = vms.vms.find((v) => v.name === "shim-vm")?.connected ?? false;
    }
    const connectMs = nowMs() - t0;
    await sleep(5000);
    if (exited) {
      lines.push(
        `Steady RSS — not measured: \`node dist/shim.cjs ${args.join(" ")}\` exited (code ${child.exitCode}) ` +
          `within 5 s; see ${join(ctx.logDir, "shim-run.log")}. Set BENCH_SHIM_RUN_ARGS ` +
          "(placeholders {server} {token-file} {out}) to the shim's real flags. " +
          `\`node -e 0\` peak RSS: ${fmt(nodePeak.kib / 1024)} MiB (${nodePeak.how}).`,
      );
    } else {
      const wrote = existsSync(join(outDir, "env"));
      const rss: number[] = [];
      for (let i = 0; i < 5; i++) {
        rss.push(memOf(child.pid as number).rss);
        await sleep(200);
      }
      const m = memOf(child.pid as number);
      lines.push(
        table(
          ["process", "RSS"],
          [
            [
              `shim \`run\`, idle 5 s after connecting (${connected ? `connected after ${fmt(connectMs)} ms` : "NOT connected"}; env file ${wrote ? "written" : "NOT written"})`,
              `${fmt(median(rss) / 1024)} MiB steady (peak ${fmt(m.hwm / 1024)} MiB)`,
            ],
            ["`node -e 0`", `${fmt(nodePeak.kib / 1024)} MiB peak (${nodePeak.how})`],
          ],
        ),
        "",
        `Shim steady RSS over \`node -e 0\` peak: ${fmt((median(rss) - nodePeak.kib) / 1024)} MiB (VmRSS median of 5 readings over 1 s). ` +
          `Command: \`node dist/shim.cjs ${args.join(" ").replaceAll(dir, "$TMP").replaceAll(sd.tcp, "127.0.0.1:$PORT")}\` against a secretsd with one VM and one secret.`,
      );
    }
  } finally {
    if (shim) await stopChild(shim, 5000);
    await sd.stop();
  }
  return { title, body: lines.join("\n"), targets: [] };
}

/** Peak RSS of `node -e 0`: /usr/bin/time -v when present, else the process's own maxRSS. */
async function nodePeakRss(): Promise<{ kib: number; how: string }> {
  if (existsSync("/usr/bin/time")) {
    const v: number[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await timeRun("/usr/bin/time", ["-v", node, "-e", "0"]);
      const kib = Number(/Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr)?.[1]);
      if (Number.isFinite(kib)) v.push(kib);
    }
    if (v.length) return { kib: median(v), how: "`/usr/bin/time -v`, median of 5" };
  }
  const r = await timeRun(node, [
    "-e",
    "process.on('exit',()=>process.stdout.write(String(process.resourceUsage().maxRSS)))",
  ]);
  return { kib: Number(r.stdout), how: "process.resourceUsage().maxRSS at exit" };
}
