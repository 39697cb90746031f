/**
 * "A format regex cannot hang the daemon" (issue #11): the static check refuses what it says it
 * refuses, a match covers the whole value, and the vm timeout stops a catastrophic regex that
 * bypasses the static check.
 */
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { isSecretsError } from "../../errors.js";
import {
  checkFormatSource,
  FORMAT_TIMEOUT_MS,
  MAX_FORMAT_INPUT_BYTES,
  matchesFormat,
  matchFormatUnchecked,
} from "./format.js";

/** The message `checkFormatSource` throws, or undefined when the source is accepted. */
function refusal(source: string): string | undefined {
  try {
    checkFormatSource("entries[2].format", source);
    return undefined;
  } catch (err) {
    if (!isSecretsError(err) || err.code !== "invalid_argument") throw err;
    expect(err.field).toBe("entries[2].format");
    return err.message;
  }
}

describe("checkFormatSource", () => {
  test.each([
    "[A-Za-z0-9]{32}",
    "sk-[a-z0-9]+",
    "(?:ghp|gho)_[A-Za-z0-9]{36}", // alternation in a group that is not repeated
    "sk-[a-z]+(-[a-z]+)?", // a group repeated at most once may contain a quantifier
    "(?:-[a-z]+){0,1}",
    "(?:ab){2,8}", // a repeated group without quantifier or alternation inside
    "(?<year>\\d{4})-\\d{2}",
    "\\p{L}+",
    "\\u{1F600}{1,3}", // \u{...} braces are not a quantifier
    "[()|+*]+", // metacharacters inside a class are literal
    "[\\]]+",
    "\\(a+\\)+", // escaped parentheses are not a group
    "\\d*\\d*", // polynomial: not refused, the timeout covers it
    "a|b",
  ])("accepts %s", (source) => {
    expect(refusal(source)).toBeUndefined();
  });

  test.each([
    ["(a+)+", "unsafe regex: nested quantifier: '+' at offset 4"],
    ["(a*)*", "unsafe regex: nested quantifier: '*'"],
    ["(a|a)*", "unsafe regex: quantified alternation: '*' at offset 5"],
    ["(\\w+\\s?)*", "unsafe regex: nested quantifier"],
    ["((a)+)+", "unsafe regex: nested quantifier: '+' at offset 6"],
    ["(?:(?:a|b)c)+", "unsafe regex: quantified alternation"],
    ["(a?){2}", "unsafe regex: nested quantifier: '{2}'"],
    ["(?:a?a?)*?", "unsafe regex: nested quantifier: '*?'"],
    ["(?<n>a+){1,}", "unsafe regex: nested quantifier: '{1,}'"],
    ["(a)\\1", "unsafe regex: backreference '\\1'"],
    ["(?<n>a)\\k<n>", "unsafe regex: named backreference"],
    ["(?=a)a", "unsafe regex: lookaround '(?='"],
    ["(?!a)b", "unsafe regex: lookaround '(?!'"],
    ["(?<=a)b", "unsafe regex: lookaround '(?<='"],
    ["(?<!a)b", "unsafe regex: lookaround '(?<!'"],
    ["(a", "invalid regex: "],
    ["a{", "invalid regex: "], // a lone brace is an error with the u flag
    ["", "must not be empty"],
    ["a".repeat(513), "is 513 characters; the limit is 512"],
  ])("refuses %s", (source, reason) => {
    expect(refusal(source)).toContain(`entries[2].format: ${reason}`);
  });

  test("never throws anything but INVALID_ARGUMENT, on any source that compiles", () => {
    const token = fc.constantFrom(..."ab()[]|*+?{}\\,1^$.".split(""), "(?:", "{2,3}", "\\d");
    fc.assert(
      fc.property(fc.array(token, { maxLength: 24 }), (tokens) => {
        const source = tokens.join("");
        refusal(source); // rethrows anything unexpected
      }),
      { numRuns: 2000 },
    );
  });
});

describe("matchesFormat", () => {
  test("the whole value must match (^(?:format)$), alternation included", () => {
    expect(matchesFormat("[a-z]+", "abc")).toEqual({ ok: true });
    expect(matchesFormat("b", "abc")).toEqual({ ok: false, reason: "does not match the format" });
    expect(matchesFormat("a|b", "a").ok).toBe(true);
    expect(matchesFormat("a|b", "axx").ok).toBe(false); // not ^a|b$
    expect(matchesFormat("a|b", "xxb").ok).toBe(false);
    expect(matchesFormat("\\p{Lu}{2}", "ÄÖ").ok).toBe(true); // u flag
  });

  test("values over 64 KiB are refused without a match; the reason never has the value", () => {
    const big = "s3cr3t".repeat(11_000);
    const r = matchesFormat("[a-z0-9]+", big);
    expect(r.ok).toBe(false);
    expect(r.reason).toBe(`value is over ${MAX_FORMAT_INPUT_BYTES} bytes`);
    expect(matchesFormat("[a-z]+", "a".repeat(MAX_FORMAT_INPUT_BYTES)).ok).toBe(true);
    // the bound is in UTF-8 bytes: 40000 two-byte characters are 80000 bytes
    expect(matchesFormat(".+", "é".repeat(40_000)).ok).toBe(false);
  });

  test("an unsafe or invalid source gives ok: false with a reason, never a throw", () => {
    expect(matchesFormat("(a+)+", "aaa")).toEqual({
      ok: false,
      reason: expect.stringMatching(/^format is refused: unsafe regex: nested quantifier/),
    });
    expect(matchesFormat("(a", "a").reason).toMatch(/^format is refused: invalid regex/);
    expect(matchFormatUnchecked("(a", "a")).toEqual({
      ok: false,
      reason: "format is not a valid regex",
    });
  });

  test("a catastrophic regex that bypasses the static check times out instead of hanging", () => {
    const evil = "(a+)+b";
    const value = `${"a".repeat(40)}!`; // 2^40 backtracking paths
    const started = performance.now();
    const r = matchFormatUnchecked(evil, value);
    const elapsed = performance.now() - started;
    expect(r).toEqual({ ok: false, reason: "format check timed out" });
    expect(elapsed).toBeGreaterThanOrEqual(FORMAT_TIMEOUT_MS - 5);
    expect(elapsed).toBeLessThan(2000);
    // a polynomial one the static check accepts is stopped the same way
    expect(matchesFormat("\\d*\\d*", `${"1".repeat(60_000)}x`).reason).toBe(
      "format check timed out",
    );
    // and the sandbox still works afterwards
    expect(matchesFormat("a+", "aaa")).toEqual({ ok: true });
  });

  test("cost of one match through the vm path (simple regex)", () => {
    const n = 2000;
    const value = "abcdefghijklmnopqrstuvwxyz012345";
    matchesFormat("[A-Za-z0-9]{32}", value); // compile and cache
    const started = performance.now();
    for (let i = 0; i < n; i++) expect(matchesFormat("[A-Za-z0-9]{32}", value).ok).toBe(true);
    const perMatchUs = ((performance.now() - started) / n) * 1000;
    console.info(`format match via node:vm with timeout: ${perMatchUs.toFixed(1)} µs per match`);
    expect(perMatchUs).toBeLessThan(5000); // a generous bound: the figure is for the report
  });
});
