import { isDeepStrictEqual } from "node:util";
import type { DescField, DescMessage, Message } from "@bufbuild/protobuf";
import { create, fromBinary, ScalarType, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import type { EnvSnapshot } from "../../proto/gen/vmauth/v1/env_pb.js";
import {
  EnvSnapshotSchema,
  GetEnvResponseSchema,
  WatchEnvResponseSchema,
} from "../../proto/gen/vmauth/v1/env_pb.js";
import type { WireSnapshot } from "./env-wire.js";
import { encodeSnapshotResponse, encodeVarMeta } from "./env-wire.js";

const snapshotArb = fc.record({
  vm: fc.string(),
  revision: fc.oneof(fc.constant(0), fc.nat(), fc.maxSafeNat()),
  digest: fc.string(),
  vars: fc.array(
    fc.record({
      name: fc.string(),
      value: fc.string({ unit: "grapheme", maxLength: 300 }),
      secret: fc.string(),
      version: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffffffff })),
      scope: fc.string(),
    }),
    { maxLength: 30 },
  ),
});

describe("encodeSnapshotResponse", () => {
  test("writes exactly protobuf-es's bytes, for GetEnv and WatchEnv alike", () => {
    fc.assert(
      fc.property(snapshotArb, (s) => {
        const bytes = encodeSnapshotResponse(s).bytes;
        // Values as UTF-8 bytes (how decryption hands them over) give the same bytes.
        const asBytes = { ...s, vars: s.vars.map((v) => ({ ...v, value: Buffer.from(v.value) })) };
        expect(encodeSnapshotResponse(asBytes).bytes.equals(bytes)).toBe(true);
        // With the non-value fields encoded ahead (GetEnv's per-revision cache): same bytes.
        const meta = encodeVarMeta(s.vars);
        expect(encodeSnapshotResponse(asBytes, meta).bytes.equals(bytes)).toBe(true);
        const snapshot = { ...s, revision: BigInt(s.revision) };
        const get = toBinary(GetEnvResponseSchema, create(GetEnvResponseSchema, { snapshot }));
        expect(Buffer.from(get).equals(bytes)).toBe(true);
        const watch = fromBinary(WatchEnvResponseSchema, bytes);
        expect(watch.event.case).toBe("snapshot");
        expect(watch.event.value).toMatchObject({ ...snapshot, vars: s.vars });
      }),
      { numRuns: 500 },
    );
  });
});

/**
 * The encoder is hand-written, so a field added to env.proto would be silently dropped by it:
 * these tests read the generated descriptors instead of a list of today's fields.
 */
describe("encodeSnapshotResponse against env.proto's descriptors", () => {
  test("writes every field of EnvSnapshot and EnvVar", () => {
    const expected = everyFieldSet(EnvSnapshotSchema, 1) as EnvSnapshot;
    const wire = toWire(expected) as WireSnapshot;
    const ways = {
      plain: encodeSnapshotResponse(wire).bytes,
      "with encodeVarMeta": encodeSnapshotResponse(wire, encodeVarMeta(wire.vars)).bytes,
    };
    for (const [way, bytes] of Object.entries(ways)) {
      const got = fromBinary(GetEnvResponseSchema, bytes).snapshot;
      const missing = got ? missingFields(EnvSnapshotSchema, expected, got) : ["snapshot"];
      expect(missing, `env-wire.ts (${way}) drops ${missing.join(", ")}`).toEqual([]);
      const want = create(GetEnvResponseSchema, { snapshot: expected });
      const same = Buffer.from(toBinary(GetEnvResponseSchema, want)).equals(bytes);
      expect(same, `env-wire.ts (${way}): not toBinary's bytes`).toBe(true);
    }
  });

  test("its bytes are field 1 of both responses, and GetEnvResponse has no other field", () => {
    for (const schema of [GetEnvResponseSchema, WatchEnvResponseSchema]) {
      const f = schema.fields.find((f) => f.number === 1);
      expect(f?.fieldKind === "message" && f.message.typeName).toBe(EnvSnapshotSchema.typeName);
    }
    expect(GetEnvResponseSchema.fields.map((f) => f.name)).toEqual(["snapshot"]);
  });
});

