/**
 * One field value against its field: type, options, format and content check. Returns the
 * reason it is refused, or undefined. A reason names what was expected, never the value: the
 * value may be a key pasted into the wrong field.
 */
import { type FormatResult, matchesFormat } from "../manifest/format.js";
import type { ContentCheck, Template, TemplateField } from "./schema.js";

/** Values are at most 64 KiB, like any secret value (validate.ts checkValue). */
export const MAX_FIELD_VALUE_BYTES = 64 * 1024;

/**
 * Why `value` is not acceptable for `field`, or undefined when it is. Never throws.
 *
 * `trusted` (by default: the field is one `trustFormats` was given) is for the built-ins' own
 * formats: written here, linear, and matched with a plain
 * RegExp. Every other format (a user template's) runs in manifest/format.ts's sandbox with its
 * 50 ms budget, so a slow regex cannot hang the daemon; the built-ins skip it so that a busy
 * host (a descheduled thread outlasting the budget) can never refuse a good key or fail the
 * validation of the catalogue at start.
 */
export function fieldValueProblem(
  field: TemplateField,
  value: string,
  trusted = trustedFields.has(field),
): string | undefined {
  if (value.includes("\0")) return "must not contain NUL";
  const bytes = Buffer.byteLength(value, "utf8");
  if (bytes > MAX_FIELD_VALUE_BYTES) {
    return `is ${bytes} bytes; the limit is ${MAX_FIELD_VALUE_BYTES}`;
  }
  const typed = typeProblem(field, value);
  if (typed !== undefined) return typed;
  if (field.format !== undefined) {
    const r = trusted ? matchTrusted(field.format, value) : matchSandboxed(field.format, value);
    if (!r.ok) {
      if (r.reason === "does not match the format" && field.formatHint !== undefined) {
        return `does not match the format: ${field.formatHint}`;
      }
      return r.reason ?? "does not match the format";
    }
  }
  return field.check === undefined ? undefined : contentProblem(field.check, value);
}

/**
 * Marks the fields of `template` (a built-in, by object identity: a user template with the same
 * content is not marked) as having trusted formats. Only registry.ts calls it.
 */
export function trustFormats(template: Template): void {
  for (const f of template.fields) trustedFields.add(f);
}

/** True when `s` holds a C0 control character or DEL (terminal escapes, line breaks). */
export function hasControlChars(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

// --- internal ---

function matchSandboxed(source: string, value: string): FormatResult {
  const r = matchesFormat(source, value);
  // One retry: a GC pause or a descheduled thread can outlast the budget on a linear regex
  // (seen at load 5 on 2 cores); a regex that is really slow times out again.
  return r.reason === "format check timed out" ? matchesFormat(source, value) : r;
}

const trustedFields = new WeakSet<TemplateField>();

/** Compiled built-in formats, whole-value and `u` like manifest/format.ts. */
const trustedRegexes = new Map<string, RegExp>();

function matchTrusted(source: string, value: string): FormatResult {
  let re = trustedRegexes.get(source);
  if (re === undefined) {
    re = new RegExp(`^(?:${source})$`, "u");
    trustedRegexes.set(source, re);
  }
  return re.test(value) ? { ok: true } : { ok: false, reason: "does not match the format" };
}

function typeProblem(field: TemplateField, value: string): string | undefined {
  switch (field.type) {
    case "text":
      return hasControlChars(value) ? "must be one line without control characters" : undefined;
    case "secret":
      return undefined;
    case "select": {
      const options = field.options ?? [];
      return options.includes(value) ? undefined : `must be one of: ${options.join(", ")}`;
    }
    case "url":
      return urlProblem(value);
    case "port":
      return /^[1-9][0-9]{0,4}$/.test(value) && Number(value) <= 65535
        ? undefined
        : "must be a port number 1 to 65535";
    case "json":
      return parseJson(value) === undefined ? "must be valid JSON" : undefined;
  }
}

function urlProblem(value: string): string | undefined {
  if (/\s/.test(value) || hasControlChars(value))
    return "must be a URL without spaces or control characters";
  let u: URL;
  try {
    u = new URL(value);
  } catch {
    return "must be an absolute URL (https://host[:port][/path])";
  }
  if (u.protocol !== "https:" && u.protocol !== "http:")
    return "must be an http:// or https:// URL";
  // A URL with user:password@ would put a credential in visible metadata.
  if (u.username !== "" || u.password !== "") return "must not contain user:password@";
  return undefined;
}

function contentProblem(check: ContentCheck, value: string): string | undefined {
  return check === "gcp_service_account" ? gcpProblem(value) : kubeconfigProblem(value);
}

/** The keys google-auth reads from a service-account key file. */
function gcpProblem(value: string): string | undefined {
  const doc = parseJson(value);
  if (doc === undefined || typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    return "must be a service-account key file (a JSON object)";
  }
  const o = doc as Record<string, unknown>;
  if (o.type !== "service_account") return 'must have "type": "service_account"';
  if (typeof o.client_email !== "string" || !/^[^@\s]+@[^@\s]+$/.test(o.client_email)) {
    return "must have a client_email";
  }
  const pem = o.private_key;
  if (typeof pem !== "string" || !/-----BEGIN (RSA )?PRIVATE KEY-----/.test(pem)) {
    return "must have a PEM private_key";
  }
  return undefined;
}

/**
 * A kubeconfig without a YAML parser: JSON is parsed and checked; YAML is checked for the
 * top-level keys kubectl needs (clusters with a server, users, contexts) and for tabs, which
 * YAML forbids in indentation. Enough to catch a wrong file pasted in, not a full parse.
 */
function kubeconfigProblem(value: string): string | undefined {
  const text = value.replace(/^\uFEFF/, "");
  if (text.trimStart().startsWith("{")) {
    const doc = parseJson(text) as Record<string, unknown> | undefined;
    if (doc === undefined || typeof doc !== "object" || doc === null) {
      return "must be a kubeconfig (JSON or YAML)";
    }
    for (const k of ["clusters", "users", "contexts"]) {
      if (!Array.isArray(doc[k]) || (doc[k] as unknown[]).length === 0) {
        return `must be a kubeconfig: ${k} is missing or empty`;
      }
    }
    return undefined;
  }
  if (/^\t/m.test(text)) return "must be a kubeconfig: YAML indentation must not use tabs";
  for (const k of ["clusters", "users", "contexts"]) {
    if (!new RegExp(`^${k}:`, "m").test(text)) {
      return `must be a kubeconfig: no top-level ${k}:`;
    }
  }
  if (!/^\s*-?\s*server:\s*\S/m.test(text)) return "must be a kubeconfig: no cluster server:";
  return undefined;
}

function parseJson(value: string): unknown {
  try {
    return JSON.parse(value);
  } catch {
    return undefined;
  }
}
