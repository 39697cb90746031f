/**
 * The direct decrypt (libsodium's C function on its wasm heap) and the wrapper's decrypt it
 * falls back to give identical plaintexts and identical failures; the shape check refuses
 * anything but the pinned libsodium's module; and on the pinned version the direct path is
 * the one chosen, so an upgrade that changes the module's shape fails here.
 */
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import sodium from "libsodium-wrappers-sumo";
import { beforeAll, describe, expect, test } from "vitest";
import type { AeadDecrypt } from "./direct-decrypt.js";
import {
  chooseDecrypt,
  createDirectDecrypt,
  SODIUM_VERSION,
  wrapperDecrypt,
} from "./direct-decrypt.js";

const ROOT = join(import.meta.dirname, "../..");
const versionOf = (pkg: string) =>
  (
    JSON.parse(readFileSync(join(ROOT, "node_modules", pkg, "package.json"), "utf8")) as {
      version: string;
    }
  ).version;

let direct: AeadDecrypt;
const core = () => (sodium as unknown as { libsodium: Record<string, unknown> }).libsodium;

beforeAll(async () => {
  await sodium.ready;
  direct = chooseDecrypt();
});

/** A fresh key, nonce and ciphertext of `plaintext` under `aad`, by the wrapper. */
function sealed(plaintext: Uint8Array, aad: string) {
  const key = randomBytes(32);
  const nonce = randomBytes(24);
  const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, null, nonce, key);
  return { key, nonce, ct: Buffer.from(ct) };
}

/** Both paths' results for the same input, after checking they are identical. */
function both(key: Uint8Array, nonce: Uint8Array, ct: Uint8Array, aad: string) {
  const a = direct(key, nonce, ct, aad);
  const b = wrapperDecrypt(key, nonce, ct, aad);
  expect(a === undefined).toBe(b === undefined);
  if (a && b) expect(a.equals(b)).toBe(true);
  return a;
}

describe("direct decrypt", () => {
  test("libsodium is the exact version whose internals are read, and the direct path is chosen", () => {
    expect(versionOf("libsodium-wrappers-sumo")).toBe(SODIUM_VERSION);
    // The module the direct path calls comes from this package, pulled in by a ^ range.
    expect(versionOf("libsodium-sumo")).toBe(SODIUM_VERSION);
    // And package.json pins both exactly, so an install cannot bring another version.
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as {
      dependencies: Record<string, string>;
      overrides: Record<string, string>;
    };
    expect(pkg.dependencies["libsodium-wrappers-sumo"]).toBe(SODIUM_VERSION);
    expect(pkg.overrides["libsodium-sumo"]).toBe(SODIUM_VERSION);
    expect(direct).not.toBe(wrapperDecrypt);
    expect(chooseDecrypt()).toBe(direct);
  });

  test("identical plaintexts for any size, any UTF-8 AAD", () => {
    for (const len of [0, 1, 15, 16, 17, 255, 4096, 65_536, 200_000]) {
      for (const aad of ["", "vmauth/secret/a/v1", "é 🔑 \0 $"]) {
        const pt = randomBytes(len);
        const { key, nonce, ct } = sealed(pt, aad);
        expect(both(key, nonce, ct, aad)?.equals(pt)).toBe(true);
      }
    }
  });

  test("identical failures on tampered input, and the scratch area still decrypts after", () => {
    const pt = Buffer.from("a value");
    const aad = "vmauth/secret/a/v1";
    const { key, nonce, ct } = sealed(pt, aad);
    const flip = (b: Uint8Array, i: number) => {
      const c = Buffer.from(b);
      c[i] = (c[i] ?? 0) ^ 0x80;
      return c;
    };
    for (let i = 0; i < ct.length; i++) expect(both(key, nonce, flip(ct, i), aad)).toBeUndefined();
    expect(both(key, flip(nonce, 23), ct, aad)).toBeUndefined();
    expect(both(flip(key, 0), nonce, ct, aad)).toBeUndefined();
    expect(both(key, nonce, ct, "vmauth/secret/a/v2")).toBeUndefined();
    for (const n of [0, 15, 16, ct.length - 1]) {
      expect(both(key, nonce, ct.subarray(0, n), aad)).toBeUndefined();
    }
    expect(both(key, nonce, ct, aad)?.equals(pt)).toBe(true);
  });

  test("identical results for random values, AADs and one flipped bit or none", () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ maxLength: 2048 }),
        fc.string({ unit: "grapheme", maxLength: 64 }),
        fc.option(fc.nat(), { nil: undefined }),
        (pt, aad, at) => {
          const { key, nonce, ct } = sealed(pt, aad);
          if (at !== undefined) ct[at % ct.length] = (ct[at % ct.length] ?? 0) ^ 1;
          const out = both(key, nonce, ct, aad);
          if (at === undefined) expect(out?.equals(pt)).toBe(true);
          else expect(out).toBeUndefined();
        },
      ),
      { numRuns: 300 },
    );
  });

  test("the shape check refuses anything but libsodium's own module", () => {
    const real = core();
    expect(createDirectDecrypt(undefined)).toBeUndefined();
    expect(createDirectDecrypt({})).toBeUndefined();
    expect(createDirectDecrypt({ ...real, HEAPU8: undefined })).toBeUndefined();
    expect(
      createDirectDecrypt({ ...real, _crypto_aead_xchacha20poly1305_ietf_decrypt: undefined }),
    ).toBeUndefined();
    // Members that exist but answer wrong, or throw, fail the known answer.
    const says = (rc: number) => ({
      ...real,
      _crypto_aead_xchacha20poly1305_ietf_decrypt: () => rc,
    });
    expect(createDirectDecrypt(says(0))).toBeUndefined();
    expect(createDirectDecrypt(says(-1))).toBeUndefined();
    const trap = () => {
      throw new Error("unreachable");
    };
    expect(
      createDirectDecrypt({ ...real, _crypto_aead_xchacha20poly1305_ietf_decrypt: trap }),
    ).toBeUndefined();
    expect(createDirectDecrypt(real)).toBeTypeOf("function");
  });
});
