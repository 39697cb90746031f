/**
 * Format regexes (issue #11: "a format regex cannot hang the daemon"). Two defences:
 *
 * 1. `checkFormatSource`, when a manifest is validated, refuses sources a backtracking engine can
 *    take exponential time on (the rules are listed on the function).
 * 2. `matchesFormat` bounds the input (64 KiB) and runs the match in a `node:vm` context with a
 *    timeout, so a regex that slipped past the static check (polynomial ones like `\d*\d*` do:
 *    they are not refused) still gives up after FORMAT_TIMEOUT_MS and counts as not matching.
 *
 * A format matches the WHOLE value: it runs as `^(?:format)$` with the `u` flag.
 */
import vm from "node:vm";
import { invalidArgument } from "../../errors.js";

/** Longest accepted format source, in characters. */
export const MAX_FORMAT_SOURCE = 512;
/** Longest value a format is run on, in UTF-8 bytes (the secret value limit). */
export const MAX_FORMAT_INPUT_BYTES = 64 * 1024;
/** How long one match may run before it counts as not matching. */
export const FORMAT_TIMEOUT_MS = 50;

/** The outcome of a format check; `reason` names the problem, never the value. */
export interface FormatResult {
  ok: boolean;
  reason?: string;
}

/**
 * Throws INVALID_ARGUMENT naming `path` unless `source` is an acceptable format. Refused:
 * - an empty source, or one longer than MAX_FORMAT_SOURCE characters;
 * - anything `new RegExp(source, "u")` rejects;
 * - backreferences (`\1`..`\9`, `\k<name>`);
 * - lookahead and lookbehind (`(?=`, `(?!`, `(?<=`, `(?<!`);
 * - a repeating quantifier (`*`, `+`, `{n,}`, `{n,m}` with m >= 2, `{n}` with n >= 2, lazy or
 *   not) applied to a group (capturing, named or not) that contains, at any depth, a quantifier
 *   (including `?`) or an alternation `|`: `(a+)+`, `(a*)*`, `(a|a)*`, `(\w+\s?)*`, `(ab?){2}`.
 *   Exponential backtracking needs such a loop. A group repeated at most once (`?`, `{0,1}`,
 *   `{1}`) may contain anything, so `sk-[a-z]+(-[a-z]+)?` passes.
 * Not refused: adjacent overlapping quantifiers (`\d*\d*`), which are polynomial; the input
 * bound and the timeout of `matchesFormat` cover them.
 */
export function checkFormatSource(path: string, source: string): void {
  const problem = sourceProblem(source);
  if (problem !== undefined) throw invalidArgument(path, problem);
}

/**
 * Whether `value` matches `source` as a whole. Never throws: an unsafe or invalid source, a
 * value over MAX_FORMAT_INPUT_BYTES and a match that runs past FORMAT_TIMEOUT_MS all give
 * `ok: false` with a reason ("format check timed out" for the last).
 */
export function matchesFormat(source: string, value: string): FormatResult {
  const problem = cachedProblem(source);
  if (problem !== undefined) return { ok: false, reason: `format is refused: ${problem}` };
  return matchFormatUnchecked(source, value);
}

/**
 * `matchesFormat` without the static check: only the input bound and the vm timeout stand
 * between the regex and the event loop. Exported so a test can prove the timeout holds on a
 * regex the static check would refuse; everything else calls `matchesFormat`.
 */
export function matchFormatUnchecked(
  source: string,
  value: string,
  timeoutMs = FORMAT_TIMEOUT_MS,
): FormatResult {
  // length first: byteLength >= length, and a huge value is refused without a scan.
  if (value.length > MAX_FORMAT_INPUT_BYTES || Buffer.byteLength(value) > MAX_FORMAT_INPUT_BYTES) {
    return { ok: false, reason: `value is over ${MAX_FORMAT_INPUT_BYTES} bytes` };
  }
  const ctx = sandbox();
  ctx.src = source;
  ctx.val = value;
  try {
    const ok = MATCH.runInContext(ctx, { timeout: timeoutMs }) === true;
    return ok ? { ok } : { ok, reason: "does not match the format" };
  } catch (err) {
    if ((err as { code?: unknown }).code === "ERR_SCRIPT_EXECUTION_TIMEOUT") {
      return { ok: false, reason: "format check timed out" };
    }
    return { ok: false, reason: "format is not a valid regex" };
  } finally {
    // The value must not linger in the context after the call.
    ctx.val = undefined;
  }
}

// --- internal ---

/**
 * Runs inside the sandbox: compiled regexes are cached there (they belong to its realm).
 * The empty match afterwards resets the realm's legacy `RegExp.input`/`$_`, which would
 * otherwise keep the last value matched.
 */
const MATCH = new vm.Script(`(() => {
  let re = cache.get(src);
  if (re === undefined) {
    re = new RegExp("^(?:" + src + ")$", "u");
    if (cache.size >= 128) cache.clear();
    cache.set(src, re);
  }
  const ok = re.test(val);
  /(?:)/.exec("");
  return ok;
})()`);

let context: vm.Context | undefined;

