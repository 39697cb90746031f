/**
 * A dotenv parser for `secretsctl import`: what people's `.env` files actually contain.
 *
 * - `KEY=value` and `export KEY=value`; spaces around `=` are allowed; blank lines and
 *   `#` comment lines are skipped; CRLF files read like LF files; a leading BOM is ignored.
 * - `'…'` is literal and may span lines.
 * - `"…"` may span lines and decodes `\n`, `\r`, `\t`, `\\`, `\"`, `\$` and `` \` ``; any other
 *   backslash is kept as written (as a shell keeps it inside double quotes).
 * - Unquoted values end at the line's end, lose a trailing ` # comment` (a `#` preceded by
 *   whitespace) and surrounding whitespace; `a#b` keeps its `#`.
 * - No `$VAR` expansion: an imported key must reach the store byte for byte.
 *
 * Errors carry the line number and never any text of the line: a malformed line may be a
 * pasted key.
 */

/** One assignment, with the line it starts on. */
export interface DotenvEntry {
  name: string;
  value: string;
  line: number;
}

/** A malformed file; `line` is 1-based. The message never quotes the line. */
export class DotenvError extends Error {
  override readonly name = "DotenvError";
  constructor(
    readonly line: number,
    reason: string,
  ) {
    super(`line ${line}: ${reason}`);
  }
}

const NAME = /[A-Za-z_][A-Za-z0-9_]*/y;

/**
 * Parses a dotenv file into its assignments, in file order (a name assigned twice appears
 * twice).
 * @throws DotenvError for a line that is not an assignment, an invalid name, an unterminated
 *   quote or text after a closing quote.
 */
export function parseDotenv(input: string): DotenvEntry[] {
  const p = new Parser(input.replace(/^\uFEFF/, "").replace(/\r\n/g, "\n"));
  const entries: DotenvEntry[] = [];
  while (!p.done()) {
    const entry = p.statement();
    if (entry) entries.push(entry);
  }
  return entries;
}

// --- internal ---

class Parser {
  private i = 0;
  private line = 1;
  constructor(private readonly s: string) {}

  done(): boolean {
    return this.i >= this.s.length;
  }

  /** Reads one line's statement (or a multi-line quoted assignment); null for blank/comment. */
  statement(): DotenvEntry | null {
    const line = this.line;
    this.skipBlanks();
    const c = this.peek();
    if (c === undefined || c === "\n" || c === "#") {
      this.skipToEol();
      return null;
    }
    if (this.s.startsWith("export", this.i) && /[ \t]/.test(this.s[this.i + 6] ?? "")) {
      this.i += 6;
      this.skipBlanks();
    }
    NAME.lastIndex = this.i;
    const m = NAME.exec(this.s);
    const after = m ? this.s[this.i + m[0].length] : undefined;
    if (!m || (after !== undefined && !/[ \t=\n]/.test(after))) {
      throw new DotenvError(
        line,
        this.restOfLine().includes("=")
          ? "invalid variable name (must match ^[A-Za-z_][A-Za-z0-9_]*$)"
          : "expected NAME=value",
      );
    }
    this.i += m[0].length;
    this.skipBlanks();
    if (this.peek() !== "=") throw new DotenvError(line, "expected NAME=value");
    this.i++;
    const gap = this.skipBlanks();
    const q = this.peek();
    const value = q === '"' || q === "'" ? this.quoted(q, line) : this.unquoted(gap);
    return { name: m[0], value, line };
  }

  /** `gap`: blanks skipped after `=`; then a `#` right away starts a comment (`A= # c`). */
  private unquoted(gap: boolean): string {
    const raw = this.restOfLine();
    this.skipToEol();
    if (gap && raw.startsWith("#")) return "";
    const hash = raw.search(/[ \t]#/);
    return (hash === -1 ? raw : raw.slice(0, hash)).trim();
  }

  private quoted(q: '"' | "'", line: number): string {
    this.i++;
    let value = "";
    for (;;) {
      const c = this.s[this.i];
      if (c === undefined) {
        const kind = q === '"' ? "double" : "single";
        throw new DotenvError(line, `unterminated ${kind}-quoted value`);
      }
      this.i++;
      if (c === q) break;
      if (c === "\n") this.line++;
      if (c === "\\" && q === '"') {
        const next = this.s[this.i];
        const decoded = next === undefined ? undefined : ESCAPES[next];
        if (decoded !== undefined) {
          value += decoded;
          this.i++;
          continue;
        }
      }
      value += c;
    }
    // Only whitespace and a comment may follow the closing quote.
    this.skipBlanks();
    const c = this.peek();
    if (c !== undefined && c !== "\n" && c !== "#") {
      throw new DotenvError(this.line, "unexpected text after the closing quote");
    }
    this.skipToEol();
    return value;
  }

  private peek(): string | undefined {
    return this.s[this.i];
  }

  /** Skips spaces and tabs; true when there were any. */
  private skipBlanks(): boolean {
    const start = this.i;
    while (this.s[this.i] === " " || this.s[this.i] === "\t") this.i++;
    return this.i > start;
  }

  private restOfLine(): string {
    const end = this.s.indexOf("\n", this.i);
    return this.s.slice(this.i, end === -1 ? undefined : end);
  }

  /** Moves past the end of the current line. */
  private skipToEol(): void {
    const end = this.s.indexOf("\n", this.i);
    this.i = end === -1 ? this.s.length : end + 1;
    this.line++;
  }
}

const ESCAPES: Record<string, string> = {
  n: "\n",
  r: "\r",
  t: "\t",
  "\\": "\\",
  '"': '"',
  $: "$",
  "`": "`",
};
