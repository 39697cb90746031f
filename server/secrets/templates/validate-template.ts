/**
 * Template validation (issue #13): a user template from `<data dir>/templates/NAME.json` is
 * refused WHOLE on its first problem, with INVALID_ARGUMENT whose message starts with the file
 * and the path of the offending field
 * (`templates/acme.json: fields[2].when.auth_method: unknown option 'x'`). Built-ins go through
 * the same function in their unit test, so both follow one set of rules.
 */
import { invalidArgument, isSecretsError, SecretsError } from "../../errors.js";
import { checkEnvPolicy } from "../env-policy.js";
import { checkFormatSource } from "../manifest/format.js";
import { checkEnvName } from "../validate.js";
import { fieldValueProblem, hasControlChars } from "./field-value.js";
import { parsePlaceholders, placeholderKeys } from "./placeholder.js";
import {
  CATEGORIES,
  CONTENT_CHECKS,
  type Condition,
  type ConnectionTest,
  FIELD_TYPES,
  HTTP_METHODS,
  type HttpAuth,
  type HttpTest,
  TEMPLATE_LIMITS as L,
  TEST_KINDS,
  type Template,
  type TemplateField,
} from "./schema.js";

export const TEMPLATE_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const FIELD_KEY = /^[a-z][a-z0-9_]{0,31}$/;
/** RFC 9110 token characters. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
const OPTION = /^[\x21-\x7e]{1,64}$/;

const TEMPLATE_KEYS = ["name", "title", "category", "description", "fields", "tests"] as const;
const FIELD_KEYS = keysOf<TemplateField>({
  key: 1,
  label: 1,
  type: 1,
  secret: 1,
  required: 1,
  default: 1,
  help: 1,
  options: 1,
  format: 1,
  formatHint: 1,
  check: 1,
  env: 1,
  when: 1,
});
const HTTP_KEYS = keysOf<HttpTest>({
  kind: 1,
  method: 1,
  baseUrl: 1,
  path: 1,
  auth: 1,
  headers: 1,
  form: 1,
  okStatus: 1,
  insecureField: 1,
  when: 1,
});
/** Per non-HTTP kind: the roles `fields` may name, and those it must. */
const ROLES = {
  postgres: {
    known: ["url", "host", "port", "database", "user", "password", "sslmode"],
    needOneOf: ["url", "host"],
  },
  smtp: { known: ["host", "port", "user", "password", "security"], needOneOf: ["host"] },
  aws_sts: {
    known: ["access_key_id", "secret_access_key", "session_token", "region"],
    needOneOf: ["access_key_id"],
  },
} as const;

/**
 * Validates a parsed template and returns it in its stored form (known keys only, defaults
 * filled in, `source` recorded). Throws INVALID_ARGUMENT on the first problem; its message
 * starts with `source: ` unless `source` is "builtin".
 */
export function validateTemplate(obj: unknown, source: string): Template {
  try {
    return template(obj, source);
  } catch (err) {
    if (!isSecretsError(err) || source === "builtin") throw err;
    throw new SecretsError(err.code, `${source}: ${err.message}`, {
      ...(err.field === undefined ? {} : { field: err.field }),
    });
  }
}

/**
 * Parses a template file's text: JSON only, at most 256 KiB, and its `name` must be the file's
 * base name (`acme.json` holds template `acme`), so two files can never claim one name.
 */
export function parseTemplateFile(text: string, source: string, fileName: string): Template {
  const bytes = Buffer.byteLength(text, "utf8");
  const fail = (msg: string) => new SecretsError("invalid_argument", `${source}: ${msg}`);
  if (bytes > L.maxFileBytes) throw fail(`is ${bytes} bytes; the limit is ${L.maxFileBytes}`);
  let obj: unknown;
  try {
    obj = JSON.parse(text.replace(/^\uFEFF/, ""));
  } catch {
    // JSON.parse's message can quote the text, which may hold a pasted value.
    throw fail("is not valid JSON (a template is a JSON object)");
  }
  const t = validateTemplate(obj, source);
  const base = fileName.replace(/\.json$/, "");
  if (t.name !== base) {
    throw fail(`name: '${t.name}' must match the file name (${base}.json holds template ${base})`);
  }
  return t;
}

