/**
 * The OAuth refresh scheduler's CPU and memory for 10,000 credentials over a simulated day
 * (issue #10): server/oauth/scheduler-sim.ts run in a fresh `node --expose-gc` process per run
 * (bench/children/oauth-scheduler-sim.ts, bundled with the other children), next to a naive
 * design (the same policy with one timer per credential) on the same fake clock, the same
 * workload and the same seed.
 */
import type { SimFigures, SimRequest } from "../children/oauth-scheduler-sim.js";
import type { Ctx, Section, Target } from "../lib/context.js";
import { stopChild } from "../lib/proc.js";
import { fmt, median, ms, range, table } from "../lib/stats.js";
import { spawnWorker } from "../lib/workers.js";

const CREDENTIALS = 10_000;
const DAY = 24 * 3_600_000;
const MiB = 1024 * 1024;

/** Runs the part; every run is a new process, the two designs alternate which goes first. */
export async function benchOAuthScheduler(ctx: Ctx): Promise<Section> {
  const runs = ctx.quick ? 2 : 5;
  const heap: SimFigures[] = [];
  const naive: SimFigures[] = [];
  for (let i = 0; i < runs; i++) {
    const order: SimRequest["design"][] = i % 2 === 0 ? ["heap", "naive"] : ["naive", "heap"];
    for (const design of order) {
      const req: SimRequest = { design, credentials: CREDENTIALS, durationMs: DAY, seed: 1 + i };
      const f = await runChild(ctx, req, `${design}-${i}`);
      (design === "heap" ? heap : naive).push(f);
      ctx.log(
        `oauth-scheduler: run ${i + 1}/${runs} ${design}: cpu ${ms(f.cpuMs)}, wall ${ms(f.wallMs)}, ` +
          `${fmt(f.refreshes)} refreshes, heap +${fmt((f.heapLoaded - f.heapPopulated) / MiB)} MiB`,
      );
    }
  }

  const cpuRatio = median(heap.map((f) => f.cpuMs)) / median(naive.map((f) => f.cpuMs));
  const targets: Target[] = [
    {
      figure: "OAuth scheduler, 10,000 credentials, simulated day: tokens served past expiry",
      value: int(Math.max(...heap.map((f) => f.expiredServed))),
      baseline: `naive: ${int(Math.max(...naive.map((f) => f.expiredServed)))}`,
      ratio: "-",
      target: "0",
      ok: heap.every((f) => f.expiredServed === 0 && f.doubleFlights === 0),
    },
    {
      figure: "OAuth scheduler, simulated day: CPU vs one timer per credential",
      value: ms(median(heap.map((f) => f.cpuMs))),
      baseline: `naive: ${ms(median(naive.map((f) => f.cpuMs)))}`,
      ratio: cpuRatio.toFixed(2),
      target: "≤ 1.00× naive",
      ok: cpuRatio <= 1,
    },
  ];
  const body = [
    `${fmt(CREDENTIALS)} OAuth credentials (lifetimes: 5% 5 min, 30% 1 h, 30% 8 h, 20% 24 h, 15% ` +
      "without expiry; half issued at the same instant, half staggered; 3% with failing " +
      "refreshes) over one simulated day on a fake clock; the simulated provider answers after " +
      "20 ms–2 s (log-uniform) and the coordinator's upsert follows each new token. CPU and wall " +
      "time cover the day only (from `start()`), and include the fake clock and the simulated " +
      "provider, which both designs share. **heap**: the scheduler (one timer for the earliest " +
      "due time over a min-heap, a ready queue ordered by expiry). **naive**: the same policy and " +
      "per-credential state machine with one clock timer per credential, cleared and set on " +
      "every change, and a FIFO queue. Each run is a fresh `node --expose-gc` process; seeds " +
      `1–${runs}, both designs get the same seed; median and min–max over ${runs} runs.`,
    "",
    table(
      [
        "design",
        "CPU, simulated day",
        "wall",
        "heap held by the scheduler (after gc)",
        "peak RSS over populated",
        "refreshes (attempts)",
        "timer sets",
        "scheduler timers live, max",
        "max in flight",
        "expired served",
      ],
      [row("heap", heap), row("naive", naive)],
    ),
    "",
    `CPU ratio (median heap ÷ median naive): **${cpuRatio.toFixed(2)}**. ` +
      '"Heap held by the scheduler" is heap used after a forced gc with the 10,000 credentials ' +
      "loaded and `start()` called, minus the same reading with only the simulated population; " +
      "for the naive design it includes its 10,000 fake-clock timers. The fake clock keeps timers " +
      "in a binary heap, a stand-in for Node's timer lists: the comparison is of the designs, not " +
      "of Node's timer implementation.",
  ].join("\n");
  return { title: "OAuth refresh scheduler", body, targets };
}

// --- internal ---

function row(design: string, fs: SimFigures[]): string[] {
  const mib = (v: number) => fmt(v / MiB, "MiB");
  const med = (pick: (f: SimFigures) => number, f: (v: number) => string) =>
    `${f(median(fs.map(pick)))} (${range(fs.map(pick), f)})`;
  return [
    design,
    med((f) => f.cpuMs, ms),
    med((f) => f.wallMs, ms),
    med((f) => f.heapLoaded - f.heapPopulated, mib),
    med((f) => f.rssPeak - f.rssPopulated, mib),
    `${int(median(fs.map((f) => f.refreshes)))} (${int(median(fs.map((f) => f.attempts)))})`,
    int(median(fs.map((f) => f.timerSets))),
    int(Math.max(...fs.map((f) => f.maxSchedulerTimers))),
    int(Math.max(...fs.map((f) => f.maxInFlight))),
    int(Math.max(...fs.map((f) => f.expiredServed))),
  ];
}

function int(v: number): string {
  return Math.round(v).toLocaleString("en-US");
}

async function runChild(ctx: Ctx, req: SimRequest, tag: string): Promise<SimFigures> {
  // --expose-gc: the child forces collections around its heap readings.
  const peer = spawnWorker("oauth-scheduler-sim", ctx.logDir, tag, ["--expose-gc"]);
  try {
    return await peer.request<SimFigures>({ type: "run", ...req }, 120_000);
  } finally {
    await stopChild(peer.child, 5000);
  }
}
