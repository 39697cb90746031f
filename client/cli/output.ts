/**
 * Printing: aligned tables and relative times for people, JSON for scripts. Data goes to
 * stdout, notes to stderr (so `TOKEN=$(secretsctl vm add web1)` captures only the token).
 */
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate } from "@bufbuild/protobuf/wkt";

/** What `list` shows instead of a value: values are never fetched for a listing. */
export const MASK = "••••••";

/** Writes text to stdout as is. */
export function out(text: string): void {
  process.stdout.write(text);
}

/** Writes one line to stdout. */
export function line(text: string): void {
  process.stdout.write(`${text}\n`);
}

/** Writes one diagnostic line to stderr, prefixed like every diagnostic: `secretsctl: `. */
export function note(text: string): void {
  process.stderr.write(`secretsctl: ${text}\n`);
}

/** Prints a value as JSON on stdout, bigints as numbers. */
export function printJson(value: unknown): void {
  line(JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? Number(v) : v), 2));
}

/**
 * Prints rows as a table: a header of upper-case column names, columns separated by two
 * spaces and padded to the widest cell (by code points, so `••••••` lines up).
 */
export function printTable(columns: readonly string[], rows: readonly (readonly string[])[]): void {
  const cells = [columns, ...rows].map((r) => r.map((c) => cell(c)));
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => width(r[i] ?? ""))));
  for (const r of cells) {
    const padded = r.map((c, i) =>
      i === r.length - 1 ? c : c + " ".repeat((widths[i] ?? 0) - width(c)),
    );
    line(padded.join("  ").trimEnd());
  }
}

/** A timestamp as ISO 8601, or null when unset (for --json). */
export function iso(ts: Timestamp | undefined): string | null {
  return ts && (ts.seconds !== 0n || ts.nanos !== 0) ? timestampDate(ts).toISOString() : null;
}

/** A timestamp relative to now ("3m ago", "in 2h"), or `never` when unset. */
export function ago(ts: Timestamp | undefined, now = Date.now()): string {
  const at = iso(ts);
  if (at === null) return "never";
  const secs = Math.round((now - Date.parse(at)) / 1000);
  if (Math.abs(secs) < 5) return "just now";
  const span = duration(Math.abs(secs));
  return secs > 0 ? `${span} ago` : `in ${span}`;
}

/** A number of seconds as its largest unit: `45s`, `12m`, `5h`, `3d`. */
export function duration(secs: number): string {
  if (secs < 60) return `${secs}s`;
  if (secs < 3600) return `${Math.floor(secs / 60)}m`;
  if (secs < 86_400) return `${Math.floor(secs / 3600)}h`;
  return `${Math.floor(secs / 86_400)}d`;
}

// --- internal ---

/** A cell on one line: control characters (a newline in a description) would break the table. */
function cell(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing control characters is the point
  return text === "" ? "-" : text.replace(/[\u0000-\u001f\u007f]/g, " ");
}

function width(text: string): number {
  return [...text].length;
}
