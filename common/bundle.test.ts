import { describe, expect, it } from "vitest";
import { BUNDLE_PREFIX, BundleError, decodeBundle, encodeBundle } from "./bundle.js";

const TOKEN = "vmat_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
const CA = "-----BEGIN CERTIFICATE-----\nMIIBszCCAVmgAwIBAgIU\n-----END CERTIFICATE-----\n";

describe("guest bundle", () => {
  it("round-trips through one line", () => {
    const text = encodeBundle({ server: "192.168.122.1:3090", token: TOKEN, ca: CA });
    expect(text.endsWith("\n")).toBe(true);
    expect(text.trim()).not.toContain("\n");
    expect(text.startsWith(BUNDLE_PREFIX)).toBe(true);
    expect(decodeBundle(`  ${text}\n`)).toEqual({
      server: "192.168.122.1:3090",
      token: TOKEN,
      ca: CA,
    });
    expect(decodeBundle(encodeBundle({ server: "[::1]:3090", token: TOKEN }))).toEqual({
      server: "[::1]:3090",
      token: TOKEN,
    });
  });

  it("names the field it refuses and never echoes the token", () => {
    const bad = (b: unknown) => {
      const text = `${BUNDLE_PREFIX}${Buffer.from(JSON.stringify(b)).toString("base64url")}`;
      try {
        decodeBundle(text);
      } catch (err) {
        expect(err).toBeInstanceOf(BundleError);
        expect((err as Error).message).not.toContain(TOKEN);
        return (err as Error).message;
      }
      throw new Error("accepted");
    };
    expect(bad({ server: "host", token: TOKEN })).toMatch(/^bundle\.server:/);
    expect(bad({ server: "h:99999", token: TOKEN })).toMatch(/^bundle\.server:/);
    expect(bad({ server: "h:1", token: "x" })).toMatch(/^bundle\.token:/);
    expect(bad({ server: "h:1", token: TOKEN, ca: "nope" })).toMatch(/^bundle\.ca:/);
    expect(bad({ server: "h:1", token: TOKEN, extra: TOKEN })).toMatch(/^bundle\.extra:/);
    expect(bad([TOKEN])).toMatch(/^bundle:/);
    expect(() => decodeBundle(TOKEN)).toThrow(/does not start/);
    const whole = encodeBundle({ server: "h:1", token: TOKEN }).trim();
    expect(() => decodeBundle(whole.slice(0, -7))).toThrow(BundleError);
    expect(() => decodeBundle(`${whole.slice(0, 30)}\n${whole.slice(30)}`)).toThrow(/one line/);
  });
});
