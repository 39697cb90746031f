/**
 * Request checks on raw wire bytes, encoded by hand: what protobuf-es alone makes of them
 * (pinned, since that is why the check exists), and what the checked deserialiser answers.
 * Also pins grpc-js answering INTERNAL when a deserialiser throws, which is why it never does.
 */
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { SourceCodeInfo_LocationSchema } from "@bufbuild/protobuf/wkt";
import type { ServiceError } from "@grpc/grpc-js";
import { Metadata, status } from "@grpc/grpc-js";
import { describe, expect, test } from "vitest";
import { methodDefinition } from "../../proto/adapter.js";
import { AckEnvRequestSchema, WatchEnvRequestSchema } from "../../proto/gen/vmauth/v1/env_pb.js";
import {
  GetSecretValueRequestSchema,
  SecretService,
} from "../../proto/gen/vmauth/v1/secrets_pb.js";
import { str, uint, varint, wire } from "../../test/helpers/proto-wire.js";
import { checkedDeserializer, RejectedRequest } from "./request-check.js";
import { serveForTest } from "./serve-for-test.js";

const rejected = (r: unknown) => {
  expect(r).toBeInstanceOf(RejectedRequest);
  return (r as RejectedRequest).error;
};

describe("uint32: a wider varint", () => {
  const wide = wire(str(1, "openai"), uint(2, 2n ** 32n + 1n));

  test("protobuf-es alone truncates 2^32+1 to 1 (what every runtime does)", () => {
    expect(fromBinary(GetSecretValueRequestSchema, wide).version).toBe(1);
  });

  test("is refused, naming the field", () => {
    const err = rejected(checkedDeserializer(GetSecretValueRequestSchema)(wide));
    expect(err.code).toBe("invalid_argument");
    expect(err.field).toBe("version");
    expect(err.message).toBe("version: 4294967297 is out of range (at most 4294967295)");
  });

  test("2^32−1, and a valid value in a needlessly long varint, pass", () => {
    const de = checkedDeserializer(GetSecretValueRequestSchema);
    const max = de(wire(str(1, "openai"), uint(2, 2n ** 32n - 1n)));
    expect(max).not.toBeInstanceOf(RejectedRequest);
    // 1 written in ten bytes: legal protobuf, and no wider than 32 bits.
    const long = de(
      wire(str(1, "a"), [0x10, 0x81, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x00]),
    );
    expect((long as { version: number }).version).toBe(1);
  });
});

describe("uint64: above Number.MAX_SAFE_INTEGER", () => {
  test.each([
    ["WatchEnv since_revision", WatchEnvRequestSchema, 2, "since_revision"],
    ["AckEnv revision", AckEnvRequestSchema, 2, "revision"],
  ] as const)("%s: 2^64−1 and 2^53 refused, 2^53−1 passes", (_l, schema, field, name) => {
    const de = checkedDeserializer(schema);
    for (const n of [2n ** 64n - 1n, 2n ** 53n]) {
      const err = rejected(de(wire(str(1, "vm1"), uint(field, n))));
      expect(err.field).toBe(name);
      expect(err.message).toBe(`${name}: ${n} is out of range (at most 9007199254740991)`);
    }
    const ok = de(wire(str(1, "vm1"), uint(field, 2n ** 53n - 1n)));
    expect(ok).not.toBeInstanceOf(RejectedRequest);
  });

  test("the typed encoder's output decodes as itself", () => {
    const msg = create(WatchEnvRequestSchema, {
      vm: "vm1",
      sinceRevision: 42n,
      appliedDigest: "d",
    });
    const back = checkedDeserializer(WatchEnvRequestSchema)(
      Buffer.from(toBinary(WatchEnvRequestSchema, msg)),
    );
    expect(back).toEqual(msg);
  });
});

describe("lists and unknown fields stay aligned with protobuf-es", () => {
  test("a packed int32 list with a 33-bit value is refused; unknown fields are skipped", () => {
    const de = checkedDeserializer(SourceCodeInfo_LocationSchema);
    const packed = [...varint(1n), ...varint(2n ** 33n)];
    const err = rejected(de(wire([0x0a, packed.length, ...packed])));
    expect(err.field).toBe("path");
    const fine = [...varint(1n), ...varint(2n)];
    // Field 99 (unknown, a string) before the list.
    const ok = de(wire([0x9a, 0x06, 2, 0x61, 0x62], [0x0a, fine.length, ...fine]));
    expect((ok as { path: number[] }).path).toEqual([1, 2]);
  });
});

describe("undecodable bytes", () => {
  test.each([
    ["a length past the end", [0x0a, 0x05, 0x61]],
    ["wire type 7", [0x0f, 0x00]],
    [
      "a varint that never ends",
      [0x10, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
    ],
  ])("%s: 'request: could not be decoded as …'", (_l, raw) => {
    const err = rejected(checkedDeserializer(GetSecretValueRequestSchema)(Buffer.from(raw)));
    expect(err.code).toBe("invalid_argument");
    expect(err.message).toBe("request: could not be decoded as vmauth.v1.GetSecretValueRequest");
  });
});

describe("grpc-js 1.14, pinned: a deserialiser that throws", () => {
  test("answers INTERNAL 'Error deserializing request' and never reaches the handler", async () => {
    const method = SecretService.method.getSecretValue;
    const def = {
      ...methodDefinition(method),
      requestDeserialize: () => {
        throw new Error("bad bytes");
      },
    };
    let handled = 0;
    const served = await serveForTest(
      { getSecretValue: def },
      {
        getSecretValue: (_call: unknown, cb: (e: null, r: unknown) => void) => {
          handled++;
          cb(null, create(method.output));
        },
      },
      "SecretService",
    );
    try {
      const err = await new Promise<ServiceError | null>((resolve) =>
        served.client.makeUnaryRequest(
          def.path,
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from([0x0a, 0x01, 0x61]),
          new Metadata(),
          (e) => resolve(e),
        ),
      );
      expect(err?.code).toBe(status.INTERNAL);
      expect(err?.details).toBe("Error deserializing request");
      expect(handled).toBe(0);
    } finally {
      served.close();
    }
  });
});
