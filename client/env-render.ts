/**
 * Renders a VM's env (name → value) into the files its services read.
 *
 * Pure: no I/O. Every renderer is deterministic (keys sorted), ends with a newline and never
 * writes a value that its reader would get back different: a value a dialect cannot carry byte
 * for byte is left out of that file and listed in `omitted` (name and reason, never the value).
 * The rules below were read from systemd 252's source (src/basic/env-file.c
 * `parse_env_file_internal`, src/basic/env-util.c `replace_env`, src/basic/utf8.c
 * `unichar_is_valid`, src/basic/escape.c `shell_maybe_quote`) and measured on systemd 252 by
 * test/e2e/env-dialects.test.ts.
 */

/** A variable left out of a rendered file, with why (never its value). */
export interface Omitted {
  name: string;
  reason: string;
}

/** A rendered file. */
export interface Rendered {
  text: string;
  omitted: Omitted[];
}

/** The env to render: a Map or a plain object of env var name → value. */
export type EnvVars = ReadonlyMap<string, string> | Readonly<Record<string, string>>;

/** First line of every file in a systemd or dotenv dialect. */
export const HEADER = "# Managed by vm-auth-shim; do not edit.";

const NAME = /^[A-Z_][A-Z0-9_]*$/;

/** What a value contains, in the terms the dialects care about (one pass over its code points). */
interface Scan {
  nul: boolean;
  loneSurrogate: boolean;
  /** U+FDD0..U+FDEF and U+xxFFFE/U+xxFFFF: systemd's unichar_is_valid() calls them invalid. */
  nonCharacter: boolean;
  /** U+0001..U+001F and U+007F (what systemd's char_is_cc() matches). */
  control: boolean;
}

function scan(value: string): Scan {
  const s: Scan = { nul: false, loneSurrogate: false, nonCharacter: false, control: false };
  for (const ch of value) {
    const cp = ch.codePointAt(0) ?? 0;
    if (cp === 0) s.nul = true;
    else if (cp < 0x20 || cp === 0x7f) s.control = true;
    else if (cp >= 0xd800 && cp <= 0xdfff) s.loneSurrogate = true;
    else if ((cp >= 0xfdd0 && cp <= 0xfdef) || (cp & 0xfffe) === 0xfffe) s.nonCharacter = true;
  }
  return s;
}

/** Reason a var can be in no file at all, or undefined. */
function commonProblem(name: string, s: Scan): string | undefined {
  if (!NAME.test(name)) return "name does not match ^[A-Z_][A-Z0-9_]*$";
  if (s.nul) return "value contains NUL, which no environment can carry";
  if (s.loneSurrogate) return "value has a lone UTF-16 surrogate, so it is not encodable as UTF-8";
  return undefined;
}

type Encode = (value: string, s: Scan, name: string) => string | { omit: string };

function render(vars: EnvVars, header: boolean, encode: Encode): Rendered {
  const entries = vars instanceof Map ? [...vars] : Object.entries(vars);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const lines = header ? [HEADER] : [];
  const omitted: Omitted[] = [];
  for (const [name, value] of entries) {
    const s = scan(value);
    const problem = commonProblem(name, s);
    const out = problem === undefined ? encode(value, s, name) : { omit: problem };
    if (typeof out === "string") lines.push(`${name}=${out}`);
    else omitted.push({ name, reason: out.omit });
  }
  return { text: `${lines.join("\n")}\n`, omitted };
}

const NONCHAR_REASON =
  "value has a Unicode noncharacter (U+FDD0..U+FDEF or U+xxFFFE/U+xxFFFF), which systemd 252 " +
  "rejects as invalid UTF-8";

/**
 * `EnvironmentFile=` dialect (system services; systemd never expands `$` here).
 *
 * Every value is double-quoted; `\`, `"`, `$` and backtick get a backslash
 * (`parse_env_file_internal` unescapes exactly SHELL_NEED_ESCAPE, those four characters, inside
 * double quotes and keeps any other backslash). Everything else is literal, including newline,
 * CR and every other control character: inside double quotes none of them ends the value
 * (measured). The same text is also a valid POSIX-shell double-quoted string. Omitted:
 * noncharacters, because systemd's UTF-8 check (`load_env_file_push` → `utf8_is_valid`) fails
 * the whole file over one of them (with `EnvironmentFile=-` every variable of the file is lost).
 */
export function renderEnvironmentFile(vars: EnvVars): Rendered {
  return render(vars, true, (value, s) => {
    if (s.nonCharacter) return { omit: `${NONCHAR_REASON}; one would fail the whole file` };
    return `"${value.replace(/[\\"$`]/g, "\\$&")}"`;
  });
}

