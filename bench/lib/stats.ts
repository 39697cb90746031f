/** Small statistics and formatting helpers for the bench. */

/** Milliseconds on CLOCK_MONOTONIC, which every process on the machine shares (libuv uv_hrtime). */
export function nowMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Percentile with linear interpolation between closest ranks (R type 7); NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  return percentileSorted(s, p);
}

function percentileSorted(s: readonly number[], p: number): number {
  if (s.length === 0) return Number.NaN;
  const h = (s.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  const a = s[lo] as number;
  const b = s[hi] as number;
  return a + (b - a) * (h - lo);
}

export const median = (v: readonly number[]) => percentile(v, 0.5);

export interface Summary {
  n: number;
  min: number;
  p25: number;
  p50: number;
  p75: number;
  p99: number;
  max: number;
}

export function summarize(values: readonly number[]): Summary {
  const s = [...values].sort((a, b) => a - b);
  return {
    n: s.length,
    min: s[0] ?? Number.NaN,
    p25: percentileSorted(s, 0.25),
    p50: percentileSorted(s, 0.5),
    p75: percentileSorted(s, 0.75),
    p99: percentileSorted(s, 0.99),
    max: s[s.length - 1] ?? Number.NaN,
  };
}

/** A number with a sensible number of significant digits. */
export function fmt(v: number, unit = ""): string {
  if (!Number.isFinite(v)) return "n/a";
  const a = Math.abs(v);
  const s =
    a >= 1000
      ? Math.round(v).toLocaleString("en-US")
      : a >= 100
        ? v.toFixed(0)
        : a >= 10
          ? v.toFixed(1)
          : a >= 1
            ? v.toFixed(2)
            : v.toFixed(3);
  return unit ? `${s} ${unit}` : s;
}

export const ms = (v: number) => fmt(v, "ms");

/** "min–max" of a list. */
export function range(values: readonly number[], f: (v: number) => string = (v) => fmt(v)): string {
  if (values.length === 0) return "n/a";
  return `${f(Math.min(...values))}–${f(Math.max(...values))}`;
}

export const pass = (ok: boolean) => (ok ? "**PASS**" : "**FAIL**");

/** A Markdown table. */
export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}
