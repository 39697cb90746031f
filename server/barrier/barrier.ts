/**
 * The barrier: the only code that touches keys and libsodium. Values are sealed with
 * XChaCha20-Poly1305-IETF under a data key; the associated data binds each blob to its slot
 * (secret name and version), so a blob moved to another slot fails to open. Data keys are
 * kept in a keyring whose terms are wrapped by the master key; re-keying re-wraps the terms
 * and never touches a value. Nonces come from node:crypto (libsodium-wrappers' randombytes
 * costs ~100 µs per call on Node 20, DESIGN.md).
 */
import { randomBytes } from "node:crypto";
import sodium from "libsodium-wrappers-sumo";
import { SecretsError } from "../errors.js";
import type { KeyringRecord } from "../store/types.js";
import { chooseDecrypt } from "./direct-decrypt.js";

const BLOB_VERSION = 1;
const HEADER = 1 + 4 + 24;
const KEY_BYTES = 32;

/** Sealing and opening of values, token hashing, and re-keying. */
export interface Barrier {
  /** Short id of the master key in use. */
  readonly masterKeyId: string;
  /** The keyring to persist (wrapped keys only). */
  readonly keyring: KeyringRecord;
  seal(aad: string, plaintext: string): string;
  /** Throws SecretsError("internal") when the blob was tampered with or moved. */
  open(aad: string, blob: string): string;
  /** Like open, as UTF-8 bytes: for responses that carry the value without a JS string. */
  openBytes(aad: string, blob: string): Buffer;
  /**
   * Parses a blob once (base64, header) for repeated opening with `openParsed`; the result
   * holds ciphertext only. Throws on a malformed blob.
   */
  parse(blob: string): ParsedBlob;
  openParsed(aad: string, blob: ParsedBlob): Buffer;
  /** Keyed BLAKE2b of a token, hex. */
  hashToken(token: string): string;
  /** A keyring with every term re-wrapped under `newMasterKey`; does not switch to it. */
  rewrap(newMasterKey: Uint8Array): KeyringRecord;
  /** Switch to a master key whose keyring `rewrap` produced (after it is durable). */
  useMasterKey(newMasterKey: Uint8Array, keyring: KeyringRecord): void;
  /** Zero every key in memory. The barrier is unusable afterwards. */
  zero(): void;
}

/** 32 random bytes for a new master key. */
export function newMasterKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_BYTES));
}

/** Short public id of a master key (keyed BLAKE2b, not reversible). */
export function masterKeyId(masterKey: Uint8Array): string {
  return sodium.to_hex(sodium.crypto_generichash(8, "vm-auth master key id", masterKey));
}

/**
 * Opens the barrier with a master key: unwraps an existing keyring, or creates a new one
 * when `keyring` is null. Throws FAILED_PRECONDITION when the master key does not fit.
 */
export async function createBarrier(
  masterKey: Uint8Array,
  keyring: KeyringRecord | null,
): Promise<Barrier> {
  await sodium.ready;
  let master = new Uint8Array(masterKey);
  let record = keyring ?? newKeyring(master);
  if (record.masterKeyId !== masterKeyId(master)) {
    throw new SecretsError(
      "failed_precondition",
      `master key ${masterKeyId(master)} does not match the store's keyring (${record.masterKeyId})`,
    );
  }
  const terms = new Map<number, Uint8Array>();
  for (const t of record.terms)
    terms.set(t.term, openWith(master, `keyring/term/${t.term}`, t.wrapped));
  const tokenKey = openWith(master, "keyring/token", record.tokenKey);
  // Values open on the hot path: libsodium's C function on its heap when that checks out at
  // start, else the wrapper's decrypt, with identical results (direct-decrypt.ts).
  const decrypt = chooseDecrypt();
  const openParsed = (aad: string, p: ParsedBlob): Buffer => {
    const pt = decrypt(keyFor(p.term), p.nonce, p.ct, aad);
    if (pt === undefined) throw new SecretsError("internal", "ciphertext failed authentication");
    return pt;
  };
  const openBytes = (aad: string, blob: string): Buffer => openParsed(aad, parseBlob(blob));
  const keyFor = (term: number) => {
    const key = terms.get(term);
    if (!key) throw new SecretsError("internal", `no data key for term ${term}`);
    return key;
  };

  return {
    get masterKeyId() {
      return record.masterKeyId;
    },
    get keyring() {
      return record;
    },
    seal(aad, plaintext) {
      const term = record.activeTerm;
      const nonce = randomBytes(24);
      const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
        plaintext,
        aad,
        null,
        nonce,
        keyFor(term),
      );
      const out = Buffer.allocUnsafe(HEADER + ct.length);
      out[0] = BLOB_VERSION;
      out.writeUInt32BE(term, 1);
      nonce.copy(out, 5);
      out.set(ct, HEADER);
      return out.toString("base64");
    },
    open(aad, blob) {
      return openBytes(aad, blob).toString("utf8");
    },
    openBytes,
    parse: parseBlob,
    openParsed,
    hashToken(token) {
      return sodium.to_hex(sodium.crypto_generichash(32, token, tokenKey));
    },
    rewrap(newMaster) {
      return {
        masterKeyId: masterKeyId(newMaster),
        activeTerm: record.activeTerm,
        terms: record.terms.map((t) => ({
          term: t.term,
          createdAt: t.createdAt,
          wrapped: sealWith(newMaster, `keyring/term/${t.term}`, keyFor(t.term)),
        })),
        tokenKey: sealWith(newMaster, "keyring/token", tokenKey),
      };
    },
    useMasterKey(newMaster, next) {
      if (next.masterKeyId !== masterKeyId(newMaster)) {
        throw new SecretsError("internal", "keyring does not belong to the new master key");
      }
      sodium.memzero(master);
      master = new Uint8Array(newMaster);
      record = next;
    },
    zero() {
      sodium.memzero(master);
      sodium.memzero(tokenKey);
      for (const k of terms.values()) sodium.memzero(k);
      terms.clear();
    },
  };
}

/** A sealed value with its base64 and header already decoded. */
export interface ParsedBlob {
  readonly term: number;
  readonly nonce: Buffer;
  readonly ct: Buffer;
}

// --- internal ---

function parseBlob(blob: string): ParsedBlob {
  const buf = Buffer.from(blob, "base64");
  if (buf.length < HEADER + 16 || buf[0] !== BLOB_VERSION) {
    throw new SecretsError("internal", "malformed ciphertext");
  }
  return { term: buf.readUInt32BE(1), nonce: buf.subarray(5, HEADER), ct: buf.subarray(HEADER) };
}

function newKeyring(master: Uint8Array): KeyringRecord {
  const createdAt = new Date().toISOString();
  return {
    masterKeyId: masterKeyId(master),
    activeTerm: 1,
    terms: [{ term: 1, createdAt, wrapped: sealWith(master, "keyring/term/1", randomBytes(32)) }],
    tokenKey: sealWith(master, "keyring/token", randomBytes(32)),
  };
}

function sealWith(key: Uint8Array, aad: string, plaintext: Uint8Array): string {
  const nonce = randomBytes(24);
  const ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, null, nonce, key);
  return Buffer.concat([nonce, ct]).toString("base64");
}

function openWith(key: Uint8Array, aad: string, blob: string): Uint8Array {
  const buf = Buffer.from(blob, "base64");
  try {
    return sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      null,
      buf.subarray(24),
      aad,
      buf.subarray(0, 24),
      key,
    );
  } catch (cause) {
    throw new SecretsError("failed_precondition", "master key cannot open the keyring", { cause });
  }
}
