/**
 * XChaCha20-Poly1305-IETF decryption for the barrier's hot path (every value of every
 * GetEnv). libsodium-wrappers' `crypto_aead_xchacha20poly1305_ietf_decrypt` mallocs, copies
 * and frees every argument and the result on each call: ~2 µs per value, most of GetEnv's
 * CPU. The direct path calls libsodium's own C function on the wasm heap with one reused
 * scratch area instead.
 *
 * That reads internals of libsodium-wrappers-sumo 0.8.4 (its emscripten module,
 * `sodium.libsodium`: `HEAPU8`, `_malloc`, `_crypto_aead_xchacha20poly1305_ietf_decrypt`), so
 * its shape is detected once, after `sodium.ready`: the members exist and a known-answer
 * decrypt (and a tampered one) gives the right result. Anything else falls back to the
 * wrapper's decrypt, which gives identical plaintexts and identical failures
 * (direct-decrypt.test.ts, which also pins the version).
 */
import sodium from "libsodium-wrappers-sumo";

/** The libsodium-wrappers-sumo version whose internals the direct path reads. */
export const SODIUM_VERSION = "0.8.4";

/**
 * Decrypts `ct` (ciphertext and 16-byte tag) with `aad` as UTF-8 associated data: the
 * plaintext, or undefined when authentication fails. Never throws for bad input.
 */
export type AeadDecrypt = (
  key: Uint8Array,
  nonce: Uint8Array,
  ct: Uint8Array,
  aad: string,
) => Buffer | undefined;

/** The wrapper's decrypt as an AeadDecrypt: the reference, and the fallback. */
export const wrapperDecrypt: AeadDecrypt = (key, nonce, ct, aad) => {
  let pt: Uint8Array;
  try {
    pt = sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(null, ct, aad, nonce, key);
  } catch {
    // The wrapper throws on every failure (tag mismatch, too short): the direct path's undefined.
    return undefined;
  }
  return Buffer.from(pt.buffer, pt.byteOffset, pt.byteLength);
};

/**
 * The decrypt the barrier uses, chosen once per process: the direct path over the wrapper's
 * emscripten module when it has the shape it needs and passes the known answer, else
 * `wrapperDecrypt`. Call only after `sodium.ready` (before it, the module is not loaded and
 * the choice would stick to the fallback).
 */
export function chooseDecrypt(): AeadDecrypt {
  const core = (sodium as unknown as { libsodium?: unknown }).libsodium;
  chosen ??= createDirectDecrypt(core) ?? wrapperDecrypt;
  return chosen;
}

/**
 * The direct path over `core`, or undefined when `core` lacks a member it calls or its
 * answers are wrong (see the module comment). Key and plaintext are wiped from the scratch
 * area before each call returns.
 */
export function createDirectDecrypt(core: unknown): AeadDecrypt | undefined {
  if (!hasShape(core)) return undefined;
  let scratch: { addr: number; size: number } | undefined;
  const decrypt: AeadDecrypt = (key, nonce, ct, aad) => {
    const aadLen = Buffer.byteLength(aad, "utf8");
    const need = 32 + 24 + aadLen + ct.length * 2;
    if (!scratch || scratch.size < need) {
      // Never freed: one area, grown to the largest value seen (at most ~130 KiB).
      const size = Math.max(need, 16 * 1024);
      scratch = { addr: core._malloc(size), size };
    }
    const k = scratch.addr;
    const n = k + 32;
    const a = n + 24;
    const c = a + aadLen;
    const m = c + ct.length;
    // Read after _malloc: growing the wasm memory replaces HEAPU8.
    let heap = core.HEAPU8;
    heap.set(key, k);
    heap.set(nonce, n);
    Buffer.from(heap.buffer, heap.byteOffset + a, aadLen).write(aad, "utf8");
    heap.set(ct, c);
    // (m, mlen_p, nsec, c, clen_lo, clen_hi, ad, adlen_lo, adlen_hi, npub, k): 64-bit lengths
    // are passed as two 32-bit halves by this emscripten build.
    const rc = core._crypto_aead_xchacha20poly1305_ietf_decrypt(
      m,
      null,
      0,
      c,
      ct.length,
      0,
      a,
      aadLen,
      0,
      n,
      k,
    );
    heap = core.HEAPU8;
    const mlen = ct.length - 16;
    // A copy: the scratch area is wiped below and reused by the next call.
    const out = rc === 0 ? Buffer.from(heap.subarray(m, m + mlen)) : undefined;
    heap.fill(0, k, n);
    heap.fill(0, m, m + Math.max(mlen, 0));
    return out;
  };
  return knownAnswer(decrypt) ? decrypt : undefined;
}

// --- internal ---

/** What the direct path calls in libsodium-wrappers-sumo 0.8's emscripten module. */
interface SodiumCore {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _crypto_aead_xchacha20poly1305_ietf_decrypt(...args: (number | null)[]): number;
}

let chosen: AeadDecrypt | undefined;

function hasShape(core: unknown): core is SodiumCore {
  const c = core as Partial<Record<keyof SodiumCore, unknown>> | null | undefined;
  return (
    typeof c === "object" &&
    c !== null &&
    c.HEAPU8 instanceof Uint8Array &&
    typeof c._malloc === "function" &&
    typeof c._crypto_aead_xchacha20poly1305_ietf_decrypt === "function"
  );
}

// The key, nonce and plaintext of draft-irtf-cfrg-xchacha-03 A.3.1 (shortened), with an
// ASCII AAD: the ciphertext's first 40 bytes are the draft's, the tag is libsodium's.
const KAT = {
  key: Buffer.from("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f", "hex"),
  nonce: Buffer.from("404142434445464748494a4b4c4d4e4f5051525354555657", "hex"),
  aad: "vm-auth known answer",
  plaintext: "Ladies and Gentlemen of the class of '99",
  ct: Buffer.from(
    "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa644" +
      "334b14a49102f232a92bf62f648fc343",
    "hex",
  ),
};

/** The known answer opens, and the same ciphertext with one bit flipped does not. */
function knownAnswer(decrypt: AeadDecrypt): boolean {
  try {
    const pt = decrypt(KAT.key, KAT.nonce, KAT.ct, KAT.aad);
    const tampered = Buffer.from(KAT.ct);
    tampered[0] = (tampered[0] ?? 0) ^ 1;
    return (
      pt?.toString("utf8") === KAT.plaintext &&
      decrypt(KAT.key, KAT.nonce, tampered, KAT.aad) === undefined
    );
  } catch {
    // A shape that throws (a renamed export, a wasm trap) is not the one we know.
    return false;
  }
}
