/** Secret expiry on the command line: `--expires-at ISO|+30d` in, "in 3d" / "EXPIRED" out. */
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { UsageError } from "./errors.js";
import { iso } from "./output.js";

/** The `--expires-at` option, shared by add, update and rotate. */
export const expiresAtArg = {
  type: "string",
  valueHint: "ISO|+30d",
  description:
    "when the value stops working: an ISO 8601 time (2026-03-31, 2026-03-31T12:00:00Z; local time without an offset) or +N with s, m, h, d or w from now",
} as const;

/**
 * Parses `--expires-at`: an ISO 8601 date or date-time, or `+N` and a unit (s, m, h, d, w)
 * from `now`. Only these forms: `Date.parse` alone would take "March 7" or "2026" too.
 * @throws UsageError naming --expires-at
 */
export function parseExpiresAt(raw: string, now = Date.now()): Timestamp {
  const rel = /^\+([0-9]{1,6})([smhdw])$/.exec(raw);
  if (rel) return timestampFromMs(now + Number(rel[1]) * (UNIT_MS[rel[2] as string] ?? 0));
  if (ISO.test(raw) && realDate(raw)) {
    const ms = Date.parse(raw);
    if (Number.isFinite(ms)) return timestampFromMs(ms);
  }
  throw new UsageError(
    "--expires-at must be an ISO 8601 time (2026-03-31, 2026-03-31T12:00:00Z) or +N with s, m, h, d or w (+30d)",
  );
}

/** What `list` shows of an expiry: "in 3d", "EXPIRED 2h ago", or "" (never). */
export function expiryCell(ts: Timestamp | undefined, now = Date.now()): string {
  const at = iso(ts);
  if (at === null) return "";
  const secs = Math.round((Date.parse(at) - now) / 1000);
  return secs > 0 ? `in ${nearest(secs)}` : `EXPIRED ${nearest(-secs)} ago`;
}

// --- internal ---

/**
 * The nearest whole unit, not the floor: `--expires-at +30d` listed a few seconds later (or
 * after a slow CLI start) says "in 30d", not "in 29d".
 */
function nearest(secs: number): string {
  for (const [unit, size] of UNITS) if (secs >= size) return `${Math.round(secs / size)}${unit}`;
  return `${secs}s`;
}

const UNITS = [
  ["d", 86_400],
  ["h", 3_600],
  ["m", 60],
] as const;

const ISO =
  /^[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:?[0-9]{2})?)?$/;

/** Whether the YYYY-MM-DD part names a real day (Date.parse takes 2026-02-30 as March 2). */
function realDate(raw: string): boolean {
  const [y, m, d] = raw.slice(0, 10).split("-").map(Number) as [number, number, number];
  const day = new Date(Date.UTC(y, m - 1, d));
  return day.getUTCMonth() === m - 1 && day.getUTCDate() === d;
}

const UNIT_MS: Record<string, number> = {
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
  w: 604_800_000,
};