// --- internal ---

function template(obj: unknown, source: string): Template {
  const o = record("template", obj, TEMPLATE_KEYS, "");
  const name = str("name", o.name);
  if (!TEMPLATE_NAME.test(name)) {
    throw invalidArgument("name", `'${clip(name)}' must match ${TEMPLATE_NAME.source}`);
  }
  const title = text("title", o.title, L.maxTitle, true);
  const category = oneOf("category", o.category, CATEGORIES, "category");
  const description =
    o.description === undefined ? "" : text("description", o.description, L.maxDescription, false);
  const fieldsIn = array("fields", o.fields, 1, L.maxFields);
  const fields: TemplateField[] = [];
  const envs = new Map<string, string>();
  fieldsIn.forEach((f, i) => {
    fields.push(field(`fields[${i}]`, f, fields, envs, source === "builtin"));
  });
  const testsIn = o.tests === undefined ? [] : array("tests", o.tests, 0, L.maxTests);
  const tests = testsIn.map((t, i) => connectionTest(`tests[${i}]`, t, fields));
  return { name, title, category, description, fields, tests, source };
}

/**
 * One field; `earlier` are the fields before it, `envs` the env vars they claimed; `trusted`:
 * a built-in, whose formats are matched without the sandbox (field-value.ts).
 */
function field(
  path: string,
  v: unknown,
  earlier: readonly TemplateField[],
  envs: Map<string, string>,
  trusted: boolean,
): TemplateField {
  const o = record(path, v, FIELD_KEYS, path);
  const key = str(`${path}.key`, o.key);
  if (!FIELD_KEY.test(key)) {
    throw invalidArgument(`${path}.key`, `'${clip(key)}' must match ${FIELD_KEY.source}`);
  }
  const dup = earlier.findIndex((f) => f.key === key);
  if (dup >= 0)
    throw invalidArgument(`${path}.key`, `duplicate key '${key}' (also fields[${dup}])`);
  const type = oneOf(`${path}.type`, o.type, FIELD_TYPES, "field type");
  const secret = secretFlag(path, type, o.secret);
  const required = o.required === undefined ? true : bool(`${path}.required`, o.required);
  const label = o.label === undefined ? key : text(`${path}.label`, o.label, L.maxLabel, true);
  const help = o.help === undefined ? "" : text(`${path}.help`, o.help, L.maxHelp, false);
  const options = fieldOptions(path, type, o.options);
  const format = o.format === undefined ? undefined : str(`${path}.format`, o.format);
  if (format !== undefined) {
    if (type === "select")
      throw invalidArgument(`${path}.format`, "a select field has options, not a format");
    checkFormatSource(`${path}.format`, format);
  }
  const formatHint =
    o.formatHint === undefined
      ? undefined
      : text(`${path}.formatHint`, o.formatHint, L.maxHelp, true);
  if (formatHint !== undefined && format === undefined) {
    throw invalidArgument(`${path}.formatHint`, "describes a format: set format too");
  }
  const check =
    o.check === undefined ? undefined : oneOf(`${path}.check`, o.check, CONTENT_CHECKS, "check");
  if (check !== undefined && type !== "secret" && type !== "json") {
    throw invalidArgument(`${path}.check`, `a ${check} check needs a secret or json field`);
  }
  const env = o.env === undefined ? undefined : fieldEnv(`${path}.env`, o.env, envs);
  const when =
    o.when === undefined ? undefined : condition(`${path}.when`, o.when, earlier, "an earlier");
  const f: TemplateField = {
    key,
    label,
    type,
    secret,
    required,
    help,
    ...(options === undefined ? {} : { options }),
    ...(format === undefined ? {} : { format }),
    ...(formatHint === undefined ? {} : { formatHint }),
    ...(check === undefined ? {} : { check }),
    ...(env === undefined ? {} : { env }),
    ...(when === undefined ? {} : { when }),
  };
  if (o.default !== undefined) {
    const dflt = text(`${path}.default`, o.default, L.maxDefault, true);
    if (secret) throw invalidArgument(`${path}.default`, "a secret field has no default");
    const problem = fieldValueProblem(f, dflt, trusted);
    if (problem !== undefined) throw invalidArgument(`${path}.default`, problem);
    return { ...f, default: dflt };
  }
  return f;
}

