/**
 * Generated values: exact length, charset membership, no modulo bias (a chi-square over many
 * characters, with bounds loose enough never to flake), v4 UUIDs, and fresh values per call.
 */
import { describe, expect, test } from "vitest";
import { isSecretsError } from "../../errors.js";
import { CHARSET_ALPHABETS, generateValue } from "./generate.js";
import { CHARSETS, type Charset, type Generator } from "./schema.js";

const MEMBER: Record<Charset, RegExp> = {
  alnum: /^[A-Za-z0-9]*$/,
  hex: /^[0-9a-f]*$/,
  base64: /^[A-Za-z0-9+/]*$/,
  base64url: /^[A-Za-z0-9_-]*$/,
};

describe("random generator", () => {
  test.each(CHARSETS)("%s: exact length and only charset characters", (charset) => {
    expect(new Set(CHARSET_ALPHABETS[charset]).size).toBe(CHARSET_ALPHABETS[charset].length);
    expect(MEMBER[charset].test(CHARSET_ALPHABETS[charset])).toBe(true);
    for (const length of [8, 9, 31, 32, 33, 255, 256, 257, 4096]) {
      const v = generateValue({ type: "random", length, charset });
      expect(v).toHaveLength(length);
      expect(MEMBER[charset].test(v)).toBe(true);
    }
  });

  test.each(CHARSETS)("%s: characters are uniform (chi-square, loose bound)", (charset) => {
    const alphabet = CHARSET_ALPHABETS[charset];
    const counts = new Map<string, number>([...alphabet].map((c) => [c, 0]));
    const samples = 64;
    for (let i = 0; i < samples; i++) {
      for (const c of generateValue({ type: "random", length: 4096, charset })) {
        counts.set(c, (counts.get(c) ?? 0) + 1);
      }
    }
    const expected = (samples * 4096) / alphabet.length;
    let chi2 = 0;
    for (const n of counts.values()) chi2 += (n - expected) ** 2 / expected;
    // df = k - 1 (15 or 61 or 63): mean df, sd sqrt(2 df) <= 11.3. 4 df is over 10 sd above the
    // mean, so this never flakes; modulo bias (256 % 62 = 8 symbols at 5/256 instead of 4/256,
    // for alnum) gives a chi-square in the thousands at this sample size.
    expect(chi2).toBeLessThan(4 * (alphabet.length - 1));
    expect(counts.size).toBe(alphabet.length);
  });

  test("the position of a character does not matter (first and last of 16-char values)", () => {
    const first = new Map<string, number>();
    const last = new Map<string, number>();
    for (let i = 0; i < 16_000; i++) {
      const v = generateValue({ type: "random", length: 16, charset: "hex" });
      first.set(v[0] as string, (first.get(v[0] as string) ?? 0) + 1);
      last.set(v[15] as string, (last.get(v[15] as string) ?? 0) + 1);
    }
    // expected 1000 each, sd ~31: 800..1200 is over 6 sd
    for (const m of [first, last]) {
      expect(m.size).toBe(16);
      for (const n of m.values()) {
        expect(n).toBeGreaterThan(800);
        expect(n).toBeLessThan(1200);
      }
    }
  });

  test("two calls differ", () => {
    const g: Generator = { type: "random", length: 32, charset: "alnum" };
    const seen = new Set(Array.from({ length: 1000 }, () => generateValue(g)));
    expect(seen.size).toBe(1000);
  });

  test.each([
    [{ type: "random", length: 7, charset: "hex" }, /^generator\.length: must be 8 to 4096$/],
    [{ type: "random", length: 4097, charset: "hex" }, /^generator\.length: /],
    [{ type: "random", length: 8.5, charset: "hex" }, /^generator\.length: /],
    [{ type: "random", length: 8, charset: "latin1" }, /^generator\.charset: unknown charset/],
  ])("refuses a generator validation would refuse: %j", (g, message) => {
    let err: unknown;
    try {
      generateValue(g as Generator);
    } catch (e) {
      err = e;
    }
    expect(isSecretsError(err) && err.code === "invalid_argument").toBe(true);
    expect((err as Error).message).toMatch(message);
  });
});

describe("uuid generator", () => {
  test("v4 format, and two calls differ", () => {
    const v4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const a = generateValue({ type: "uuid" });
    const b = generateValue({ type: "uuid" });
    expect(a).toMatch(v4);
    expect(b).toMatch(v4);
    expect(a).not.toBe(b);
  });
});
