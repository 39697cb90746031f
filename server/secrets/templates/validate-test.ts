/**
 * A template's connection tests (issue #13, "Connection tests"): each placeholder names a
 * field, each field reference exists, an HTTP test has a usable base URL, method, auth and
 * statuses. Called by validate-template.ts once the fields are known.
 */
import { invalidArgument } from "../../errors.js";
import { array, clip, condition, keysOf, mustBe, oneOf, record, str, text } from "./json-shape.js";
import { parsePlaceholders, placeholderKeys } from "./placeholder.js";
import {
  type Condition,
  type ConnectionTest,
  HTTP_METHODS,
  type HttpAuth,
  type HttpTest,
  TEMPLATE_LIMITS as L,
  TEST_KINDS,
  type TemplateField,
} from "./schema.js";

/** RFC 9110 token characters. */
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/;
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
/** Per non-HTTP kind: the roles `fields` may name, and the sets of which one must be named whole. */
const ROLES = {
  postgres: {
    known: ["url", "host", "port", "database", "user", "password", "sslmode"],
    need: [["url"], ["host", "user"]],
  },
  smtp: { known: ["host", "port", "user", "password", "security"], need: [["host"]] },
  aws_sts: {
    known: ["access_key_id", "secret_access_key", "session_token", "region"],
    need: [["access_key_id", "secret_access_key"]],
  },
} as const;

/**
 * One entry of `tests`, checked against the template's `fields`: an HTTP request, or a
 * postgres, smtp or aws_sts test naming the fields that hold each part. Throws
 * INVALID_ARGUMENT naming the path.
 */
export function connectionTest(
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
  if (!roles.need.some((set) => set.every((r) => r in out))) {
    const want = roles.need.map((set) => set.join(" and ")).join(", or ");
    throw invalidArgument(`${path}.fields`, `must name a field for ${want}`);
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
    // __proto__ would be dropped silently by the assignment below.
    if (k === "__proto__" || !(anyName ? /^[\x21-\x7e]{1,64}$/ : HEADER_NAME).test(k)) {
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
