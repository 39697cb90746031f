/** Conversions from domain records to proto init shapes. */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { timestampDate, timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { SecretSchema, SecretVersionSchema } from "../../proto/gen/vmauth/v1/secrets_pb.js";
import { SecretKind } from "../../proto/gen/vmauth/v1/secrets_pb.js";
import { invalidArgument } from "../errors.js";
import type { SecretRecord, SecretVersionRecord } from "../store/types.js";

const KIND: Record<SecretRecord["kind"], SecretKind> = {
  static: SecretKind.STATIC,
  generated: SecretKind.GENERATED,
  oauth: SecretKind.OAUTH,
};

export function ts(iso: string | Date) {
  return timestampFromDate(typeof iso === "string" ? new Date(iso) : iso);
}

export function toSecret(r: SecretRecord): MessageInitShape<typeof SecretSchema> {
  return {
    name: r.name,
    env: r.env,
    scope: r.scope,
    kind: KIND[r.kind],
    provider: r.provider,
    description: r.description,
    labels: r.labels,
    currentVersion: r.currentVersion,
    versionCount: r.versions.length,
    createdAt: ts(r.createdAt),
    updatedAt: ts(r.updatedAt),
    modRevision: BigInt(r.modRevision),
    allowSensitiveEnv: r.allowSensitiveEnv === true,
    ...(r.valueExpiresAt ? { expiresAt: ts(r.valueExpiresAt) } : {}),
  };
}

/**
 * A request's Timestamp as a Date, or undefined when unset. protobuf-es turns any seconds and
 * nanos into a Date, so the Timestamp's own rules are checked here: nanos in [0, 1e9), and
 * seconds that make a real time (the use case checks the range it accepts).
 * @throws INVALID_ARGUMENT naming `field`
 */
export function dateFrom(field: string, t: Timestamp | undefined): Date | undefined {
  if (t === undefined) return undefined;
  if (t.nanos < 0 || t.nanos > 999_999_999) {
    throw invalidArgument(field, "nanos must be from 0 to 999999999");
  }
  return timestampDate(t);
}

export function toVersion(
  v: SecretVersionRecord,
  current: number,
): MessageInitShape<typeof SecretVersionSchema> {
  return {
    version: v.version,
    createdAt: ts(v.createdAt),
    createdBy: v.createdBy,
    current: v.version === current,
  };
}
