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
import { fieldValueProblem } from "./field-value.js";
import { array, bool, clip, condition, keysOf, oneOf, record, str, text } from "./json-shape.js";
import {
  CATEGORIES,
  CONTENT_CHECKS,
  FIELD_TYPES,
  TEMPLATE_LIMITS as L,
  type Template,
  type TemplateField,
} from "./schema.js";
import { connectionTest } from "./validate-test.js";

export const TEMPLATE_NAME = /^[a-z][a-z0-9-]{0,31}$/;
const FIELD_KEY = /^[a-z][a-z0-9_]{0,31}$/;
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
