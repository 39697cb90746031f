/**
 * Wall-clock time in an IANA time zone, for cron schedules with a `tz` (issue #11). UTC needs
 * none of this; a zone goes through `Intl.DateTimeFormat` (Node ships full ICU), one cached
 * formatter per zone.
 */
import { invalidArgument } from "../../errors.js";

/** A wall-clock reading: month 1-12, day 1-31, hour 0-23 (no milliseconds: cron has none). */
export interface WallClock {
  year: number;
  month: number;
  day: number;
  hour: number;
  minute: number;
  second: number;
}

/**
 * Returns `tz` when it names a time zone Node knows; throws `invalid_argument` on `field` when
 * it does not, so that a typo is refused when the schedule is set, not when it would fire.
 */
export function checkTimeZone(tz: string, field: string): string {
  try {
    formatter(tz);
  } catch {
    throw invalidArgument(field, `unknown time zone '${tz}'`);
  }
  return tz;
}

/** The wall clock in `tz` (UTC when undefined) at instant `t` (ms since the epoch). */
export function wallClockAt(t: number, tz: string | undefined): WallClock {
  if (tz === undefined) {
    const d = new Date(t);
    return {
      year: d.getUTCFullYear(),
      month: d.getUTCMonth() + 1,
      day: d.getUTCDate(),
      hour: d.getUTCHours(),
      minute: d.getUTCMinutes(),
      second: d.getUTCSeconds(),
    };
  }
  const w: WallClock = { year: 0, month: 0, day: 0, hour: 0, minute: 0, second: 0 };
  for (const p of formatter(tz).formatToParts(t)) {
    if (p.type in w) w[p.type as keyof WallClock] = Number(p.value);
  }
  return w;
}

/**
 * The instant at which the wall clock in `tz` reads `w`. When it reads `w` twice (the hour
 * repeated when summer time ends) this is the earlier instant; when it never does (the hour
 * skipped when summer time starts) it is `undefined`, and cron skips that slot.
 */
export function instantOf(w: WallClock, tz: string | undefined): number | undefined {
  const guess = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  if (tz === undefined) return guess;
  // The offsets a day either side cover one transition near `guess`; zones change offset at
  // most twice a year, so two candidates suffice.
  let best: number | undefined;
  for (const probe of [guess - DAY_MS, guess + DAY_MS]) {
    const t = guess - offsetAt(probe, tz);
    if ((best === undefined || t < best) && sameWallClock(wallClockAt(t, tz), w)) best = t;
  }
  return best;
}

/** Days in `month` (1-12) of `year`, Gregorian. */
export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Day of week (0 = Sunday) of a calendar date, which no time zone changes. */
export function weekday(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay();
}

// --- internal ---

const DAY_MS = 86_400_000;
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (f === undefined) {
    f = new Intl.DateTimeFormat("en-US", {
      timeZone: tz,
      hourCycle: "h23",
      year: "numeric",
      month: "numeric",
      day: "numeric",
      hour: "numeric",
      minute: "numeric",
      second: "numeric",
    });
    formatters.set(tz, f);
  }
  return f;
}

/** Milliseconds the zone's wall clock is ahead of UTC at instant `t`. */
function offsetAt(t: number, tz: string): number {
  const w = wallClockAt(t, tz);
  const local = Date.UTC(w.year, w.month - 1, w.day, w.hour, w.minute, w.second);
  return local - Math.floor(t / 1000) * 1000;
}

function sameWallClock(a: WallClock, b: WallClock): boolean {
  return (
    a.year === b.year &&
    a.month === b.month &&
    a.day === b.day &&
    a.hour === b.hour &&
    a.minute === b.minute &&
    a.second === b.second
  );
}
