import { describe, expect, test } from "vitest";
import { DotenvError, parseDotenv } from "./dotenv.js";

const parse = (text: string) => Object.fromEntries(parseDotenv(text).map((e) => [e.name, e.value]));

/** The error a parse throws, for asserting its line and message. */
function failure(text: string): DotenvError {
  try {
    parseDotenv(text);
  } catch (err) {
    if (err instanceof DotenvError) return err;
    throw err;
  }
  throw new Error("expected a DotenvError");
}

describe("parseDotenv", () => {
  test("assignments, export, comments and blank lines", () => {
    const text = [
      "# a comment",
      "",
      "A=1",
      "export B=two",
      "   # indented comment",
      "C = spaced  ",
      "\texport\tD=tabbed",
      "E=",
      "",
    ].join("\n");
    expect(parse(text)).toEqual({ A: "1", B: "two", C: "spaced", D: "tabbed", E: "" });
  });

  test("entries keep file order and their line numbers, duplicates included", () => {
    const entries = parseDotenv('A=1\n\nB="x\ny"\nA=2\n');
    expect(entries).toEqual([
      { name: "A", value: "1", line: 1 },
      { name: "B", value: "x\ny", line: 3 },
      { name: "A", value: "2", line: 5 },
    ]);
  });

  test("unquoted values: trailing ' # comment' stripped, inner # and = kept", () => {
    expect(
      parse("A=value # comment\nB=a#b\nC=x=y==\nD= # only a comment\nE=#fff\nF=a\t# tab comment"),
    ).toEqual({ A: "value", B: "a#b", C: "x=y==", D: "", E: "#fff", F: "a" });
  });

  test("single quotes are literal and may span lines", () => {
    expect(parse("A='a \\n $HOME \"q\" # not a comment'\nB='line1\nline2'\nC=''")).toEqual({
      A: 'a \\n $HOME "q" # not a comment',
      B: "line1\nline2",
      C: "",
    });
  });

  test('double quotes decode \\n \\t \\r \\\\ \\" \\$ \\` and keep other backslashes', () => {
    expect(parse('A="a\\nb\\tc\\rd\\\\e\\"f\\$g\\`h"\nB="keep \\x and \\d"')).toEqual({
      A: 'a\nb\tc\rd\\e"f$g`h',
      B: "keep \\x and \\d",
    });
  });

  test("double-quoted multi-line values, with a comment after the closing quote", () => {
    const pem = "-----BEGIN KEY-----\nAAAA\nBBBB\n-----END KEY-----";
    expect(parse(`KEY="${pem}" # the key\nNEXT=1`)).toEqual({ KEY: pem, NEXT: "1" });
  });

  test("no $ expansion anywhere", () => {
    const braces = `\${HOME}`;
    expect(parse(`A=$HOME\nB="${braces}"\nC='$X'`)).toEqual({ A: "$HOME", B: braces, C: "$X" });
  });

  test("CRLF files read like LF files, inside quotes too; a BOM is ignored", () => {
    const crlf = '\uFEFFA=1\r\nB="x\r\ny"\r\n# c\r\nC=z # c\r\n';
    expect(parse(crlf)).toEqual({ A: "1", B: "x\ny", C: "z" });
  });

  test("a file without a final newline, and an empty file", () => {
    expect(parse("A=1")).toEqual({ A: "1" });
    expect(parse("")).toEqual({});
    expect(parse("\n\n# only comments\n")).toEqual({});
  });

  test.each([
    ["a line without =", "A=1\nnot an assignment\n", 2, "expected NAME=value"],
    ["a name alone", "A=1\n\nB\n", 3, "expected NAME=value"],
    ["export without assignment", "export FOO\n", 1, "expected NAME=value"],
    ["a name with a dash", "MY-KEY=v\n", 1, "invalid variable name"],
    ["a name with a dot", "A=1\nMY.KEY=v\n", 2, "invalid variable name"],
    ["a name starting with a digit", "1KEY=v\n", 1, "invalid variable name"],
    ["an unterminated double quote", 'A=1\nB="open\nstill open\n', 2, "unterminated double-quoted"],
    ["an unterminated single quote", "B='open\n", 1, "unterminated single-quoted"],
    ["text after a closing quote", 'A="x"y\n', 1, "unexpected text after the closing quote"],
    ["text after a multi-line quote", 'A="x\ny" z\n', 2, "unexpected text after the closing quote"],
  ])("%s is an error with its line number", (_, text, line, message) => {
    const err = failure(text);
    expect(err.line).toBe(line);
    expect(err.message).toBe(`line ${line}: ${err.message.slice(`line ${line}: `.length)}`);
    expect(err.message).toContain(message);
  });

  test("errors never quote the line (it may be a pasted key)", () => {
    const secret = "sk-live-0123456789abcdef";
    for (const text of [
      `${secret}\n`,
      `KEY-${secret}=x\n`,
      `A="${secret}`,
      `A='${secret}'${secret}`,
      `${secret.toUpperCase()}.X=${secret}`,
    ]) {
      const err = failure(text);
      expect(err.message).not.toContain(secret);
      expect(err.message).not.toContain(secret.toUpperCase());
      expect(err.message).not.toContain("0123456789");
    }
  });
});
