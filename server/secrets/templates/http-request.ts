/**
 * Turns a template's connection test and a checked credential into what a runner needs: which
 * test applies (a test per auth method), and for an HTTP test the exact request. Pure: the
 * runner (not in this module) sends it with its timeout and records the result. The request
 * holds the secret, so it goes to the network and nowhere else: never log it.
 */
import type { CheckedCredential, CredentialError } from "./credential.js";
import { conditionHolds } from "./credential.js";
import { fillPlaceholders, parsePlaceholders } from "./placeholder.js";
import type { ConnectionTest, HttpTest, Template } from "./schema.js";

/** One HTTP request, ready to send. */
export interface HttpTestRequest {
  method: HttpTest["method"];
  url: string;
  headers: Record<string, string>;
  /** `application/x-www-form-urlencoded`, when the test has a form. */
  body?: string;
  /** Skip TLS certificate checks (the credential's insecure field says "true"). */
  insecureTls: boolean;
  okStatus: readonly number[];
}

/** A credential's values as one map, secret and visible. */
export function credentialValues(c: CheckedCredential): Map<string, string> {
  return new Map([...Object.entries(c.visible), ...Object.entries(c.secret)]);
}

/** The first test of `template` whose `when` holds for `values`, or undefined (none applies). */
export function connectionTestFor(
  template: Template,
  values: ReadonlyMap<string, string>,
): ConnectionTest | undefined {
  return template.tests.find((t) => conditionHolds(t.when, values));
}

/**
 * The request for `test` with `values`. `baseUrl` overrides the template's base URL for this
 * run (a proxy, a mock in a test). Returns an error naming the field a placeholder needed and
 * did not get, or the part of the request that came out malformed; never a value.
 */
export function buildHttpRequest(
  test: HttpTest,
  values: ReadonlyMap<string, string>,
  opts: { baseUrl?: string } = {},
): HttpTestRequest | { error: CredentialError } {
  const fill = (where: string, tpl: string, encode: (v: string) => string) => {
    const parts = parsePlaceholders(tpl);
    if (typeof parts === "string") return { error: { path: where, reason: parts } };
    const r = fillPlaceholders(parts, values, encode);
    if ("missing" in r)
      return { error: { path: r.missing, reason: `is needed by the test's ${where}` } };
    return r;
  };
  const base = fill("baseUrl", opts.baseUrl ?? test.baseUrl, (v) => v);
  if ("error" in base) return base;
  // A value in the path is percent-encoded but keeps its slashes (a test path field).
  const path = fill("path", test.path, (v) => encodeURIComponent(v).replace(/%2F/gi, "/"));
  if ("error" in path) return path;
  let url: URL;
  try {
    url = new URL(base.text.replace(/\/+$/, "") + path.text);
  } catch {
    return { error: { path: "baseUrl", reason: "does not make an absolute URL" } };
  }
  if (url.protocol !== "https:" && url.protocol !== "http:") {
    return { error: { path: "baseUrl", reason: "must be an http:// or https:// URL" } };
  }
  const headers: Record<string, string> = {};
  for (const [name, tpl] of Object.entries(test.headers)) {
    const h = fill(`headers.${name}`, tpl, (v) => v);
    if ("error" in h) return h;
    if (/[\r\n\0]/.test(h.text)) {
      return { error: { path: `headers.${name}`, reason: "must not contain line breaks or NUL" } };
    }
    headers[name] = h.text;
  }
  const auth = test.auth;
  if (auth.type === "header" || auth.type === "query") {
    const name = fill("auth.name", auth.name, (v) => v);
    if ("error" in name) return name;
    const value = fill("auth.value", auth.value, (v) => v);
    if ("error" in value) return value;
    if (auth.type === "query") url.searchParams.set(name.text, value.text);
    else if (!/^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$/.test(name.text)) {
      return { error: { path: "auth.name", reason: "is not an HTTP header name once filled" } };
    } else if (/[\r\n\0]/.test(value.text)) {
      return { error: { path: "auth.value", reason: "must not contain line breaks or NUL" } };
    } else headers[name.text] = value.text;
  } else if (auth.type === "basic") {
    const user = values.get(auth.userField);
    const pass = values.get(auth.passwordField);
    if (user === undefined)
      return { error: { path: auth.userField, reason: "is needed by the test's auth" } };
    if (pass === undefined)
      return { error: { path: auth.passwordField, reason: "is needed by the test's auth" } };
    headers.Authorization = `Basic ${Buffer.from(`${user}:${pass}`, "utf8").toString("base64")}`;
  }
  let body: string | undefined;
  if (test.form !== undefined) {
    const form = new URLSearchParams();
    for (const [k, tpl] of Object.entries(test.form)) {
      const v = fill(`form.${k}`, tpl, (x) => x);
      if ("error" in v) return v;
      form.set(k, v.text);
    }
    body = form.toString();
    headers["Content-Type"] = "application/x-www-form-urlencoded";
  }
  const insecureTls = test.insecureField !== undefined && values.get(test.insecureField) === "true";
  return {
    method: test.method,
    url: url.toString(),
    headers,
    ...(body === undefined ? {} : { body }),
    insecureTls,
    okStatus: test.okStatus,
  };
}
