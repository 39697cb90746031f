// biome-ignore-all lint/suspicious/noTemplateCurlyInString: literal ${...} is test data here
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { renderEnvironmentFile } from "../client/env-render.js";
import { parseEnvironmentFile } from "./envfile.js";

const TRICKY: Record<string, string> = {
  A: "plain",
  B: 'q"uote\\back$dollar`tick',
  C: 'multi\nline\nX_INJECTED="1"\n# comment\n',
  D: "",
  E: "  spaces  \t=tab;#hash ${X} $$ \\n",
  F: "-----BEGIN PRIVATE KEY-----\nMIIB+/=\n-----END PRIVATE KEY-----\n",
  G: "héllo 😀 \u2028",
};

describe("parseEnvironmentFile", () => {
  it("reads back what renderEnvironmentFile wrote, value for value", () => {
    const parsed = parseEnvironmentFile(renderEnvironmentFile(TRICKY).text);
    expect(parsed).toEqual(new Map(Object.entries(TRICKY)));
    expect(parsed?.has("X_INJECTED")).toBe(false);
  });

  it("property: any value the renderer keeps round-trips", () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.stringMatching(/^[A-Z_][A-Z0-9_]{0,8}$/), fc.string({ unit: "binary" })),
        (vars) => {
          const r = renderEnvironmentFile(vars);
          const left = new Set(r.omitted.map((o) => o.name));
          const want = new Map(Object.entries(vars).filter(([k]) => !left.has(k)));
          expect(parseEnvironmentFile(r.text)).toEqual(want);
        },
      ),
    );
    // 100 runs take ~2 s alone and over 5 s (vitest's default) on a loaded 2-core machine.
  }, 30_000);

  it("undefined for text not in that form", () => {
    expect(parseEnvironmentFile("A=unquoted\n")).toBeUndefined();
    expect(parseEnvironmentFile('A="open\n')).toBeUndefined();
    expect(parseEnvironmentFile("")).toEqual(new Map());
  });
});
