/**
 * Summarises a V8 .cpuprofile (node --cpu-prof): self time by function and by area, and
 * inclusive time of our own functions, optionally only over time windows (sample times are
 * CLOCK_MONOTONIC µs, the clock nowMs() reads, so windows come straight from the bench).
 * secretsd is bundled without source maps; esbuild's `// server/x.ts` module comments in the
 * bundle map a bundle line back to its source file.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { fmt, table } from "./stats.js";

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  children?: number[];
}
interface Profile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Sampled ms inside the windows. */
  totalMs: number;
  byArea: { area: string; ms: number }[];
  self: { fn: string; where: string; ms: number }[];
  inclusive: { fn: string; where: string; ms: number }[];
}

/** Windows in ms on the nowMs() clock; none = the whole profile. */
export function summarizeProfile(
  path: string,
  windows: { from: number; to: number }[] = [],
): ProfileSummary {
  const p = JSON.parse(readFileSync(path, "utf8")) as Profile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) {
    byId.set(n.id, n);
    for (const c of n.children ?? []) parent.set(c, n.id);
  }
  const sources = new Map<string, (line: number) => string>();
  const texts = new Map<string, string[]>();
  /** For an anonymous function of our code: the start of its source text in the bundle. */
  const snippet = (cf: CallFrame): string => {
    let lines = texts.get(cf.url);
    if (!lines) {
      try {
        lines = readFileSync(
          cf.url.startsWith("file:") ? fileURLToPath(cf.url) : cf.url,
          "utf8",
        ).split("\n");
      } catch {
        lines = [];
      }
      texts.set(cf.url, lines);
    }
    const line = lines[cf.lineNumber] ?? "";
    const raw = line.slice(cf.columnNumber > 60 ? cf.columnNumber : 0).trim();
    const text = raw.length > 70 ? `${raw.slice(0, 70)}…` : raw;
    return text.replace(/`/g, "'").replace(/\|/g, "\\|");
  };
  const keyOf = (cf: CallFrame, w: string): string => {
    const ours = /^(server|proto|shim|client|bench)\//.test(w);
    const name = cf.functionName || (ours ? `(anonymous) ${snippet(cf)}` : "(anonymous)");
    return `${name}\u0000${w}${ours ? `\u0000${cf.lineNumber}` : ""}`;
  };
  const where = (cf: CallFrame): string => {
    if (!cf.url) return "";
    if (cf.url.startsWith("node:")) return cf.url;
    const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(cf.url);
    if (nm) return `npm:${nm[1]}`;
    let map = sources.get(cf.url);
    if (!map) {
      map = moduleMap(cf.url);
      sources.set(cf.url, map);
    }
    return map(cf.lineNumber + 1);
  };
  const inWindow =
    windows.length === 0
      ? () => true
      : (tMs: number) => windows.some((w) => tMs >= w.from && tMs <= w.to);

  const selfMs = new Map<string, number>();
  const areaMs = new Map<string, number>();
  const inclMs = new Map<string, number>();
  let total = 0;
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    t += p.timeDeltas[i] ?? 0;
    const weight = (p.timeDeltas[i + 1] ?? p.timeDeltas[i] ?? 0) / 1000;
    if (!inWindow(t / 1000)) continue;
    const node = byId.get(p.samples[i] as number);
    if (!node) continue;
    total += weight;
    const cf = node.callFrame;
    const w = where(cf);
    const key = keyOf(cf, w);
    selfMs.set(key, (selfMs.get(key) ?? 0) + weight);
    const area = areaOf(cf, w);
    areaMs.set(area, (areaMs.get(area) ?? 0) + weight);
    // Inclusive time of our own code (server/, proto/, shim/): each function once per sample.
    const seen = new Set<string>();
    for (let id: number | undefined = node.id; id !== undefined; id = parent.get(id)) {
      const n = byId.get(id);
      if (!n) break;
      const nw = where(n.callFrame);
      if (!/^(server|proto|shim|client)\//.test(nw)) continue;
      const k = keyOf(n.callFrame, nw);
      if (seen.has(k)) continue;
      seen.add(k);
      inclMs.set(k, (inclMs.get(k) ?? 0) + weight);
    }
  }
  const split = (m: Map<string, number>, n: number) =>
    [...m.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, n)
      .map(([k, ms]) => {
        const [fn = "", w = ""] = k.split("\u0000");
        return { fn, where: w, ms };
      });
  return {
    totalMs: total,
    byArea: [...areaMs.entries()].sort((a, b) => b[1] - a[1]).map(([area, ms]) => ({ area, ms })),
    self: split(selfMs, 15),
    inclusive: split(inclMs, 15),
  };
}

/** `per`: divide by this many units (calls, rotations) for a per-unit column. */
export function profileMarkdown(s: ProfileSummary, per?: { n: number; unit: string }): string {
  const pct = (v: number) => `${((100 * v) / (s.totalMs || 1)).toFixed(1)} %`;
  const unit = per ? [per.unit === "call" ? "µs per call" : `ms per ${per.unit}`] : [];
  const each = (v: number) =>
    per ? [per.unit === "call" ? fmt((1000 * v) / per.n) : fmt(v / per.n)] : [];
  return [
    `Sampled CPU time in the profiled windows: ${fmt(s.totalMs, "ms")}.`,
    "",
    "By area (self time):",
    "",
    table(
      ["area", "ms", ...unit, "share"],
      s.byArea.slice(0, 12).map((a) => [a.area, fmt(a.ms), ...each(a.ms), pct(a.ms)]),
    ),
    "",
    "Top functions by self time:",
    "",
    table(
      ["function", "where", "ms", ...unit, "share"],
      s.self.map((f) => [`\`${f.fn}\``, f.where || "-", fmt(f.ms), ...each(f.ms), pct(f.ms)]),
    ),
    "",
    "Our functions by inclusive time (server/, proto/ in the bundle):",
    "",
    table(
      ["function", "where", "ms", ...unit, "share"],
      s.inclusive.map((f) => [`\`${f.fn}\``, f.where, fmt(f.ms), ...each(f.ms), pct(f.ms)]),
    ),
  ].join("\n");
}

