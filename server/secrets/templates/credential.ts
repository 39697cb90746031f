/**
 * A credential's field values against its template (issue #13): which fields apply given the
 * answers so far, the order a prompt asks them in, and the checked result split into sealed
 * and visible parts with the env vars they map to.
 *
 * Errors carry the field key and a reason, never the value (it may be a key pasted into the
 * wrong field); the property test in credential.test.ts holds this for arbitrary input.
 */
import { fieldValueProblem } from "./field-value.js";
import type { Condition, Template, TemplateField } from "./schema.js";

/** One refused field: `path` is the field key (or the input key), `reason` never holds a value. */
export interface CredentialError {
  path: string;
  reason: string;
}

/** A checked credential: every active field with a value, defaults applied. */
export interface CheckedCredential {
  ok: true;
  /** Secret fields: sealed, never listed. */
  secret: Record<string, string>;
  /** Visible metadata (host, region, user, mode). */
  visible: Record<string, string>;
  /** `[ENV, fieldKey]` for each field with a value and an env var, in field order. */
  env: Array<[string, string]>;
}

/** The result of `validateCredential`: the credential, or every problem found. */
export type CredentialResult = CheckedCredential | { ok: false; errors: CredentialError[] };

/**
 * Checks `input` (field key → value) against `template`. An empty string counts as not given,
 * so a prompt's empty answer takes the default. Collects every problem rather than stopping at
 * the first, so `--field` users fix them in one go:
 * - a key that is not a field, or a field whose `when` is false (it must be absent);
 * - an active required field with neither a value nor a default;
 * - a value refused by its type, options, format or content check.
 * Never throws.
 */
export function validateCredential(
  template: Template,
  input: Readonly<Record<string, string>>,
): CredentialResult {
  const errors: CredentialError[] = [];
  const given = givenValues(template, input, errors);
  const values = effectiveValues(template, given);
  for (const f of template.fields) {
    if (!isActive(f, values)) {
      if (given.has(f.key)) errors.push({ path: f.key, reason: inactiveReason(f) });
      continue;
    }
    const v = values.get(f.key);
    if (v === undefined) {
      if (f.required) errors.push({ path: f.key, reason: "is required" });
      continue;
    }
    const problem = fieldValueProblem(f, v);
    if (problem !== undefined) errors.push({ path: f.key, reason: problem });
  }
  if (errors.length > 0) return { ok: false, errors };
  const secret: Record<string, string> = {};
  const visible: Record<string, string> = {};
  const env: Array<[string, string]> = [];
  for (const f of template.fields) {
    const v = values.get(f.key);
    if (v === undefined) continue;
    (f.secret ? secret : visible)[f.key] = v;
    if (f.env !== undefined) env.push([f.env, f.key]);
  }
  return { ok: true, secret, visible, env };
}

/**
 * The fields a prompt should still ask, in order, given the answers so far. A key present in
 * `answers` counts as answered even when empty (an optional field skipped, or "take the
 * default"). Ask the first, add its answer, call again: a `when` only names earlier fields, so
 * a select answered now decides which fields follow (proxmox's auth_method).
 */
export function fieldsToAsk(
  template: Template,
  answers: Readonly<Record<string, string>>,
): TemplateField[] {
  const given = new Map<string, string>();
  for (const [k, v] of Object.entries(answers)) if (v !== "") given.set(k, v);
  const values = effectiveValues(template, given);
  return template.fields.filter((f) => !Object.hasOwn(answers, f.key) && isActive(f, values));
}

/** Whether `when` holds for these values (absent: always). Exported for the test runner. */
export function conditionHolds(
  when: Condition | undefined,
  values: ReadonlyMap<string, string>,
): boolean {
  if (when === undefined) return true;
  return Object.entries(when).every(([key, options]) => {
    const v = values.get(key);
    return v !== undefined && options.includes(v);
  });
}

/**
 * The values a credential has once defaults are applied to its active fields, in field order.
 * `given` holds the non-empty inputs. A given value for an inactive field is left out.
 */
export function effectiveValues(
  template: Template,
  given: ReadonlyMap<string, string>,
): Map<string, string> {
  const values = new Map<string, string>();
  for (const f of template.fields) {
    if (!conditionHolds(f.when, values)) continue;
    const v = given.get(f.key) ?? f.default;
    if (v !== undefined) values.set(f.key, v);
  }
  return values;
}

// --- internal ---

/** Non-empty input values of known fields; unknown keys are reported. */
function givenValues(
  template: Template,
  input: Readonly<Record<string, string>>,
  errors: CredentialError[],
): Map<string, string> {
  const known = new Set(template.fields.map((f) => f.key));
  const given = new Map<string, string>();
  for (const [k, v] of Object.entries(input)) {
    if (!known.has(k)) {
      const names = [...known].join(", ");
      errors.push({
        path: clip(k),
        reason: `unknown field of template ${template.name} (known: ${names})`,
      });
      continue;
    }
    if (typeof v !== "string") {
      errors.push({ path: k, reason: "must be a string" });
      continue;
    }
    if (v !== "") given.set(k, v);
  }
  return given;
}

/** A field is active when its condition holds over the effective values of earlier fields. */
function isActive(f: TemplateField, values: ReadonlyMap<string, string>): boolean {
  return conditionHolds(f.when, values);
}

function inactiveReason(f: TemplateField): string {
  const when = Object.entries(f.when ?? {})
    .map(([k, opts]) => `${k} is ${opts.join(" or ")}`)
    .join(" and ");
  return `applies only when ${when}: remove it`;
}

/** An input key for a message: at most 64 characters, JSON-quoted unless plain ASCII. */
function clip(s: string): string {
  const c = s.length > 64 ? `${s.slice(0, 64)}…` : s;
  return /^[\x20-\x7e…]*$/.test(c) ? c : JSON.stringify(c);
}