/** `secret`: forced true for type secret, refused for select and port. */
function secretFlag(path: string, type: TemplateField["type"], v: unknown): boolean {
  if (v === undefined) return type === "secret";
  const secret = bool(`${path}.secret`, v);
  if (type === "secret" && !secret) {
    throw invalidArgument(`${path}.secret`, "a secret field is always sealed: use type text");
  }
  if (secret && (type === "select" || type === "port")) {
    throw invalidArgument(`${path}.secret`, `a ${type} field cannot be secret`);
  }
  return secret;
}

function fieldOptions(path: string, type: string, v: unknown): string[] | undefined {
  if (type !== "select") {
    if (v !== undefined)
      throw invalidArgument(`${path}.options`, "only a select field has options");
    return undefined;
  }
  const arr = array(`${path}.options`, v, 1, L.maxOptions);
  const seen = new Set<string>();
  return arr.map((x, i) => {
    const s = str(`${path}.options[${i}]`, x);
    if (!OPTION.test(s)) {
      throw invalidArgument(
        `${path}.options[${i}]`,
        "must be 1 to 64 printable characters without spaces",
      );
    }
    if (seen.has(s)) throw invalidArgument(`${path}.options[${i}]`, `duplicate option '${s}'`);
    seen.add(s);
    return s;
  });
}

/** An env var name: the shape of validate.ts, never a sensitive name, once per template. */
function fieldEnv(path: string, v: unknown, envs: Map<string, string>): string {
  const env = checkEnvName(path, str(path, v));
  try {
    checkEnvPolicy(path, env, false);
  } catch {
    // A template has no allow_sensitive_env: the policy's own hint does not apply here.
    throw invalidArgument(
      path,
      `${env} changes how programs load or run on the VM, so a template cannot map to it`,
    );
  }
  const earlier = envs.get(env);
  if (earlier !== undefined)
    throw invalidArgument(path, `duplicate env var ${env} (also ${earlier})`);
  envs.set(env, path);
  return env;
}

/**
 * `{ field: option | [options] }` over select fields in `fields` (for a field: the earlier
 * ones, so prompts can ask in order and conditions cannot loop).
 */