// --- internal ---

function areaOf(cf: CallFrame, w: string): string {
  if (!cf.url) {
    if (cf.functionName === "(garbage collector)") return "GC";
    if (cf.functionName === "(idle)") return "idle";
    if (cf.functionName === "(program)") return "(program: native, not attributed)";
    return `native: ${cf.functionName || "(unnamed builtin)"}`;
  }
  if (w.startsWith("node:")) return `node: ${/^node:(?:internal\/)?([^/]+)/.exec(w)?.[1] ?? w}`;
  if (w.startsWith("npm:")) return w;
  const top = /^(server\/[^/]+|proto|shim|client)/.exec(w)?.[1];
  return top ? `ours: ${top}` : w;
}

/** For a bundle, line → the `// path.ts` module comment above it (esbuild); else the file. */
function moduleMap(url: string): (line: number) => string {
  let text: string;
  try {
    text = readFileSync(url.startsWith("file:") ? fileURLToPath(url) : url, "utf8");
  } catch {
    return () => url;
  }
  const marks: { line: number; file: string }[] = [];
  const lines = text.split("\n");
  for (let i = 0; i < lines.length; i++) {
    const m = /^\/\/ ((?:server|proto|shim|client|bench)\/\S+\.ts)$/.exec(lines[i] as string);
    if (m) marks.push({ line: i + 1, file: m[1] as string });
  }
  if (marks.length === 0) return () => url.replace(/^file:\/\//, "");
  return (line) => {
    let file = url;
    for (const mk of marks) {
      if (mk.line > line) break;
      file = mk.file;
    }
    return `${file}`;
  };
}