/** One reusable context, made on first use; no eval or wasm inside it. */
function sandbox(): vm.Context {
  if (context === undefined) {
    context = vm.createContext(
      { cache: undefined, src: "", val: undefined },
      { codeGeneration: { strings: false, wasm: false } },
    );
    vm.runInContext("cache = new Map()", context);
  }
  return context;
}

/** Static-check outcomes of sources already seen (`null`: safe), so a match does not re-parse. */
const checked = new Map<string, string | null>();

function cachedProblem(source: string): string | undefined {
  let problem = checked.get(source);
  if (problem === undefined) {
    problem = sourceProblem(source) ?? null;
    if (checked.size >= 256) checked.clear();
    checked.set(source, problem);
  }
  return problem ?? undefined;
}

/** The first reason `source` is refused, or undefined. */
function sourceProblem(source: string): string | undefined {
  if (source === "") return "must not be empty (leave format out to accept any value)";
  if (source.length > MAX_FORMAT_SOURCE) {
    return `is ${source.length} characters; the limit is ${MAX_FORMAT_SOURCE}`;
  }
  try {
    new RegExp(source, "u");
  } catch (err) {
    return `invalid regex: ${(err as Error).message}`;
  }
  const unsafe = scan(source);
  return unsafe === undefined ? undefined : `unsafe regex: ${unsafe}`;
}

/** What a group contains, at any depth. */
interface Group {
  quantifier: boolean;
  alternation: boolean;
}

/**
 * One pass over a source that already compiles with the `u` flag (so groups balance, `{` is
 * always a quantifier and `\<digit>` is always a backreference).
 */
function scan(src: string): string | undefined {
  const stack: Group[] = [{ quantifier: false, alternation: false }];
  let closed: Group | undefined; // the group just closed, when it is the previous atom
  let i = 0;
  while (i < src.length) {
    const top = stack[stack.length - 1] as Group;
    const c = src[i] as string;
    const q = quantifierAt(src, i);
    if (q !== undefined) {
      top.quantifier = true;
      if (q.repeats && closed !== undefined && (closed.quantifier || closed.alternation)) {
        const what = closed.quantifier ? "a quantifier" : "an alternation '|'";
        const kind = closed.quantifier ? "nested quantifier" : "quantified alternation";
        return `${kind}: '${src.slice(i, q.end)}' at offset ${i} repeats a group containing ${what}`;
      }
      closed = undefined;
      i = q.end;
      continue;
    }
    closed = undefined;
    if (c === "\\") {
      const n = src[i + 1] ?? "";
      if (/[1-9]/.test(n)) return `backreference '\\${n}' at offset ${i}`;
      if (n === "k") return `named backreference at offset ${i}`;
      // \u{...}, \p{...}, \P{...}: skip the braces, which are not a quantifier
      i = "upP".includes(n) && src[i + 2] === "{" ? after(src, "}", i) : i + 2;
    } else if (c === "[") {
      i = classEnd(src, i);
    } else if (c === "(") {
      const look = /^\(\?<?[=!]/.exec(src.slice(i, i + 4));
      if (look) return `lookaround '${look[0]}' at offset ${i} (lookahead and lookbehind)`;
      stack.push({ quantifier: false, alternation: false });
      i = groupBodyStart(src, i);
    } else if (c === ")") {
      closed = stack.pop() as Group;
      const parent = stack[stack.length - 1] as Group;
      parent.quantifier ||= closed.quantifier;
      parent.alternation ||= closed.alternation;
      i++;
    } else {
      if (c === "|") top.alternation = true;
      i++;
    }
  }
  return undefined;
}

/** The quantifier starting at `i`, with whether it can repeat its atom more than once. */
function quantifierAt(src: string, i: number): { end: number; repeats: boolean } | undefined {
  const c = src[i];
  let end = i + 1;
  let repeats: boolean;
  if (c === "*" || c === "+") repeats = true;
  else if (c === "?") repeats = false;
  else if (c === "{") {
    const m = /^\{(\d+)(,(\d*))?\}/.exec(src.slice(i));
    if (!m) return undefined;
    const min = Number(m[1]);
    const max = m[2] === undefined ? min : m[3] === "" ? Number.POSITIVE_INFINITY : Number(m[3]);
    repeats = max > 1;
    end = i + m[0].length;
  } else return undefined;
  if (src[end] === "?") end++; // lazy
  return { end, repeats };
}

/** Index after the `]` closing the class opened at `i` (u mode: no nesting, `\]` escapes). */
function classEnd(src: string, i: number): number {
  let j = i + 1;
  while (j < src.length && src[j] !== "]") j += src[j] === "\\" ? 2 : 1;
  return j + 1;
}

/** Index of the first character inside the group opened at `i`: `(`, `(?:`, `(?<name>`, `(?i:`. */
function groupBodyStart(src: string, i: number): number {
  if (src[i + 1] !== "?") return i + 1;
  return after(src, src[i + 2] === "<" ? ">" : ":", i);
}

/** Index after the first `ch` from `i`; the end when there is none, so a scan always advances. */
function after(src: string, ch: string, i: number): number {
  const j = src.indexOf(ch, i);
  return j < 0 ? src.length : j + 1;
}
