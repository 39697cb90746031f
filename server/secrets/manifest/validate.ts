/**
 * Manifest validation (issue #11): a bad manifest is refused WHOLE, on its first problem, with
 * INVALID_ARGUMENT whose message starts with the path of the offending field
 * (`entries[2].generator.length: must be 8 to 4096`). Messages name ids, keys and env vars but
 * never repeat a description, a label, a command's arguments or a file path.
 */
import cron from "node-cron";
import { invalidArgument } from "../../errors.js";
import { checkEnvPolicy } from "../env-policy.js";
import { checkEnvName } from "../validate.js";
import { checkFormatSource } from "./format.js";
import {
  CHARSETS,
  ENTRY_CLASSES,
  type EntryClass,
  type FetchSpec,
  type Generator,
  MANIFEST_LIMITS as L,
  type Manifest,
  type ManifestEntry,
} from "./schema.js";

const MANIFEST_NAME = /^[a-z][a-z0-9-]{0,23}$/;
const ENTRY_ID = /^[a-z][a-z0-9_]{0,31}$/;
/** Known keys, in stored order; `keysOf` fails to compile when a list and its type drift apart. */
const MANIFEST_KEYS = keysOf<Manifest>({ name: 1, description: 1, entries: 1 });
const ENTRY_KEYS = keysOf<ManifestEntry>({
  id: 1,
  class: 1,
  env: 1,
  description: 1,
  label: 1,
  format: 1,
  required: 1,
  generator: 1,
  fetch: 1,
  rotate: 1,
});
const FETCH_KEYS = keysOf<FetchSpec>({ command: 1, file: 1, intervalMs: 1, timeoutMs: 1 });

/** Per class: whether `generator` and `fetch` are required, allowed or refused. */
const SOURCES: Record<EntryClass, { generator: Need; fetch: Need }> = {
  per_install_generated: { generator: "required", fetch: "refused" },
  user_prompt: { generator: "refused", fetch: "refused" },
  infrastructure: { generator: "optional", fetch: "optional" },
  remote_fetch: { generator: "refused", fetch: "required" },
};
type Need = "required" | "optional" | "refused";

/**
 * Parses manifest text. JSON only (YAML would need a new dependency): anything that is not a
 * JSON object is refused saying so. Text over 256 KiB is refused before parsing. `source`
 * names the document in errors about the text as a whole.
 */
export function parseManifest(text: string, source = "manifest"): Manifest {
  const bytes = Buffer.byteLength(text, "utf8");
  if (bytes > L.maxTextBytes) {
    throw invalidArgument(source, `is ${bytes} bytes; the limit is ${L.maxTextBytes}`);
  }
  const hint = "a manifest is a JSON object (YAML is not supported)";
  if (!text.trimStart().startsWith("{")) throw invalidArgument(source, `JSON is expected: ${hint}`);
  let obj: unknown;
  try {
    obj = JSON.parse(text.replace(/^\uFEFF/, "")); // an editor's byte order mark is not an error
  } catch (err) {
    throw invalidArgument(source, `is not valid JSON${jsonWhere(text, err)}: ${hint}`);
  }
  return validateManifest(obj);
}

/**
 * Validates an already-parsed manifest and returns it in its stored form: known keys only, in a
 * fixed order, defaults filled in (description "", required true, label = id for user_prompt,
 * charset alnum, fetch intervalMs 300000 and timeoutMs 10000). Throws INVALID_ARGUMENT on the
 * first problem, naming its path.
 */
export function validateManifest(obj: unknown): Manifest {
  const o = record("manifest", obj, MANIFEST_KEYS, "");
  const name = str("name", o.name);
  if (!MANIFEST_NAME.test(name)) {
    throw invalidArgument("name", `'${clip(name)}' must match ${MANIFEST_NAME.source}`);
  }
  const description = text("description", o.description, L.maxDescription, true);
  if (!Array.isArray(o.entries)) throw invalidArgument("entries", mustBe("an array", o.entries));
  const n = o.entries.length;
  if (n < 1 || n > L.maxEntries) {
    throw invalidArgument("entries", `must have 1 to ${L.maxEntries} entries (got ${n})`);
  }
  const ids = new Map<string, string>();
  const envs = new Map<string, string>();
  const entries = o.entries.map((e, i) => entry(`entries[${i}]`, e, ids, envs));
  return { name, description, entries };
}

// --- internal ---

