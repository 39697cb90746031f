import { describe, expect, it } from "vitest";
import { isLoopbackHost } from "./net.js";

describe("isLoopbackHost", () => {
  it("loopback: localhost, ::1 (bracketed or not), 127.0.0.0/8 as a dotted quad", () => {
    for (const h of ["localhost", "::1", "[::1]", "127.0.0.1", "127.1.2.3", "127.255.255.255"]) {
      expect(isLoopbackHost(h), h).toBe(true);
    }
  });
  it("not loopback: names and addresses that only look like it", () => {
    for (const h of [
      "127.example.net",
      "127.0.0.1.nip.io",
      "127.0.0.256",
      "127.1",
      "128.0.0.1",
      "10.0.0.1",
      "::2",
      "localhost.example.com",
      "",
    ]) {
      expect(isLoopbackHost(h), h).toBe(false);
    }
  });
});
