/**
 * Checks on parsed JSON shared by the template validators: each throws INVALID_ARGUMENT whose
 * message starts with the path of the offending value, and names keys, never values.
 */
import { invalidArgument } from "../../errors.js";
import { hasControlChars } from "./field-value.js";
import { type Condition, TEMPLATE_LIMITS as L, type TemplateField } from "./schema.js";

/**
 * `{ field: option | [options] }` over select fields in `fields` (for a field: the earlier
 * ones, so prompts can ask in order and conditions cannot loop).
 */
export function condition(
  path: string,
  v: unknown,
  fields: readonly TemplateField[],
  which: string,
): Condition {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw invalidArgument(path, mustBe("an object { field: option or [options] }", v));
  }
  const entries = Object.entries(v);
  if (entries.length === 0) throw invalidArgument(path, "must name at least one field");
  const out: Record<string, string[]> = {};
  for (const [k, raw] of entries) {
    const at = `${path}.${clip(k)}`;
    const target = fields.find((f) => f.key === k);
    if (target === undefined)
      throw invalidArgument(at, `must name ${which} field (no field '${clip(k)}')`);
    if (target.type !== "select") throw invalidArgument(at, `field '${k}' is not a select field`);
    const opts = typeof raw === "string" ? [raw] : array(at, raw, 1, L.maxOptions);
    out[k] = opts.map((x, i) => {
      const s = str(typeof raw === "string" ? at : `${at}[${i}]`, x);
      if (!target.options?.includes(s)) {
        throw invalidArgument(
          at,
          `unknown option '${clip(s)}' (known: ${target.options?.join(", ")})`,
        );
      }
      return s;
    });
  }
  return out;
}

/** Checks `v` is a plain object with no keys outside `keys`; `prefix` starts key paths. */
export function record<K extends string>(
  path: string,
  v: unknown,
  keys: readonly K[],
  prefix: string,
): Partial<Record<K, unknown>> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw invalidArgument(path, mustBe("an object", v));
  }
  for (const k of Object.keys(v)) {
    if (!(keys as readonly string[]).includes(k)) {
      const at = prefix === "" ? clip(k) : `${prefix}.${clip(k)}`;
      throw invalidArgument(at, `unknown key (known: ${keys.join(", ")})`);
    }
  }
  return v as Partial<Record<K, unknown>>;
}

/** An array of `min` to `max` elements. */
export function array(path: string, v: unknown, min: number, max: number): unknown[] {
  if (!Array.isArray(v)) throw invalidArgument(path, mustBe("an array", v));
  if (v.length < min || v.length > max) {
    throw invalidArgument(path, `must have ${min} to ${max} elements (got ${v.length})`);
  }
  return v;
}

/** A string. */
export function str(path: string, v: unknown): string {
  if (typeof v !== "string") throw invalidArgument(path, mustBe("a string", v));
  return v;
}

/** A boolean. */
export function bool(path: string, v: unknown): boolean {
  if (typeof v !== "boolean") throw invalidArgument(path, mustBe("a boolean", v));
  return v;
}

/** Text up to `max` characters without control characters; `nonEmpty` refuses "". */
export function text(path: string, v: unknown, max: number, nonEmpty: boolean): string {
  const s = str(path, v);
  if (nonEmpty && s === "") throw invalidArgument(path, "must not be empty");
  if (s.length > max) throw invalidArgument(path, `is ${s.length} characters; the limit is ${max}`);
  // Shown on terminals by `templates show` and prompts: no escape sequences.
  if (hasControlChars(s)) throw invalidArgument(path, "must not contain control characters");
  return s;
}

/** A string out of `known`, listed in the error. */
export function oneOf<T extends string>(
  path: string,
  v: unknown,
  known: readonly T[],
  what: string,
): T {
  const s = str(path, v);
  if (!(known as readonly string[]).includes(s)) {
    throw invalidArgument(path, `unknown ${what} '${clip(s)}' (known: ${known.join(", ")})`);
  }
  return s as T;
}

/** "is required (…)" or "must be … (got <type>)": names the type, never the value. */
export function mustBe(what: string, v: unknown): string {
  const got = v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
  return v === undefined ? `is required (${what})` : `must be ${what} (got ${got})`;
}

/** The keys of `T`, once each: the parameter type refuses a missing or an extra one. */
export function keysOf<T>(keys: Record<keyof T, 1>): (keyof T & string)[] {
  return Object.keys(keys) as (keyof T & string)[];
}

/** A name for a message: at most 64 characters, quoted as JSON if not printable ASCII. */
export function clip(s: string): string {
  const c = s.length > 64 ? `${s.slice(0, 64)}…` : s;
  return /^[\x20-\x7e…]*$/.test(c) ? c : JSON.stringify(c);
}
