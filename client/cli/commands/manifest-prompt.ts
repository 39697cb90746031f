import { readFileSync } from "node:fs";
import type { EntryStatus } from "../../../proto/gen/vmauth/v1/manifest_pb.js";
import { EntryState } from "../../../proto/gen/vmauth/v1/manifest_pb.js";
import { DotenvError, parseDotenv } from "../../dotenv.js";
import type { VmAuthClient } from "../../index.js";
import { defineClientCommand } from "../command.js";
import { redact } from "../errors.js";
import { readValue } from "../input.js";
import { line, note, printJson } from "../output.js";

/** An entry id (server/secrets/manifest/validate.ts): only such a string is repeated in a message. */
const ENTRY_ID = /^[a-z][a-z0-9_]{0,31}$/;

/** How many times a terminal prompt asks again after a value that does not match. */
const ATTEMPTS = 3;

/** What prompting needs of an entry, read from the manifest as recorded. */
interface Entry {
  id: string;
  class: string;
  env: string;
  label: string;
  description: string;
  format: string;
  /** Whether a person gives its value: user_prompt, or infrastructure made neither way. */
  providable: boolean;
  /** Where it stands now: missing or malformed at any VM counts. */
  state: "configured" | "missing" | "malformed";
}

interface Provided {
  id: string;
  secret: string;
  version: number;
  revision: number;
}

/**
 * `manifest prompt NAME`: asks for each user_prompt entry of a recorded manifest that is
 * missing or malformed, in manifest order, on the terminal without echo ("label
 * (description)"); a value is checked against the entry's format here first (the whole value,
 * `^(?:format)$`, `u` flag) and asked again, up to 3 times, before secretsd stores it and
 * checks it again. Stdin that is not a terminal holds one line per such entry, in order; a
 * value that does not match fails before anything is stored. `--id ID` provides that entry
 * only, configured or not (also a host-only infrastructure entry that secretsd neither
 * generates nor fetches). `--from FILE` reads the values from a filled-in `manifest template`
 * (env or json; empty values are left alone) instead of asking.
 */
export default defineClientCommand({
  meta: {
    name: "prompt",
    description: "ask for each missing user_prompt value without echo, check its format, store it",
  },
  args: {
    name: { type: "positional", required: true, description: "the manifest's name" },
    id: {
      type: "string",
      description: "provide this entry only, even when it is configured (replaces its value)",
    },
    from: {
      type: "string",
      valueHint: "file",
      description: "read the values from a filled-in `manifest template` (env or json)",
    },
  },
  async run({ args, client, json }) {
    const entries = await entriesOf(client, args.name);
    let pending: Entry[];
    if (args.id !== undefined) {
      const e = entries.find((x) => x.id === args.id);
      if (!e) throw new Error(`id: no entry ${shown(args.id, ENTRY_ID)} in manifest ${args.name}`);
      // Refused before anything is asked; secretsd refuses it the same way.
      if (!e.providable)
        throw new Error(`id: entry '${e.id}' is ${e.class}: secretsd makes its value`);
      pending = [e];
    } else {
      pending = entries.filter((e) => e.class === "user_prompt" && e.state !== "configured");
    }
    const provided: Provided[] = [];
    const provide = async (e: Entry, value: string) => {
      const r = await client.manifests.provideManifestValue({
        manifest: args.name,
        id: e.id,
        value,
      });
      const p = { id: e.id, secret: r.secret, version: r.version, revision: Number(r.revision) };
      provided.push(p);
      if (!json) line(`provided ${p.id}: ${p.secret} version ${p.version}`);
    };
    if (pending.length === 0) {
      if (!json) line(`nothing to provide: every user_prompt entry of ${args.name} is configured`);
    } else if (args.from !== undefined) {
      const values = fromFile(args.from, args.name, entries, pending);
      for (const [e, v] of values) await provide(e, v);
      const left = pending.filter((e) => !values.has(e)).map((e) => e.id);
      if (left.length > 0) note(`not in ${args.from} (or empty): ${left.join(", ")}`);
    } else if (process.stdin.isTTY) {
      for (const e of pending) await provide(e, await ask(e));
    } else {
      for (const [e, v] of await fromStdin(pending)) await provide(e, v);
    }
    if (json) printJson({ manifest: args.name, provided });
  },
});

// --- internal ---

/** The entries of a recorded manifest, in order, each with where it stands now. */
async function entriesOf(client: VmAuthClient, name: string): Promise<Entry[]> {
  const { text } = await client.manifests.getManifest({ name });
  const { entries: rows } = await client.manifests.manifestStatus({ name });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`manifest ${name}: secretsd sent a manifest that is not JSON`);
  }
  const list =
    typeof doc === "object" && doc !== null ? (doc as { entries?: unknown }).entries : [];
  if (!Array.isArray(list)) throw new Error(`manifest ${name}: secretsd sent no entries`);
  return list.map((raw: unknown) => {
    const e = (typeof raw === "object" && raw !== null ? raw : {}) as Record<string, unknown>;
    const str = (k: string) => (typeof e[k] === "string" ? (e[k] as string) : "");
    const id = str("id");
    const made = e.generator !== undefined || e.fetch !== undefined;
    return {
      id,
      class: str("class"),
      providable: str("class") === "user_prompt" || (str("class") === "infrastructure" && !made),
      env: str("env"),
      label: str("label") || id,
      description: str("description"),
      format: str("format"),
      state: stateOf(rows.filter((r) => r.id === id)),
    };
  });
}

/**
 * One state for an entry over its VMs. No row at all (a group with no VM yet) counts as
 * missing: secretsd reports per VM, and asking is how a value gets there.
 */
