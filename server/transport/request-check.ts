/**
 * Request bytes are checked before any use case sees them (issue #8), in the method's
 * deserialiser, so that every RPC, current or future, gets the same rules:
 *
 * - Bytes protobuf-es cannot decode answer INVALID_ARGUMENT ("request: could not be decoded
 *   as …"). grpc-js answers INTERNAL when a deserialiser throws (1.14
 *   server-interceptors.js decompressAndMaybePush), so the deserialiser never throws: it
 *   returns a `RejectedRequest`, which the adapter answers once the caller is authenticated.
 * - Integers must fit what the field's type promises and what JS can hold exactly. A uint32
 *   arriving as a wider varint is silently truncated by protobuf-es (2^32+1 reads as 1, as in
 *   every protobuf runtime), and a uint64 above 2^53−1 loses precision as a number (2^64−1
 *   once made ListVms fail for every admin). Neither is visible in the decoded message, so
 *   the wire is read a second time, the same way protobuf-es reads it, with every integer
 *   field read at 64 bits: a 32-bit field must hold a 32-bit value, and a 64-bit field at
 *   most Number.MAX_SAFE_INTEGER in magnitude. INVALID_ARGUMENT names the field.
 *
 * Messages without integer fields (GetEnv's) skip the second read entirely.
 */
import type { DescField, DescMessage } from "@bufbuild/protobuf";
import { fromBinary, ScalarType } from "@bufbuild/protobuf";
import { BinaryReader, WireType } from "@bufbuild/protobuf/wire";
import { invalidArgument, SecretsError } from "../errors.js";

/** A request the transport refused before decoding finished; `error` is what it answers. */
export class RejectedRequest {
  constructor(readonly error: SecretsError) {}
}

/**
 * The deserialiser of a method whose input is `schema`: the decoded message, or a
 * RejectedRequest (never a throw, see the module comment).
 */
export function checkedDeserializer(schema: DescMessage): (bytes: Buffer) => unknown {
  const scan = hasIntegers(schema, new Map());
  return (bytes) => {
    let msg: unknown;
    try {
      msg = fromBinary(schema, bytes);
    } catch {
      return new RejectedRequest(
        new SecretsError("invalid_argument", `request: could not be decoded as ${schema.typeName}`),
      );
    }
    if (!scan) return msg;
    try {
      const reader = new BinaryReader(bytes);
      checkMessage(schema, reader, reader.len, "");
    } catch (err) {
      if (err instanceof SecretsError) return new RejectedRequest(err);
      return new RejectedRequest(
        new SecretsError("invalid_argument", `request: could not be decoded as ${schema.typeName}`),
      );
    }
    return msg;
  };
}

// --- internal ---

const MAX = BigInt(Number.MAX_SAFE_INTEGER);
const U32_MAX = 0xffff_ffffn;
const I32_MIN = -0x8000_0000n;
const I32_MAX = 0x7fff_ffffn;

/** Integer scalar types, each with how it is read at full width and its allowed range. */
const INTEGERS = new Map<ScalarType, { read: (r: BinaryReader) => bigint; range: Range }>([
  [ScalarType.UINT32, { read: (r) => big(r.uint64()), range: { min: 0n, max: U32_MAX } }],
  [ScalarType.INT32, { read: (r) => big(r.int64()), range: { min: I32_MIN, max: I32_MAX } }],
  // zigzag: a sint32 fits when its raw varint fits 32 bits.
  [ScalarType.SINT32, { read: (r) => big(r.uint64()), range: { min: 0n, max: U32_MAX } }],
  [ScalarType.UINT64, { read: (r) => big(r.uint64()), range: { min: 0n, max: MAX } }],
  [ScalarType.FIXED64, { read: (r) => big(r.fixed64()), range: { min: 0n, max: MAX } }],
  [ScalarType.INT64, { read: (r) => big(r.int64()), range: { min: -MAX, max: MAX } }],
  [ScalarType.SFIXED64, { read: (r) => big(r.sfixed64()), range: { min: -MAX, max: MAX } }],
  [ScalarType.SINT64, { read: (r) => big(r.sint64()), range: { min: -MAX, max: MAX } }],
]);

interface Range {
  min: bigint;
  max: bigint;
}

const ENUM = { read: (r: BinaryReader) => big(r.int64()), range: { min: I32_MIN, max: I32_MAX } };

function big(v: bigint | string): bigint {
  return typeof v === "bigint" ? v : BigInt(v);
}

/** Whether a message (or one nested in it) has a field this module checks. */
function hasIntegers(schema: DescMessage, seen: Map<DescMessage, boolean>): boolean {
  const known = seen.get(schema);
  if (known !== undefined) return known;
  seen.set(schema, false); // a cycle adds nothing new
  let found = false;
  for (const f of schema.fields) {
    const nested = messageOf(f);
    if (nested ? hasIntegers(nested, seen) : integerOf(f, "value") !== undefined) found = true;
    if (f.fieldKind === "map" && INTEGERS.has(f.mapKey)) found = true;
  }
  seen.set(schema, found);
  return found;
}

