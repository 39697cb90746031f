import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { GetEnvResponseSchema, WatchEnvResponseSchema } from "../../proto/gen/vmauth/v1/env_pb.js";
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
