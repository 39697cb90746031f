/**
 * A hand-written protobuf encoder for EnvSnapshot, the one message on the hot paths (every
 * GetEnv, every WatchEnv fan-out). protobuf-es's reflective toBinary costs ~73 µs for a
 * 20-variable snapshot here, more than the rest of GetEnv together; this writes the same
 * bytes (fields in number order, proto3 defaults omitted, as toBinary does, checked by
 * env-wire.test.ts against toBinary and fromBinary) in a few µs.
 *
 * GetEnvResponse.snapshot and WatchEnvResponse.snapshot are both field 1, so the framed
 * bytes serve as either response.
 */
import { Encoded } from "../../proto/adapter.js";
import type { EnvVarValue } from "../secrets/env.js";

/**
 * What `encodeSnapshotResponse` writes: an EnvSnapshot's fields, integers as numbers, and
 * each value as a string or UTF-8 bytes. env-wire.test.ts checks it against env.proto's
 * descriptors, so a field added there fails a test until it is written here.
 */
export interface WireSnapshot {
  vm: string;
  revision: number;
  vars: readonly (Omit<EnvVarValue, "value"> & { value: string | Uint8Array })[];
  digest: string;
  /** Field 5: required manifest entries without a good value (never empty strings). */
  missing?: readonly string[];
}

/** A variable's fields other than its value, encoded: they repeat call after call. */
export interface VarMeta {
  /** Field 1 (name). */
  readonly pre: Buffer;
  /** Fields 3 to 5 (secret, version, scope). */
  readonly post: Buffer;
}

/** Encodes the non-value fields of each variable, for `encodeSnapshotResponse`'s `meta`. */
export function encodeVarMeta(vars: WireSnapshot["vars"]): VarMeta[] {
  return vars.map((v) => {
    const pre = Buffer.allocUnsafe(strField(v.name));
    writeStr(pre, 0, 0x0a, v.name);
    const postLen =
      strField(v.secret) + (v.version !== 0 ? 1 + varintLen(v.version) : 0) + strField(v.scope);
    const post = Buffer.allocUnsafe(postLen);
    let o = writeStr(post, 0, 0x1a, v.secret);
    if (v.version !== 0) {
      post[o++] = 0x20;
      o = writeVarint(post, o, v.version);
    }
    writeStr(post, o, 0x2a, v.scope);
    return { pre, post };
  });
}

/**
 * `{ snapshot: s }` as GetEnvResponse or WatchEnvResponse bytes. `meta`, when given, must be
 * `encodeVarMeta` of variables with the same names, secrets, versions and scopes, in order.
 */
export function encodeSnapshotResponse(s: WireSnapshot, meta?: readonly VarMeta[]): Encoded {
  const varLens = meta
    ? s.vars.map(
        (v, i) => (meta[i]?.pre.length ?? 0) + valueField(v.value) + (meta[i]?.post.length ?? 0),
      )
    : s.vars.map(envVarLength);
  let body = 0;
  body += strField(s.vm);
  if (s.revision !== 0) body += 1 + varintLen(s.revision);
  for (const len of varLens) body += 1 + varintLen(len) + len;
  body += strField(s.digest);
  for (const m of s.missing ?? []) body += strField(m);
  const buf = Buffer.allocUnsafe(1 + varintLen(body) + body);
  let o = 0;
  buf[o++] = 0x0a; // field 1, length-delimited
  o = writeVarint(buf, o, body);
  o = writeStr(buf, o, 0x0a, s.vm);
  if (s.revision !== 0) {
    buf[o++] = 0x10; // field 2, varint
    o = writeVarint(buf, o, s.revision);
  }
  s.vars.forEach((v, i) => {
    buf[o++] = 0x1a; // field 3, length-delimited
    o = writeVarint(buf, o, varLens[i] as number);
    const m = meta?.[i];
    if (m) {
      o += m.pre.copy(buf, o);
      o = writeStrOrBytes(buf, o, 0x12, v.value);
      o += m.post.copy(buf, o);
      return;
    }
    o = writeStr(buf, o, 0x0a, v.name);
    o = writeStrOrBytes(buf, o, 0x12, v.value);
    o = writeStr(buf, o, 0x1a, v.secret);
    if (v.version !== 0) {
      buf[o++] = 0x20; // field 4, varint
      o = writeVarint(buf, o, v.version);
    }
    o = writeStr(buf, o, 0x2a, v.scope);
  });
  o = writeStr(buf, o, 0x22, s.digest);
  for (const m of s.missing ?? []) o = writeStr(buf, o, 0x2a, m); // field 5, repeated
  if (o !== buf.length) throw new Error(`env-wire: wrote ${o} of ${buf.length} bytes`);
  return new Encoded(buf);
}

// --- internal ---

function envVarLength(v: WireSnapshot["vars"][number]): number {
  return (
    strField(v.name) +
    (typeof v.value === "string" ? strField(v.value) : bytesField(v.value)) +
    strField(v.secret) +
    (v.version !== 0 ? 1 + varintLen(v.version) : 0) +
    strField(v.scope)
  );
}

/** Size of a string field with a one-byte tag, 0 when the string is empty (proto3). */
function strField(s: string): number {
  if (s === "") return 0;
  const n = Buffer.byteLength(s, "utf8");
  return 1 + varintLen(n) + n;
}

function valueField(v: string | Uint8Array): number {
  return typeof v === "string" ? strField(v) : bytesField(v);
}

function bytesField(b: Uint8Array): number {
  return b.length === 0 ? 0 : 1 + varintLen(b.length) + b.length;
}

/** Values arrive as UTF-8 bytes straight from decryption: copied, not re-encoded. */
function writeStrOrBytes(buf: Buffer, o: number, tag: number, v: string | Uint8Array): number {
  if (typeof v === "string") return writeStr(buf, o, tag, v);
  if (v.length === 0) return o;
  buf[o++] = tag;
  o = writeVarint(buf, o, v.length);
  buf.set(v, o);
  return o + v.length;
}

function writeStr(buf: Buffer, o: number, tag: number, s: string): number {
  if (s === "") return o;
  buf[o++] = tag;
  const n = Buffer.byteLength(s, "utf8");
  o = writeVarint(buf, o, n);
  return o + buf.write(s, o, "utf8");
}

function varintLen(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len++;
  }
  return len;
}

function writeVarint(buf: Buffer, o: number, n: number): number {
  while (n >= 0x80) {
    buf[o++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[o++] = n;
  return o;
}