/**
 * `/etc/environment.d/*.conf` dialect, as the systemd user manager passes it to user services.
 *
 * The file is read by `systemd-environment-d-generator` (`merge_env_file`: the same parser, then
 * `replace_env`, which expands `$X`, `${X}`, `${X:-d}`, `${X:+a}` everywhere, even after `\$`;
 * only `$$` yields a literal `$`), which prints each result through `shell_maybe_quote`, and the
 * manager reads that output back with `load_env_file`. So: double quotes, `\` and `"` get a
 * backslash, every `$` becomes `$$`. An empty value is written as `${NAME:+}` (empty whether or
 * not NAME is set) because `NAME=` and `NAME=""` are dropped as "invalid syntax". Omitted:
 * - control characters (U+0001..U+001F, U+007F: newline, CR, tab, …): the generator prints them
 *   C-escaped (`\n`, `\001`) and the manager keeps those escapes as literal text;
 * - noncharacters: systemd rejects them as invalid UTF-8, and the 252 generator then dies of a
 *   double free, which loses every environment.d variable, not just this one.
 */
export function renderEnvironmentD(vars: EnvVars): Rendered {
  return render(vars, true, (value, s, name) => {
    if (s.control) {
      return {
        omit:
          "value has a control character (newline, CR, tab, …): systemd-environment-d-generator " +
          "prints it C-escaped and the user manager does not decode it",
      };
    }
    if (s.nonCharacter) {
      return { omit: `${NONCHAR_REASON}; the 252 generator then crashes and drops all vars` };
    }
    if (value === "") return `\${${name}:+}`;
    return `"${value.replace(/[\\"]/g, "\\$&").replace(/\$/g, "$$$$")}"`;
  });
}

/**
 * JSON object with sorted keys (2-space indent, trailing newline). Carries every value except
 * those no file can carry (NUL, lone surrogates) and invalid names.
 */
export function renderJson(vars: EnvVars): Rendered {
  const obj: Record<string, string> = {};
  const { omitted } = render(vars, false, (value, _s, name) => {
    obj[name] = value;
    return "";
  });
  return { text: `${JSON.stringify(obj, null, 2)}\n`, omitted };
}

const DOTENV_NO_QUOTING =
  "has ' together with \" $ ` or \\ (or a CR, or ends with \\): no quoting reads back the same in " +
  "npm dotenv, a POSIX shell and secretsctl import; use --format shell or json";

/**
 * The `.env` that `secretsctl export` writes (no header: the caller writes its own), read back
 * byte for byte by npm `dotenv`'s parse, by a POSIX shell (`set -a; . ./file`), by Node's
 * `util.parseEnv` and by `secretsctl import` (client/dotenv.ts); a value none of them could
 * agree on is in `omitted`, and export then fails rather than drop it (issue #12):
 * - `'…'`, line breaks written as they are, when the value has no `'`, no CR and does not end
 *   with `\` (all four read single quotes literally; npm dotenv's `'(?:\\'|[^'])*'` would take
 *   a `\` before the closing quote as an escaped quote);
 * - else `"…"`, line breaks as they are, when it has none of `"`, `$`, backquote, `\`, CR
 *   (inside double quotes a shell expands `$` and backquotes and npm dotenv keeps `\"`);
 * - else omitted. npm dotenv reads every CR as a line break, so no CR survives it.
 */
export function renderDotenvPortable(vars: EnvVars): Rendered {
  return render(vars, false, (value) => {
    if (!/['\r]|\\$/.test(value)) return `'${value}'`;
    if (!/["$`\\\r]/.test(value)) return `"${value}"`;
    return { omit: DOTENV_NO_QUOTING };
  });
}

/**
 * `export NAME='…'` lines for `eval "$(secretsctl export VM --format shell)"` or `. file` in
 * any POSIX shell: single quotes are literal, and a `'` is written `'\''` (close, escaped
 * quote, reopen), so every value (newlines, CR, `$`, backquotes, backslashes) reads back
 * byte for byte and nothing in a value is ever run. No header: the caller writes its own.
 */
export function renderShell(vars: EnvVars): Rendered {
  const entries = vars instanceof Map ? [...vars] : Object.entries(vars);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const lines: string[] = [];
  const omitted: Omitted[] = [];
  for (const [name, value] of entries) {
    const problem = commonProblem(name, scan(value));
    if (problem === undefined) lines.push(`export ${name}='${value.replace(/'/g, "'\\''")}'`);
    else omitted.push({ name, reason: problem });
  }
  return { text: lines.map((l) => `${l}\n`).join(""), omitted };
}