/** One entry; `ids` and `envs` map what earlier entries claimed to their paths. */
function entry(
  path: string,
  v: unknown,
  ids: Map<string, string>,
  envs: Map<string, string>,
): ManifestEntry {
  const o = record(path, v, ENTRY_KEYS, path);
  const id = str(`${path}.id`, o.id);
  if (!ENTRY_ID.test(id)) {
    throw invalidArgument(`${path}.id`, `'${clip(id)}' must match ${ENTRY_ID.source}`);
  }
  claim(ids, `${path}.id`, id, `duplicate id '${id}'`, path);
  const cls = oneOf(`${path}.class`, o.class, ENTRY_CLASSES, "class");
  const env = entryEnv(path, cls, o.env);
  if (env !== undefined) claim(envs, `${path}.env`, env, `duplicate env var ${env}`, path);
  const description = text(`${path}.description`, o.description, L.maxDescription, true);
  let label: string | undefined;
  if (o.label !== undefined) {
    if (cls !== "user_prompt") {
      throw invalidArgument(`${path}.label`, "only a user_prompt entry has a label");
    }
    label = text(`${path}.label`, o.label, L.maxLabel, false);
    if (label === "") throw invalidArgument(`${path}.label`, "must not be empty");
  }
  const format = o.format === undefined ? undefined : str(`${path}.format`, o.format);
  if (format !== undefined) checkFormatSource(`${path}.format`, format);
  const required = o.required === undefined ? true : bool(`${path}.required`, o.required);
  const need = SOURCES[cls];
  const gen = sourceField(path, cls, "generator", need.generator, o.generator, generator);
  const fetch = sourceField(path, cls, "fetch", need.fetch, o.fetch, fetchSpec);
  if (gen !== undefined && fetch !== undefined) {
    throw invalidArgument(`${path}.fetch`, "an entry is generated or fetched, not both");
  }
  const rotate = o.rotate === undefined ? undefined : cronExpr(`${path}.rotate`, o.rotate);
  if (rotate !== undefined && gen === undefined && fetch === undefined) {
    throw invalidArgument(`${path}.rotate`, "only a generated or fetched entry can rotate");
  }
  return {
    id,
    class: cls,
    ...(env === undefined ? {} : { env }),
    description,
    ...(cls === "user_prompt" ? { label: label ?? id } : {}),
    ...(format === undefined ? {} : { format }),
    required,
    ...(gen === undefined ? {} : { generator: gen }),
    ...(fetch === undefined ? {} : { fetch }),
    ...(rotate === undefined ? {} : { rotate }),
  };
}

/** The env var: required except for infrastructure, where it is refused; never a sensitive name. */
function entryEnv(path: string, cls: EntryClass, v: unknown): string | undefined {
  const field = `${path}.env`;
  if (cls === "infrastructure") {
    if (v === undefined) return undefined;
    throw invalidArgument(field, "an infrastructure entry never reaches a VM: remove env");
  }
  if (v === undefined) throw invalidArgument(field, `is required for a ${cls} entry`);
  const env = checkEnvName(field, str(field, v));
  try {
    checkEnvPolicy(field, env, false);
  } catch {
    // A manifest has no allow_sensitive_env: the policy's own hint does not apply here.
    throw invalidArgument(
      field,
      `${env} changes how programs load or run on the VM, so a manifest cannot target it`,
    );
  }
  return env;
}

/** `generator` or `fetch`, checked against what the class needs. */
function sourceField<T>(
  path: string,
  cls: EntryClass,
  key: "generator" | "fetch",
  need: Need,
  v: unknown,
  check: (path: string, v: unknown) => T,
): T | undefined {
  const field = `${path}.${key}`;
  if (v === undefined) {
    if (need === "required") throw invalidArgument(field, `is required for a ${cls} entry`);
    return undefined;
  }
  if (need === "refused") throw invalidArgument(field, `a ${cls} entry has no ${key}`);
  return check(field, v);
}

function generator(path: string, v: unknown): Generator {
  const o = record(path, v, ["type", "length", "charset"], path);
  const type = oneOf(`${path}.type`, o.type, ["random", "uuid"] as const, "generator type");
  if (type === "uuid") {
    for (const k of ["length", "charset"] as const) {
      if (o[k] !== undefined) throw invalidArgument(`${path}.${k}`, "a uuid generator has none");
    }
    return { type };
  }
  const length = int(`${path}.length`, o.length, L.minLength, L.maxLength, undefined);
  const charset =
    o.charset === undefined ? "alnum" : oneOf(`${path}.charset`, o.charset, CHARSETS, "charset");
  return { type, length, charset };
}

function fetchSpec(path: string, v: unknown): FetchSpec {
  const o = record(path, v, FETCH_KEYS, path);
  if ((o.command === undefined) === (o.file === undefined)) {
    throw invalidArgument(path, "needs exactly one of command or file");
  }
  const src =
    o.command !== undefined
      ? { command: argv(`${path}.command`, o.command) }
      : { file: absolutePath(`${path}.file`, o.file) };
  const intervalMs = int(
    `${path}.intervalMs`,
    o.intervalMs,
    L.minIntervalMs,
    L.maxIntervalMs,
    L.defaultIntervalMs,
  );
  const timeoutMs = int(
    `${path}.timeoutMs`,
    o.timeoutMs,
    L.minTimeoutMs,
    L.maxTimeoutMs,
    L.defaultTimeoutMs,
  );
  if (timeoutMs > intervalMs) {
    throw invalidArgument(
      `${path}.timeoutMs`,
      `${timeoutMs} is longer than intervalMs ${intervalMs}`,
    );
  }
  return { ...src, intervalMs, timeoutMs };
}

