// biome-ignore-all lint/suspicious/noTemplateCurlyInString: literal ${...} is test data here
import { parseEnv } from "node:util";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  HEADER,
  renderDotenvPortable,
  renderEnvironmentD,
  renderEnvironmentFile,
  renderJson,
  renderShell,
} from "./env-render.js";

const PEM = "-----BEGIN PRIVATE KEY-----\nMIIBVQIBADANBg+/=\n-----END PRIVATE KEY-----\n";

/** Fixed tricky values; test/e2e/env-dialects.test.ts sends a superset through real systemd. */
const TRICKY: Record<string, string> = {
  A_PLAIN: "sk-abc123",
  B_QUOTES: `he said "hi" and 'bye'`,
  C_BACKSLASH: "C:\\path\\n\\t\\\\end\\",
  D_DOLLAR: "$HOME ${HOME} $$ $ ${X:-d} $(id) end$",
  E_BACKTICK: "`id` and \\`",
  F_COMMENT: "#not a comment ;nor this",
  G_SPACES: "  lead and trail  ",
  H_EQUALS: "a=b==c=",
  I_TAB: "a\tb",
  J_UNICODE: "héllo wörld 日本 😀 \u0085 \u2028",
  K_EMPTY: "",
};

describe("renderEnvironmentFile", () => {
  it('double-quotes every value and escapes exactly \\ " $ `', () => {
    const r = renderEnvironmentFile({ ...TRICKY, L_PEM: PEM, M_CRLF: "a\r\nb\rc" });
    expect(r.omitted).toEqual([]);
    expect(r.text).toBe(
      [
        HEADER,
        'A_PLAIN="sk-abc123"',
        `B_QUOTES="he said \\"hi\\" and 'bye'"`,
        'C_BACKSLASH="C:\\\\path\\\\n\\\\t\\\\\\\\end\\\\"',
        'D_DOLLAR="\\$HOME \\${HOME} \\$\\$ \\$ \\${X:-d} \\$(id) end\\$"',
        'E_BACKTICK="\\`id\\` and \\\\\\`"',
        'F_COMMENT="#not a comment ;nor this"',
        'G_SPACES="  lead and trail  "',
        'H_EQUALS="a=b==c="',
        'I_TAB="a\tb"',
        'J_UNICODE="héllo wörld 日本 😀 \u0085 \u2028"',
        'K_EMPTY=""',
        `L_PEM="${PEM}"`,
        'M_CRLF="a\r\nb\rc"',
        "",
      ].join("\n"),
    );
  });

  it("omits noncharacters, NUL, lone surrogates and bad names, naming the var only", () => {
    const r = renderEnvironmentFile({
      OK: "x",
      NC1: "a\uFFFEb",
      NC2: "\uFDD0",
      NC3: "\u{10FFFF}",
      NUL: "a\0b",
      SURR: "a\uD800b",
      lower: "x",
      "1X": "x",
    });
    expect(r.text).toBe(`${HEADER}\nOK="x"\n`);
    expect(r.omitted.map((o) => o.name)).toEqual([
      "1X",
      "NC1",
      "NC2",
      "NC3",
      "NUL",
      "SURR",
      "lower",
    ]);
    for (const o of r.omitted) {
      expect(o.reason.length).toBeGreaterThan(10);
      expect(o.reason).not.toMatch(/\uFFFE|\uFDD0|\0|\uD800/);
    }
  });
});

describe("renderEnvironmentD", () => {
  it('escapes \\ and ", doubles every $, and writes empty as ${NAME:+}', () => {
    const r = renderEnvironmentD(TRICKY);
    expect(r.text).toBe(
      [
        HEADER,
        'A_PLAIN="sk-abc123"',
        `B_QUOTES="he said \\"hi\\" and 'bye'"`,
        'C_BACKSLASH="C:\\\\path\\\\n\\\\t\\\\\\\\end\\\\"',
        'D_DOLLAR="$$HOME $${HOME} $$$$ $$ $${X:-d} $$(id) end$$"',
        'E_BACKTICK="`id` and \\\\`"',
        'F_COMMENT="#not a comment ;nor this"',
        'G_SPACES="  lead and trail  "',
        'H_EQUALS="a=b==c="',
        'J_UNICODE="héllo wörld 日本 😀 \u0085 \u2028"',
        "K_EMPTY=${K_EMPTY:+}",
        "",
      ].join("\n"),
    );
    expect(r.omitted.map((o) => o.name)).toEqual(["I_TAB"]);
  });

  it("omits every C0 control and DEL (newline, CR, tab, PEM keys) and noncharacters", () => {
    const vars: Record<string, string> = { PEM, NC: "\uFFFF" };
    for (let c = 1; c < 32; c++) vars[`C${c}`] = `a${String.fromCharCode(c)}b`;
    vars.DEL = "a\x7fb";
    const r = renderEnvironmentD(vars);
    expect(r.text).toBe(`${HEADER}\n`);
    expect(r.omitted).toHaveLength(Object.keys(vars).length);
    expect(r.omitted.find((o) => o.name === "PEM")?.reason).toMatch(/control character/);
    expect(r.omitted.find((o) => o.name === "NC")?.reason).toMatch(/noncharacter/);
  });
});

