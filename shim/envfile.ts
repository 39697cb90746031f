/**
 * Reads back a file written by `renderEnvironmentFile` (client/env-render.ts): `NAME="…"` entries
 * with `\\`, `\"`, `\$` and `` \` `` escaped, `#` comment lines. Used only to tell which names'
 * values differ from what dependent units were given, across a restart of the shim, without
 * keeping values anywhere else.
 */

/**
 * The name → value map of an EnvironmentFile the shim wrote, or undefined when the text is not
 * in that form (then the caller relies on versions alone).
 */
export function parseEnvironmentFile(text: string): Map<string, string> | undefined {
  const out = new Map<string, string>();
  // Sticky: each match must start where the previous one ended, so text inside a quoted
  // multi-line value is never mistaken for an entry.
  const entry = /#[^\n]*\n|\n|([A-Za-z_][A-Za-z0-9_]*)="((?:[^"\\]|\\[\s\S])*)"\n/y;
  while (entry.lastIndex < text.length) {
    const m = entry.exec(text);
    if (!m) return undefined;
    const [, name, quoted] = m;
    if (name !== undefined && quoted !== undefined) {
      // systemd unescapes exactly these four inside double quotes and keeps other backslashes.
      out.set(
        name,
        quoted.replace(/\\([\s\S])/g, (s, c: string) => ('\\"$`'.includes(c) ? c : s)),
      );
    }
  }
  return out;
}