/** argv run without a shell; argv[0] is an absolute path or a bare name looked up in PATH. */
function argv(path: string, v: unknown): string[] {
  if (!Array.isArray(v)) throw invalidArgument(path, mustBe("an array of strings (argv)", v));
  if (v.length < 1 || v.length > L.maxArgs) {
    throw invalidArgument(path, `must have 1 to ${L.maxArgs} elements (got ${v.length})`);
  }
  const args = v.map((a, i) => {
    const s = str(`${path}[${i}]`, a);
    if (s === "" || s.includes("\0") || s.length > L.maxArgChars) {
      throw invalidArgument(
        `${path}[${i}]`,
        `must be 1 to ${L.maxArgChars} characters without NUL`,
      );
    }
    return s;
  });
  const prog = args[0] as string;
  if (/\s/.test(prog)) {
    const why = "there is no shell: put each argument in its own element";
    throw invalidArgument(`${path}[0]`, `contains whitespace; ${why}`);
  }
  if (!prog.startsWith("/") && (prog.includes("/") || prog === "." || prog === "..")) {
    throw invalidArgument(`${path}[0]`, "must be an absolute path or a bare program name");
  }
  return args;
}

function absolutePath(path: string, v: unknown): string {
  const s = str(path, v);
  if (!s.startsWith("/") || s.includes("\0") || s.length > L.maxPathChars) {
    throw invalidArgument(path, `must be an absolute path (at most ${L.maxPathChars}, no NUL)`);
  }
  return s;
}

/** A node-cron expression: 5 or 6 fields, or a nickname node-cron knows (`@daily`). */
function cronExpr(path: string, v: unknown): string {
  const s = str(path, v);
  if (s.length <= L.maxRotateChars && cron.validate(s)) return s;
  let why = s.length > L.maxRotateChars ? `longer than ${L.maxRotateChars}` : "";
  try {
    why ||= cron.validateDetailed(s).errors[0]?.message ?? "";
  } catch {
    // validateDetailed can throw on input validate() rejects; the generic message stands.
  }
  throw invalidArgument(path, `not a valid cron expression${why ? `: ${why}` : ""}`);
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

function str(path: string, v: unknown): string {
  if (typeof v !== "string") throw invalidArgument(path, mustBe("a string", v));
  return v;
}

function bool(path: string, v: unknown): boolean {
  if (typeof v !== "boolean") throw invalidArgument(path, mustBe("a boolean", v));
  return v;
}

/** An integer in [min, max]; `dflt` when absent (undefined: required). */
function int(path: string, v: unknown, min: number, max: number, dflt: number | undefined) {
  if (v === undefined && dflt !== undefined) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw invalidArgument(path, mustBe(`an integer ${min} to ${max}`, v));
  }
  if (v < min || v > max) throw invalidArgument(path, `must be ${min} to ${max}`);
  return v;
}

/** Free text up to `max` characters; control characters refused (newline and tab if `multiline`). */
function text(path: string, v: unknown, max: number, multiline: boolean): string {
  if (v === undefined) return "";
  const s = str(path, v);
  if (s.length > max) throw invalidArgument(path, `is ${s.length} characters; the limit is ${max}`);
  // Shown on terminals by `template` and `prompt`: no escape sequences.
  for (const ch of s) {
    const c = ch.charCodeAt(0);
    if ((c < 0x20 || c === 0x7f) && !(multiline && (ch === "\n" || ch === "\t"))) {
      throw invalidArgument(path, "must not contain control characters");
    }
  }
  return s;
}

function oneOf<T extends string>(path: string, v: unknown, known: readonly T[], what: string): T {
  const s = str(path, v);
  if (!(known as readonly string[]).includes(s)) {
    throw invalidArgument(path, `unknown ${what} '${clip(s)}' (known: ${known.join(", ")})`);
  }
  return s as T;
}

/** Records `key` at `path`, or throws `message (also <earlier path>)` at `field`. */
function claim(seen: Map<string, string>, field: string, key: string, msg: string, path: string) {
  const earlier = seen.get(key);
  if (earlier !== undefined) throw invalidArgument(field, `${msg} (also ${earlier})`);
  seen.set(key, path);
}

function mustBe(what: string, v: unknown): string {
  const got = v === null ? "null" : Array.isArray(v) ? "array" : typeof v;
  return v === undefined ? `is required (${what})` : `must be ${what} (got ${got})`;
}

/** Where JSON.parse stopped, as line:column; its message is not used, since it can quote the text. */
function jsonWhere(text: string, err: unknown): string {
  const m = /at position (\d+)/.exec(err instanceof Error ? err.message : "");
  if (!m) return "";
  const before = text.slice(0, Number(m[1])).split("\n");
  return ` at line ${before.length} column ${(before[before.length - 1]?.length ?? 0) + 1}`;
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