function condition(
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

function connectionTest(
  path: string,
  v: unknown,
  fields: readonly TemplateField[],
): ConnectionTest {
  const o = record(path, v, [...HTTP_KEYS, "fields"], path);
  const kind = oneOf(`${path}.kind`, o.kind, TEST_KINDS, "test kind");
  const when = o.when === undefined ? undefined : condition(`${path}.when`, o.when, fields, "a");
  if (kind === "http") return httpTest(path, o, fields, when);
  const roles = ROLES[kind];
  for (const k of Object.keys(o)) {
    if (k !== "kind" && k !== "fields" && k !== "when") {
      throw invalidArgument(
        `${path}.${clip(k)}`,
        `unknown key for a ${kind} test (known: kind, fields, when)`,
      );
    }
  }
  const m = record(`${path}.fields`, o.fields, roles.known, `${path}.fields`);
  const out: Record<string, string> = {};
  for (const [role, ref] of Object.entries(m))
    out[role] = fieldRef(`${path}.fields.${role}`, ref, fields);
  if (!roles.needOneOf.some((r) => r in out)) {
    throw invalidArgument(
      `${path}.fields`,
      `must name a field for ${roles.needOneOf.join(" or ")}`,
    );
  }
  return { kind, fields: out, ...(when === undefined ? {} : { when }) } as ConnectionTest;
}

function httpTest(
  path: string,
  o: Partial<Record<string, unknown>>,
  fields: readonly TemplateField[],
  when: Condition | undefined,
): HttpTest {
  if (o.fields !== undefined)
    throw invalidArgument(`${path}.fields`, "an http test has no fields map");
  const method = oneOf(`${path}.method`, o.method, HTTP_METHODS, "method");
  const baseUrl = tpl(`${path}.baseUrl`, o.baseUrl, fields);
  if (!/^(https?:\/\/[^/\s]|\{)/.test(baseUrl)) {
    throw invalidArgument(
      `${path}.baseUrl`,
      "must start with http:// or https:// and a host, or be a {url_field}",
    );
  }
  const p = tpl(`${path}.path`, o.path, fields);
  if (!p.startsWith("/") && !p.startsWith("{")) {
    throw invalidArgument(`${path}.path`, "must start with / (or be a {path_field})");
  }
  const auth = httpAuth(`${path}.auth`, o.auth, fields);
  const headers = tplRecord(`${path}.headers`, o.headers ?? {}, fields);
  const form = o.form === undefined ? undefined : tplRecord(`${path}.form`, o.form, fields, true);
  if (form !== undefined && method !== "POST")
    throw invalidArgument(`${path}.form`, "a form body needs method POST");
  const okStatus = array(`${path}.okStatus`, o.okStatus, 1, 16).map((s, i) => {
    if (typeof s !== "number" || !Number.isInteger(s) || s < 100 || s > 599) {
      throw invalidArgument(`${path}.okStatus[${i}]`, "must be an HTTP status 100 to 599");
    }
    return s;
  });
  let insecureField: string | undefined;
  if (o.insecureField !== undefined) {
    insecureField = fieldRef(`${path}.insecureField`, o.insecureField, fields);
    const f = fields.find((x) => x.key === insecureField);
    if (f?.type !== "select" || !f.options?.includes("true")) {
      throw invalidArgument(
        `${path}.insecureField`,
        "must name a select field with the option 'true'",
      );
    }
  }
  return {
    kind: "http",
    method,
    baseUrl,
    path: p,
    auth,
    headers,
    ...(form === undefined ? {} : { form }),
    okStatus,
    ...(insecureField === undefined ? {} : { insecureField }),
    ...(when === undefined ? {} : { when }),
  };
}

function httpAuth(path: string, v: unknown, fields: readonly TemplateField[]): HttpAuth {
  const o = record(path, v, ["type", "name", "value", "userField", "passwordField"], path);
  const type = oneOf(
    `${path}.type`,
    o.type,
    ["header", "query", "basic", "none"] as const,
    "auth type",
  );
  const allowed: Record<typeof type, string[]> = {
    header: ["type", "name", "value"],
    query: ["type", "name", "value"],
    basic: ["type", "userField", "passwordField"],
    none: ["type"],
  };
  for (const k of Object.keys(o)) {
    if (!allowed[type].includes(k)) {
      throw invalidArgument(
        `${path}.${k}`,
        `not used by ${type} auth (known: ${allowed[type].join(", ")})`,
      );
    }
  }
  if (type === "basic") {
    return {
      type,
      userField: fieldRef(`${path}.userField`, o.userField, fields),
      passwordField: fieldRef(`${path}.passwordField`, o.passwordField, fields),
    };
  }
  if (type === "none") return { type };
  const name = tpl(`${path}.name`, o.name, fields);
  if (type === "header" && !name.includes("{") && !HEADER_NAME.test(name)) {
    throw invalidArgument(`${path}.name`, "must be an HTTP header name");
  }
  return { type, name, value: tpl(`${path}.value`, o.value, fields) };
}

/** Header or form entries: names checked, values placeholder strings. */
function tplRecord(
  path: string,
  v: unknown,
  fields: readonly TemplateField[],
  anyName = false,
): Record<string, string> {
  if (typeof v !== "object" || v === null || Array.isArray(v))
    throw invalidArgument(path, mustBe("an object", v));
  const out: Record<string, string> = {};
  for (const [k, x] of Object.entries(v)) {
    if (!(anyName ? /^[\x21-\x7e]{1,64}$/ : HEADER_NAME).test(k)) {
      throw invalidArgument(
        `${path}.${clip(k)}`,
        anyName ? "must be a printable name" : "must be an HTTP header name",
      );
    }
    out[k] = tpl(`${path}.${k}`, x, fields);
  }
  return out;
}

/** A placeholder string whose `{key}`s all name fields. */
function tpl(path: string, v: unknown, fields: readonly TemplateField[]): string {
  const s = text(path, v, L.maxTemplateText, true);
  const parts = parsePlaceholders(s);
  if (typeof parts === "string") throw invalidArgument(path, parts);
  for (const k of placeholderKeys(parts)) {
    if (!fields.some((f) => f.key === k)) throw invalidArgument(path, `{${k}} names no field`);
  }
  return s;
}

function fieldRef(path: string, v: unknown, fields: readonly TemplateField[]): string {
  const k = str(path, v);
  if (!fields.some((f) => f.key === k))
    throw invalidArgument(path, `names no field ('${clip(k)}')`);
  return k;
}

/** Checks `v` is a plain object with no keys outside `keys`; `prefix` starts key paths. */
function record<K extends string>(
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

function array(path: string, v: unknown, min: number, max: number): unknown[] {
  if (!Array.isArray(v)) throw invalidArgument(path, mustBe("an array", v));
  if (v.length < min || v.length > max) {
    throw invalidArgument(path, `must have ${min} to ${max} elements (got ${v.length})`);
  }
  return v;
}

function str(path: string, v: unknown): string {
  if (typeof v !== "string") throw invalidArgument(path, mustBe("a string", v));
  return v;
}

function bool(path: string, v: unknown): boolean {
  if (typeof v !== "boolean") throw invalidArgument(path, mustBe("a boolean", v));
  return v;
}

/** Text up to `max` characters without control characters; `nonEmpty` refuses "". */
function text(path: string, v: unknown, max: number, nonEmpty: boolean): string {
  const s = str(path, v);
  if (nonEmpty && s === "") throw invalidArgument(path, "must not be empty");
  if (s.length > max) throw invalidArgument(path, `is ${s.length} characters; the limit is ${max}`);
  // Shown on terminals by `templates show` and prompts: no escape sequences.
  if (hasControlChars(s)) throw invalidArgument(path, "must not contain control characters");
  return s;
}

function oneOf<T extends string>(path: string, v: unknown, known: readonly T[], what: string): T {
  const s = str(path, v);
  if (!(known as readonly string[]).includes(s)) {
    throw invalidArgument(path, `unknown ${what} '${clip(s)}' (known: ${known.join(", ")})`);
  }
  return s as T;
}

function mustBe(what: string, v: unknown): string {
  const got = v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
  return v === undefined ? `is required (${what})` : `must be ${what} (got ${got})`;
}

/** The keys of `T`, once each: the parameter type refuses a missing or an extra one. */
function keysOf<T>(keys: Record<keyof T, 1>): (keyof T & string)[] {
  return Object.keys(keys) as (keyof T & string)[];
}

/** A name for a message: at most 64 characters, quoted as JSON if not printable ASCII. */
function clip(s: string): string {
  const c = s.length > 64 ? `${s.slice(0, 64)}…` : s;
  return /^[\x20-\x7e…]*$/.test(c) ? c : JSON.stringify(c);
}
