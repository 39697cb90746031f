import { describe, expect, test } from "vitest";
import { createBarrier, masterKeyId, newMasterKey } from "./barrier.js";

describe("barrier", () => {
  test("the direct decrypt agrees with libsodium-wrappers, for any size up to 64 KiB", async () => {
    const b = await createBarrier(newMasterKey(), null);
    for (const len of [1, 15, 16, 17, 255, 4096, 65_536]) {
      const v = "é".repeat(len >> 1) + "x".repeat(len & 1);
      const blob = b.seal(`aad/${len}`, v);
      expect(b.open(`aad/${len}`, blob)).toBe(v);
      expect(() => b.open(`aad/${len + 1}`, blob)).toThrow(/authentication/);
    }
    // A tampered ciphertext fails, and the area reused afterwards still decrypts correctly.
    const blob = b.seal("t", "value");
    const raw = Buffer.from(blob, "base64");
    raw[raw.length - 1] = (raw[raw.length - 1] ?? 0) ^ 1;
    expect(() => b.open("t", raw.toString("base64"))).toThrow(/authentication/);
    expect(b.open("t", blob)).toBe("value");
  });

  test("seal/open round-trips any UTF-8 and binds the slot", async () => {
    const b = await createBarrier(newMasterKey(), null);
    const v = "line1\nline2 é 🔑 \"'$`\\";
    const blob = b.seal("vmauth/secret/a/v1", v);
    expect(blob).not.toContain("line1");
    expect(b.open("vmauth/secret/a/v1", blob)).toBe(v);
    expect(() => b.open("vmauth/secret/a/v2", blob)).toThrow(/authentication/);
    expect(() => b.open("vmauth/secret/b/v1", blob)).toThrow(/authentication/);
    expect(b.seal("x", v)).not.toBe(b.seal("x", v));
  });

  test("a rewrapped keyring opens under the new key only, and old blobs still open", async () => {
    const k1 = newMasterKey();
    const b1 = await createBarrier(k1, null);
    const blob = b1.seal("aad", "value-1");
    const token = b1.hashToken("vmat_x");
    const k2 = newMasterKey();
    const ring = b1.rewrap(k2);
    expect(ring.masterKeyId).toBe(masterKeyId(k2));
    const b2 = await createBarrier(k2, ring);
    expect(b2.open("aad", blob)).toBe("value-1");
    expect(b2.hashToken("vmat_x")).toBe(token);
    await expect(createBarrier(k1, ring)).rejects.toThrow(/does not match/);
  });

  test("zero wipes the keys", async () => {
    const b = await createBarrier(newMasterKey(), null);
    const blob = b.seal("aad", "v");
    b.zero();
    expect(() => b.open("aad", blob)).toThrow();
  });
});
