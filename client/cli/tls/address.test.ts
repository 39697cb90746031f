import { describe, expect, it } from "vitest";
import { formatHostPort, isLoopback, parseHost, parseHostPort } from "./address.js";

describe("tls addresses", () => {
  it("reads IPv4, IPv6 (bare or bracketed) and DNS names; IPv6 and names in lower case", () => {
    expect(parseHost("192.168.122.1")).toEqual({ type: "IP", value: "192.168.122.1" });
    expect(parseHost("FD00::1")).toEqual({ type: "IP", value: "fd00::1" });
    expect(parseHost("[fd00::1]")).toEqual({ type: "IP", value: "fd00::1" });
    expect(parseHost("Host.Example")).toEqual({ type: "DNS", value: "host.example" });
    expect(parseHost("localhost")).toEqual({ type: "DNS", value: "localhost" });
    expect(parseHost("a-1.b2.example")).toEqual({ type: "DNS", value: "a-1.b2.example" });
  });

  it("refuses what is neither: a malformed address is not taken for a name", () => {
    const bad = ["", "999.1.1.1", "1.2.3", "10.0.0.01", "fd00:::1", "[host.example]", "a_b"];
    bad.push("-a.example", "a-.example", "host.", ".host", "a..b", `${"a".repeat(64)}.example`);
    bad.push("host example", "host/x", "*.example", `${"a.".repeat(127)}a`);
    for (const b of bad) expect(parseHost(b), b).toBeUndefined();
  });

  it("reads HOST:PORT with IPv6 in brackets, port 1-65535", () => {
    expect(parseHostPort("10.0.0.1:3090")).toEqual({
      host: { type: "IP", value: "10.0.0.1" },
      port: 3090,
    });
    expect(
      formatHostPort(parseHostPort("[FD00::1]:443")?.host ?? { type: "IP", value: "" }, 443),
    ).toBe("[fd00::1]:443");
    for (const b of ["10.0.0.1", "10.0.0.1:0", "h:65536", "fd00::1:3090", "h:80:80", ":80", "h:"]) {
      expect(parseHostPort(b), b).toBeUndefined();
    }
  });

  it("knows loopback as secretsd does", () => {
    for (const h of ["127.0.0.1", "127.3.2.1", "::1", "localhost"]) {
      expect(isLoopback(parseHost(h) ?? { type: "DNS", value: "" }), h).toBe(true);
    }
    for (const h of ["10.0.0.1", "fd00::1", "host.example"]) {
      expect(isLoopback(parseHost(h) ?? { type: "DNS", value: "" }), h).toBe(false);
    }
  });
});