function messageOf(f: DescField): DescMessage | undefined {
  if (f.fieldKind === "message") return f.message;
  if (f.fieldKind === "list" && f.listKind === "message") return f.message;
  if (f.fieldKind === "map" && f.mapKind === "message") return f.message;
  return undefined;
}

/** How a checked field's values are read, or undefined when they need no check. */
function integerOf(f: DescField, part: "key" | "value") {
  if (part === "key") return f.fieldKind === "map" ? INTEGERS.get(f.mapKey) : undefined;
  switch (f.fieldKind) {
    case "enum":
      return ENUM;
    case "scalar":
      return INTEGERS.get(f.scalar);
    case "list":
      return f.listKind === "enum"
        ? ENUM
        : f.listKind === "scalar"
          ? INTEGERS.get(f.scalar)
          : undefined;
    case "map":
      return f.mapKind === "enum"
        ? ENUM
        : f.mapKind === "scalar"
          ? INTEGERS.get(f.scalar)
          : undefined;
    default:
      return undefined;
  }
}

/**
 * Walks one message's fields as protobuf-es's readMessage does (from-binary.js in 2.13:
 * scalars are read by the field's type, whatever the wire type; lists may be packed; map
 * entries read fields 1 and 2 only), so both reads stay aligned byte for byte.
 */
function checkMessage(schema: DescMessage, r: BinaryReader, end: number, prefix: string) {
  while (r.pos < end) {
    const [no, wireType] = r.tag();
    const f = schema.fields.find((x) => x.number === no);
    if (!f) {
      r.skip(wireType, no);
      continue;
    }
    const path = prefix + f.name;
    const nested = messageOf(f);
    if (wireType === WireType.StartGroup) {
      // Delimited (group) encoding: none of our protos use it; skipped as protobuf-es
      // would read it, so its integers go unchecked rather than misread.
      r.skip(wireType, no);
    } else if (f.fieldKind === "map") {
      checkMapEntry(f, r, path);
    } else if (nested) {
      const len = r.uint32();
      checkMessage(nested, r, r.pos + len, `${path}.`);
    } else if (f.fieldKind === "list" && isPacked(f, wireType)) {
      const stop = r.uint32() + r.pos;
      while (r.pos < stop) readValue(f, r, path);
    } else {
      readValue(f, r, path);
    }
  }
}

function isPacked(f: Extract<DescField, { fieldKind: "list" }>, wireType: WireType): boolean {
  const scalar = f.listKind === "scalar" ? f.scalar : ScalarType.INT32;
  return (
    wireType === WireType.LengthDelimited &&
    scalar !== ScalarType.STRING &&
    scalar !== ScalarType.BYTES
  );
}

function checkMapEntry(f: Extract<DescField, { fieldKind: "map" }>, r: BinaryReader, path: string) {
  const len = r.uint32();
  const end = r.pos + len;
  while (r.pos < end) {
    const [no] = r.tag();
    if (no === 1) {
      readScalar(f.mapKey, integerOf(f, "key"), r, `${path} key`);
    } else if (no === 2) {
      if (f.mapKind === "message") {
        const n = r.uint32();
        checkMessage(f.message, r, r.pos + n, `${path}.`);
      } else {
        const scalar = f.mapKind === "scalar" ? f.scalar : ScalarType.INT32;
        readScalar(scalar, integerOf(f, "value"), r, path);
      }
    }
  }
}

function readValue(f: DescField, r: BinaryReader, path: string) {
  const scalar =
    f.fieldKind === "scalar" || (f.fieldKind === "list" && f.listKind === "scalar")
      ? f.scalar
      : ScalarType.INT32;
  readScalar(scalar, integerOf(f, "value"), r, path);
}

/** Reads one value as protobuf-es would, checking integers at full width. */
function readScalar(
  type: ScalarType,
  integer: { read: (r: BinaryReader) => bigint; range: Range } | undefined,
  r: BinaryReader,
  path: string,
) {
  if (integer) {
    const v = integer.read(r);
    if (v < integer.range.min || v > integer.range.max) {
      const bound =
        integer.range.min === 0n
          ? `at most ${integer.range.max}`
          : `between ${integer.range.min} and ${integer.range.max}`;
      throw invalidArgument(path, `${v} is out of range (${bound})`);
    }
    return;
  }
  switch (type) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      r.bytes();
      return;
    case ScalarType.BOOL:
      r.bool();
      return;
    case ScalarType.DOUBLE:
      r.double();
      return;
    case ScalarType.FLOAT:
      r.float();
      return;
    case ScalarType.FIXED32:
      r.fixed32();
      return;
    case ScalarType.SFIXED32:
      r.sfixed32();
      return;
    default:
      // Every other scalar type is an integer, read above.
      throw new Error(`unexpected scalar type ${type}`);
  }
}