function stateOf(rows: readonly EntryStatus[]): Entry["state"] {
  if (rows.some((r) => r.state === EntryState.MALFORMED)) return "malformed";
  if (rows.length === 0 || rows.some((r) => r.state !== EntryState.CONFIGURED)) return "missing";
  return "configured";
}

/** Why `value` cannot be `e`'s, or undefined. Never quotes the value. */
function problemOf(e: Entry, value: string): string | undefined {
  if (value === "") return "is empty";
  if (e.format === "") return undefined;
  let re: RegExp;
  try {
    re = new RegExp(`^(?:${e.format})$`, "u");
  } catch {
    return undefined; // secretsd accepted the format; let it decide
  }
  return re.test(value) ? undefined : `does not match the format ${e.format}`;
}

/** Asks on the terminal without echo until the value fits, at most ATTEMPTS times. */
async function ask(e: Entry): Promise<string> {
  const about = e.description === "" ? "" : ` (${oneLine(e.description)})`;
  for (let attempt = 1; ; attempt++) {
    const value = await readValue(undefined, `${oneLine(e.label)}${about}`);
    const problem = problemOf(e, value);
    if (problem === undefined) return value;
    if (attempt === ATTEMPTS) {
      throw new Error(
        `value: ${e.id}: ${problem} (${ATTEMPTS} attempts); nothing was stored for it`,
      );
    }
    note(`${e.id}: the value ${problem}; try again (${attempt + 1} of ${ATTEMPTS})`);
  }
}

/** One line of stdin per pending entry, in order; all are checked before any is stored. */
async function fromStdin(pending: readonly Entry[]): Promise<Map<Entry, string>> {
  const lines = (await readValue(undefined, "values")).split(/\r?\n/);
  for (const l of lines) redact(l);
  if (lines.length !== pending.length) {
    throw new Error(
      `stdin: has ${lines.length} line${lines.length === 1 ? "" : "s"}; ${pending.length} entr${pending.length === 1 ? "y needs" : "ies need"} one each, in this order: ${pending.map((e) => e.id).join(", ")}`,
    );
  }
  const values = new Map<Entry, string>();
  pending.forEach((e, i) => {
    const v = lines[i] as string;
    const problem = problemOf(e, v);
    if (problem !== undefined) {
      throw new Error(`stdin: line ${i + 1}: ${e.id}: the value ${problem}; nothing was stored`);
    }
    values.set(e, v);
  });
  return values;
}

/**
 * The values of a filled-in template, for the pending entries: json keys are entry ids, env
 * names are the entries' env vars. Empty values are skipped; all are checked before any is
 * stored.
 */
function fromFile(
  file: string,
  name: string,
  entries: readonly Entry[],
  pending: readonly Entry[],
): Map<Entry, string> {
  let text: string;
  try {
    text = readFileSync(file, "utf8").replace(/^\uFEFF/, "");
  } catch (err) {
    throw new Error(
      `from: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  const given = text.trimStart().startsWith("{")
    ? jsonValues(file, name, entries, text)
    : envValues(file, name, entries, text);
  const values = new Map<Entry, string>();
  for (const [e, v] of given) {
    redact(v);
    if (v === "") continue;
    if (!pending.includes(e)) {
      // Not asked for: configured (say so), or not the entry --id names (say nothing).
      if (e.state === "configured")
        note(`${e.id} is configured; skipped (--id ${e.id} replaces it)`);
      continue;
    }
    const problem = problemOf(e, v);
    if (problem !== undefined) {
      throw new Error(`${file}: ${e.id}: the value ${problem}; nothing was stored`);
    }
    values.set(e, v);
  }
  return values;
}

function jsonValues(
  file: string,
  name: string,
  entries: readonly Entry[],
  text: string,
): [Entry, string][] {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    // JSON.parse's message quotes the text, which holds values.
    throw new Error(`${file}: is not valid JSON`);
  }
  if (typeof doc !== "object" || doc === null || Array.isArray(doc)) {
    throw new Error(`${file}: must be a JSON object of entry id to value`);
  }
  const out: [Entry, string][] = [];
  for (const [k, v] of Object.entries(doc)) {
    if (k.startsWith("_")) continue;
    const e = entries.find((x) => x.id === k);
    if (!e) throw new Error(`${file}: no entry ${shown(k, ENTRY_ID)} in manifest ${name}`);
    if (typeof v !== "string") throw new Error(`${file}: ${k}: the value must be a string`);
    out.push([e, v]);
  }
  return out;
}

function envValues(
  file: string,
  name: string,
  entries: readonly Entry[],
  text: string,
): [Entry, string][] {
  let parsed: ReturnType<typeof parseDotenv>;
  try {
    parsed = parseDotenv(text);
  } catch (err) {
    if (err instanceof DotenvError) throw new Error(`${file}: ${err.message}`);
    throw err;
  }
  const out: [Entry, string][] = [];
  for (const a of parsed) {
    redact(a.value);
    const e = entries.find((x) => x.env !== "" && x.env === a.name);
    if (!e) {
      const what = shown(a.name, /^[A-Z_][A-Z0-9_]{0,63}$/);
      note(`${file}: line ${a.line}: ${what} is no entry's env var in manifest ${name}; ignored`);
      continue;
    }
    out.push([e, a.value]);
  }
  return out;
}

/**
 * A key named in a message only when it looks like an id or env var name: a mistyped file may
 * hold a value where a key belongs.
 */
function shown(key: string, looks: RegExp): string {
  return looks.test(key) ? `'${key}'` : "(not repeated: it is no id or env var name)";
}

/** Text for a one-line prompt: control characters become spaces. */
function oneLine(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: replacing control characters is the point
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, " ");
}
