/** Conversions from domain records to proto init shapes. */
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import type { SecretSchema, SecretVersionSchema } from "../../proto/gen/vmauth/v1/secrets_pb.js";
import { SecretKind } from "../../proto/gen/vmauth/v1/secrets_pb.js";
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
  };
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
