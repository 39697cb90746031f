/**
 * `{key}` placeholders in a connection test's strings (`"Bearer {api_key}"`,
 * `"PVEAPIToken={user}@{realm}!{token_id}={token_secret}"`). `{{` and `}}` are literal braces;
 * any other brace is an error, so a typo in a user template is refused when it is loaded
 * rather than sent to a provider.
 */

/** The parts of a placeholder string: literal text and field keys, in order. */
export type Part = { text: string } | { key: string };

const KEY = /^[a-z][a-z0-9_]{0,31}$/;

/** Splits `tpl` into parts; returns a reason (never the text) when it is malformed. */
export function parsePlaceholders(tpl: string): Part[] | string {
  const parts: Part[] = [];
  let text = "";
  for (let i = 0; i < tpl.length; i++) {
    const c = tpl[i];
    const next = tpl[i + 1];
    if ((c === "{" && next === "{") || (c === "}" && next === "}")) {
      text += c;
      i++;
    } else if (c === "{") {
      const end = tpl.indexOf("}", i);
      const key = end < 0 ? "" : tpl.slice(i + 1, end);
      if (!KEY.test(key))
        return `has a '{' that does not start a {field_key} (write {{ for a brace)`;
      if (text !== "") parts.push({ text });
      text = "";
      parts.push({ key });
      i = end;
    } else if (c === "}") {
      return "has a '}' that closes nothing (write }} for a brace)";
    } else {
      text += c;
    }
  }
  if (text !== "") parts.push({ text });
  return parts;
}

/** The field keys `parts` names, once each. */
export function placeholderKeys(parts: readonly Part[]): string[] {
  return [...new Set(parts.flatMap((p) => ("key" in p ? [p.key] : [])))];
}

/**
 * Fills `parts` from `values`, passing each value through `encode`. Returns the key of the
 * first placeholder without a value instead of a string.
 */
export function fillPlaceholders(
  parts: readonly Part[],
  values: ReadonlyMap<string, string>,
  encode: (v: string) => string,
): { text: string } | { missing: string } {
  let text = "";
  for (const p of parts) {
    if ("text" in p) {
      text += p.text;
      continue;
    }
    const v = values.get(p.key);
    if (v === undefined) return { missing: p.key };
    text += encode(v);
  }
  return { text };
}