describe("renderDotenvPortable", () => {
  it("single quotes, then double quotes; omits only what no quoting carries", () => {
    const r = renderDotenvPortable({ ...TRICKY, L_PEM: PEM, M_CR: "a\rb", N_MIX: `'$"\n` });
    expect(r.text).toContain("A_PLAIN='sk-abc123'\n");
    expect(r.text).toContain("D_DOLLAR='$HOME ${HOME} $$ $ ${X:-d} $(id) end$'\n");
    expect(r.text).toContain(`L_PEM='${PEM}'\n`);
    expect(r.omitted.map((o) => o.name)).toEqual(["B_QUOTES", "C_BACKSLASH", "M_CR", "N_MIX"]);
  });

  it("reads back exactly with Node's dotenv parser (util.parseEnv)", () => {
    const vars = { ...TRICKY, L_PEM: PEM };
    const r = renderDotenvPortable(vars);
    const parsed = parseEnv(r.text);
    const omitted = new Set(r.omitted.map((o) => o.name));
    for (const [k, v] of Object.entries(vars)) {
      if (!omitted.has(k)) expect(parsed[k], k).toBe(v);
    }
  });
});

describe("renderJson", () => {
  it("is a sorted JSON object with a trailing newline carrying every valid value", () => {
    const vars = new Map(Object.entries({ ...TRICKY, L_PEM: PEM, NC: "\uFFFE", NUL: "\0" }));
    const r = renderJson(vars);
    expect(r.text.endsWith("}\n")).toBe(true);
    const back = JSON.parse(r.text) as Record<string, string>;
    expect(Object.keys(back)).toEqual([...Object.keys(TRICKY), "L_PEM", "NC"].sort());
    expect(back.NC).toBe("\uFFFE");
    expect(r.omitted.map((o) => o.name)).toEqual(["NUL"]);
  });
});

describe("all renderers", () => {
  const renderers = [
    renderEnvironmentFile,
    renderEnvironmentD,
    renderDotenvPortable,
    renderJson,
    renderShell,
  ];

  it("are deterministic: same output for any insertion order, Map or object", () => {
    const name = fc.stringMatching(/^[A-Za-z_][A-Z0-9_]{0,8}$/);
    fc.assert(
      fc.property(fc.dictionary(name, fc.string({ unit: "binary" })), (obj) => {
        const reversed = new Map(Object.entries(obj).reverse());
        for (const render of renderers) {
          const a = render(obj);
          expect(render(reversed)).toEqual(a);
          // dotenv-portable and shell have no header of their own (export writes it): may be empty.
          expect(a.text === "" || a.text.endsWith("\n")).toBe(true);
          const omitted = new Set(a.omitted.map((o) => o.name));
          for (const k of Object.keys(obj)) {
            const present =
              render === renderJson
                ? a.text.includes(`"${k}":`)
                : render === renderShell
                  ? a.text.includes(`export ${k}=`)
                  : a.text.includes(`\n${k}=`) || a.text.startsWith(`${k}=`);
            expect(present).toBe(!omitted.has(k));
          }
        }
      }),
    );
  });

  it("dotenv output always reads back exactly with util.parseEnv", () => {
    const tricky = fc.constantFrom(..."\"'\\$`#;= \t\r\n{}é😀".split(""));
    const value = fc
      .array(fc.oneof(tricky, fc.string({ unit: "binary", maxLength: 3 })))
      .map((a) => a.join(""));
    fc.assert(
      fc.property(fc.dictionary(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/), value), (obj) => {
        const r = renderDotenvPortable(obj);
        const parsed = parseEnv(r.text);
        const omitted = new Set(r.omitted.map((o) => o.name));
        for (const [k, v] of Object.entries(obj)) {
          if (!omitted.has(k)) expect(parsed[k]).toBe(v);
        }
      }),
    );
  });
});