// --- internal ---

/** A message of `schema` with every field set to a value that is not its default. */
function everyFieldSet(schema: DescMessage, seed: number): Message {
  const init: Record<string, unknown> = {};
  for (const f of schema.fields) {
    const value = sampleOf(f, seed);
    if (!f.oneof) init[f.localName] = value;
    // One member of each oneof: the first.
    else init[f.oneof.localName] ??= { case: f.localName, value };
  }
  return create(schema, init);
}

function sampleOf(f: DescField, seed: number): unknown {
  const n = 300 + 10 * seed + f.number; // multi-byte varints, distinct per field
  switch (f.fieldKind) {
    case "scalar":
      return scalarOf(f.scalar, n);
    case "enum":
      return f.enum.values.find((v) => v.number !== 0)?.number ?? 1;
    case "message":
      return everyFieldSet(f.message, seed + 1);
    case "list":
      if (f.listKind === "message") return [1, 2].map((i) => everyFieldSet(f.message, seed + i));
      if (f.listKind === "enum") return [f.enum.values.at(-1)?.number ?? 1];
      return [scalarOf(f.scalar, n), scalarOf(f.scalar, n + 1)];
    case "map": {
      const key =
        f.mapKey === ScalarType.STRING ? "k" : f.mapKey === ScalarType.BOOL ? "true" : "1";
      if (f.mapKind === "message") return { [key]: everyFieldSet(f.message, seed + 1) };
      if (f.mapKind === "enum") return { [key]: f.enum.values.at(-1)?.number ?? 1 };
      return { [key]: scalarOf(f.scalar, n) };
    }
  }
}

function scalarOf(t: ScalarType, n: number): unknown {
  switch (t) {
    case ScalarType.STRING:
      return `f${n}-é`;
    case ScalarType.BYTES:
      return Uint8Array.of(n & 0xff, 0xff);
    case ScalarType.BOOL:
      return true;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return n + 0.5;
    case ScalarType.INT64:
    case ScalarType.UINT64:
    case ScalarType.SINT64:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return BigInt(n);
    default:
      return n;
  }
}

/** The encoder's input: the message with bigints as numbers (its integers are numbers). */
function toWire(v: unknown): unknown {
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v)) return v.map(toWire);
  if (v === null || typeof v !== "object" || v instanceof Uint8Array) return v;
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, toWire(x)]));
}

/** The fields of `want` (nested included) that `got` does not hold, as `Message.field (n)`. */
function missingFields(schema: DescMessage, want: Message, got: Message): string[] {
  const out = new Set<string>();
  for (const f of schema.fields) {
    const name = `${schema.name}.${f.name} (field ${f.number})`;
    const w = fieldOf(want, f);
    const g = fieldOf(got, f);
    if (f.fieldKind === "message") {
      if (g === undefined) out.add(name);
      else for (const m of missingFields(f.message, w as Message, g as Message)) out.add(m);
    } else if (f.fieldKind === "list" && f.listKind === "message") {
      const ws = w as Message[];
      const gs = g as Message[];
      if (gs.length !== ws.length) out.add(name);
      ws.forEach((wi, i) => {
        const gi = gs[i];
        if (gi) for (const m of missingFields(f.message, wi, gi)) out.add(m);
      });
    } else if (!isDeepStrictEqual(w, g)) {
      out.add(name);
    }
  }
  return [...out];
}

function fieldOf(msg: Message, f: DescField): unknown {
  const m = msg as unknown as Record<string, unknown>;
  if (!f.oneof) return m[f.localName];
  const o = m[f.oneof.localName] as { case?: string; value?: unknown };
  return o.case === f.localName ? o.value : undefined;
}
