/**
 * Cron expressions for rotation schedules (issue #11): parsing, and the next fire time after a
 * given instant.
 *
 * Parsing is node-cron's (`cron.validateDetailed`), so an expression is accepted here when
 * node-cron's `validate` accepts it: 5 fields (minute precision) or 6 (seconds first), `*`,
 * lists, ranges (a reversed range wraps, as in node-cron), steps, month and weekday names,
 * weekday 7 = Sunday, `?` in the day fields and the `@daily`-style nicknames. One exception:
 * node-cron's Quartz tokens (`L`, `W`, `#`) are refused, as cron(5) has none of them.
 *
 * The next time is computed here: node-cron 4 only offers it relative to the real clock
 * (`task.getNextRun()`), and it ANDs day of month with day of week, where cron(5) ORs them
 * when both are restricted ("0 0 13 * FRI" is every 13th and every Friday).
 */
import cron from "node-cron";
import { invalidArgument, SecretsError } from "../../errors.js";
import {
  checkTimeZone,
  daysInMonth,
  instantOf,
  type WallClock,
  wallClockAt,
  weekday,
} from "./zoned-time.js";

/** A parsed cron expression. */
export interface CronExpression {
  /** The expression as given. */
  readonly source: string;
  /** The IANA time zone its fields are read in; `undefined` is UTC. */
  readonly tz: string | undefined;
  /** The first fire time strictly after `after` (ms since the epoch); always a whole second. */
  next(after: number): number;
}

/** Inputs of {@link parseCronExpression}. */
export interface CronParseOptions {
  /** IANA time zone (`Europe/Berlin`) the fields are read in. @default UTC */
  tz?: string;
  /** Request or manifest field named in an `invalid_argument` error. @default "schedule" */
  field?: string;
}

/**
 * Parses `expr`; throws `invalid_argument` (naming `opts.field`) for an expression node-cron
 * refuses, for `L`/`W`/`#`, and for an unknown time zone.
 *
 * In a zone with summer time, a slot in the skipped hour does not fire that day and a slot in
 * the repeated hour fires once (the first time the wall clock reads it).
 */
export function parseCronExpression(expr: string, opts: CronParseOptions = {}): CronExpression {
  const field = opts.field ?? "schedule";
  const tz = opts.tz === undefined ? undefined : checkTimeZone(opts.tz, `${field}.tz`);
  const fields = compile(expr, field);
  return { source: expr, tz, next: (after) => nextAfter(fields, after, tz) };
}

/**
 * The first fire time of `expr` strictly after `after` (ms since the epoch), with the fields
 * read in `tz` (default UTC). Throws `invalid_argument` like {@link parseCronExpression}.
 */
export function nextCronTime(expr: string, after: number, tz?: string): number {
  return parseCronExpression(expr, tz === undefined ? {} : { tz }).next(after);
}

// --- internal ---

interface Fields {
  seconds: number[];
  minutes: number[];
  hours: number[];
  days: Set<number>;
  months: Set<number>;
  weekdays: Set<number>;
  /** Both day fields are restricted, so either one matching is enough (cron(5)). */
  dayOr: boolean;
}

const LABELS: Record<string, string> = {
  second: "second",
  minute: "minute",
  hour: "hour",
  dayOfMonth: "day of month",
  month: "month",
  dayOfWeek: "day of week",
};

/** 400 Gregorian years repeat every date on every weekday, so any valid expression fires. */
const MAX_YEARS = 401;

function compile(expr: string, field: string): Fields {
  const v = cron.validateDetailed(expr);
  if (!v.valid || v.fields === undefined) {
    const e = v.errors[0];
    const label = `${LABELS[e?.field ?? ""] ?? "field"} '${e?.value ?? ""}'`;
    const why =
      e === undefined || e.field === "expression"
        ? (e?.message ?? "invalid")
        : e.message.includes("impossible")
          ? `${label} never occurs in its months`
          : `bad ${label}`;
    throw invalidArgument(field, `'${expr}' is not a cron expression: ${why}`);
  }
  const f = v.fields;
  const numbers = (xs: (number | string)[]): number[] => {
    if (xs.some((x) => typeof x !== "number")) {
      throw invalidArgument(field, `'${expr}': L, W and # are not supported`);
    }
    return [...new Set(xs as number[])].sort((a, b) => a - b);
  };
  return {
    seconds: numbers(f.second),
    minutes: numbers(f.minute),
    hours: numbers(f.hour),
    days: new Set(numbers(f.dayOfMonth)),
    months: new Set(numbers(f.month)),
    weekdays: new Set(numbers(f.dayOfWeek)),
    dayOr: bothDaysRestricted(expr),
  };
}

/**
 * Vixie cron's rule: a day field is unrestricted when its text starts with `*` (so `*\/2` is
 * unrestricted too) or is `?`. The nicknames restrict at most one day field.
 */
function bothDaysRestricted(expr: string): boolean {
  const raw = expr.trim().split(/\s+/);
  if (raw[0]?.startsWith("@")) return false;
  const [dom, dow] = raw.length === 6 ? [raw[3], raw[5]] : [raw[2], raw[4]];
  const restricted = (s = "*") => !s.startsWith("*") && s !== "?";
  return restricted(dom) && restricted(dow);
}

function nextAfter(f: Fields, after: number, tz: string | undefined): number {
  if (!Number.isFinite(after)) throw invalidArgument("after", "must be a finite time");
  const start = Math.floor(after / 1000) * 1000 + 1000;
  const from = wallClockAt(start, tz);
  let { year, month, day } = from;
  let bound: WallClock | undefined = from;
  while (year <= from.year + MAX_YEARS) {
    if (!f.months.has(month)) {
      // Skip the whole month.
      [year, month, day] = month === 12 ? [year + 1, 1, 1] : [year, month + 1, 1];
      bound = undefined;
      continue;
    }
    if (dayMatches(f, year, month, day)) {
      const t = firstOnDay(
        f,
        { year, month, day, hour: 0, minute: 0, second: 0 },
        bound,
        tz,
        start,
      );
      if (t !== undefined) return t;
    }
    bound = undefined;
    if (day < daysInMonth(year, month)) day++;
    else [year, month, day] = month === 12 ? [year + 1, 1, 1] : [year, month + 1, 1];
  }
  throw new SecretsError("internal", "cron: no fire time within 400 years");
}

function dayMatches(f: Fields, year: number, month: number, day: number): boolean {
  const dom = f.days.has(day);
  const dow = f.weekdays.has(weekday(year, month, day));
  return f.dayOr ? dom || dow : dom && dow;
}

/**
 * The first slot on `date` at or after `bound`'s time of day that exists in `tz` and is not
 * before `start` (in a repeated hour a wall-clock time can lie before the instant it follows).
 */
function firstOnDay(
  f: Fields,
  date: WallClock,
  bound: WallClock | undefined,
  tz: string | undefined,
  start: number,
): number | undefined {
  const floor = bound === undefined ? -1 : bound.hour * 3600 + bound.minute * 60 + bound.second;
  for (const hour of f.hours) {
    if (hour * 3600 + 3599 < floor) continue;
    for (const minute of f.minutes) {
      if (hour * 3600 + minute * 60 + 59 < floor) continue;
      for (const second of f.seconds) {
        if (hour * 3600 + minute * 60 + second < floor) continue;
        const t = instantOf({ ...date, hour, minute, second }, tz);
        if (t !== undefined && t >= start) return t;
      }
    }
  }
  return undefined;
}
