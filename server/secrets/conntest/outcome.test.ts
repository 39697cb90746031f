import { describe, expect, it } from "vitest";
import { describeError, hostPort, oneLine, scrub } from "./outcome.js";

describe("scrub", () => {
  it("replaces each secret and its URL-encoded form, longest first", () => {
    expect(scrub("got Bearer abc/def+1 and abc%2Fdef%2B1", ["abc/def+1", "Bearer abc/def+1"])).toBe(
      "got *** and ***",
    );
  });

  it("leaves secrets under 3 characters alone (they would blank out the line)", () => {
    expect(scrub("HTTP 401", ["4", "01"])).toBe("HTTP 401");
  });
});

describe("describeError", () => {
  const target = "127.0.0.1:5432";
  const withCode = (code: string) => Object.assign(new Error(`boom ${code}`), { code });

  it("names refused, reset, unknown host and TLS by code, not by message", () => {
    expect(describeError(withCode("ECONNREFUSED"), target)).toBe(`connection refused at ${target}`);
    expect(describeError(withCode("ECONNRESET"), target)).toBe(`connection reset by ${target}`);
    expect(describeError(withCode("ENOTFOUND"), target)).toBe(`host not found: ${target}`);
    expect(describeError(withCode("DEPTH_ZERO_SELF_SIGNED_CERT"), target)).toBe(
      `TLS failed at ${target}: DEPTH_ZERO_SELF_SIGNED_CERT`,
    );
  });

  it("finds the code on fetch's cause chain", () => {
    const fetchError = new TypeError("fetch failed", { cause: withCode("ECONNREFUSED") });
    expect(describeError(fetchError, target)).toBe(`connection refused at ${target}`);
  });

  it("falls back to the innermost message on one line", () => {
    const err = new Error("outer", { cause: new Error("inner\nsecond line") });
    expect(describeError(err, target)).toBe(`failed at ${target}: inner second line`);
  });
});

describe("oneLine and hostPort", () => {
  it("flattens control characters and cuts to length", () => {
    expect(oneLine("a\r\nb\u0007c", 100)).toBe("a b c");
    expect(oneLine("x".repeat(10), 5)).toBe("xxxx…");
  });

  it("brackets IPv6", () => {
    expect(hostPort("::1", 25)).toBe("[::1]:25");
    expect(hostPort("mail.example", 25)).toBe("mail.example:25");
  });
});
