/**
 * Values for per_install_generated entries (issue #11): from the OS CSPRNG only (`node:crypto`),
 * each character uniform over its alphabet.
 */
import { randomBytes, randomUUID } from "node:crypto";
import { invalidArgument } from "../../errors.js";
import { CHARSETS, type Charset, type Generator, MANIFEST_LIMITS } from "./schema.js";

/** The alphabet of each charset. base64 has no padding: a length counts characters. */
export const CHARSET_ALPHABETS: Readonly<Record<Charset, string>> = {
  alnum: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
  hex: "0123456789abcdef",
  base64: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
  base64url: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
};

/**
 * A fresh value: `length` characters drawn uniformly from the charset (rejection sampling, so
 * no modulo bias), or a v4 UUID from `crypto.randomUUID`. Throws INVALID_ARGUMENT on a
 * generator `validateManifest` would refuse (length outside 8..4096, unknown charset).
 */
export function generateValue(g: Generator): string {
  if (g.type === "uuid") return randomUUID();
  const { minLength, maxLength } = MANIFEST_LIMITS;
  if (!Number.isInteger(g.length) || g.length < minLength || g.length > maxLength) {
    throw invalidArgument("generator.length", `must be ${minLength} to ${maxLength}`);
  }
  if (!CHARSETS.includes(g.charset)) {
    throw invalidArgument("generator.charset", `unknown charset (known: ${CHARSETS.join(", ")})`);
  }
  return randomString(CHARSET_ALPHABETS[g.charset], g.length);
}

// --- internal ---

/**
 * `length` characters of `alphabet` (2..256 symbols). A byte b is used only when
 * b < limit, the largest multiple of the alphabet size <= 256; then b % size is uniform.
 */
function randomString(alphabet: string, length: number): string {
  const size = alphabet.length;
  const limit = 256 - (256 % size);
  let out = "";
  while (out.length < length) {
    // enough bytes on average for what is left, plus slack so one round nearly always suffices
    const buf = randomBytes(Math.ceil(((length - out.length) * 256) / limit) + 16);
    for (const b of buf) {
      if (b >= limit) continue;
      out += alphabet[b % size];
      if (out.length === length) break;
    }
    buf.fill(0);
  }
  return out;
}
