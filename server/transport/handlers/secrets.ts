import type {
  ImportItem,
  SecretService,
  UpdateSecretRequest,
} from "../../../proto/gen/vmauth/v1/secrets_pb.js";
import {
  ImportAction,
  ImportOutcome,
  SecretHolding,
} from "../../../proto/gen/vmauth/v1/secrets_pb.js";
import { invalidArgument } from "../../errors.js";
import type { ImportItemInput } from "../../secrets/import.js";
import type { RotationPlanner } from "../../secrets/rotation-plan.js";
import type { SecretUseCases } from "../../secrets/secrets.js";
import type { UsageReporter } from "../../secrets/usage.js";
import type { ServiceImpl } from "../adapter.js";
import { dateFrom, toSecret, toVersion, ts } from "../convert.js";

export function secretHandlers(
  secrets: SecretUseCases,
  planner: RotationPlanner,
  usage: UsageReporter,
): ServiceImpl<typeof SecretService> {
  return {
    async createSecret(req, ctx) {
      const { record, revision } = await secrets.create(ctx, {
        name: req.name,
        value: req.value,
        env: req.env,
        scope: req.scope,
        provider: req.provider,
        description: req.description,
        labels: req.labels,
        allowSensitiveEnv: req.allowSensitiveEnv,
        expiresAt: dateFrom("expires_at", req.expiresAt),
      });
      return { secret: toSecret(record), revision: BigInt(revision) };
    },
    async updateSecret(req, ctx) {
      const { record, revision } = await secrets.update(ctx, {
        name: req.name,
        env: req.env,
        scope: req.scope,
        description: req.description,
        labels: req.setLabels ? req.labels : undefined,
        allowSensitiveEnv: req.allowSensitiveEnv,
        expiresAt: expiryUpdate(req),
      });
      return { secret: toSecret(record), revision: BigInt(revision) };
    },
    async getSecretValue(req, ctx) {
      const r = await secrets.getValue(ctx, req.name, req.version, req.includeHostOnly);
      return {
        secret: toSecret(r.record),
        version: r.version,
        value: r.value,
        refreshToken: r.host?.refreshToken ?? "",
        clientSecret: r.host?.clientSecret ?? "",
      };
    },
    async listSecrets(req) {
      const r = secrets.list(req.scope);
      return { secrets: r.secrets.map(toSecret), revision: BigInt(r.revision) };
    },
    async deleteSecret(req, ctx) {
      const r = await secrets.remove(ctx, req.name);
      return { revision: BigInt(r.revision) };
    },
    async rotateSecret(req, ctx) {
      const expiresAt = dateFrom("expires_at", req.expiresAt);
      const r = await secrets.rotate(ctx, req.name, req.value, expiresAt);
      return { secret: toSecret(r.record), revision: BigInt(r.revision) };
    },
    async listSecretVersions(req) {
      const r = secrets.versions(req.name);
      return { versions: r.versions.map((v) => toVersion(v, r.record.currentVersion)) };
    },
    async rollbackSecret(req, ctx) {
      const r = await secrets.rollback(ctx, req.name, req.version);
      return { secret: toSecret(r.record), revision: BigInt(r.revision) };
    },
    async planRotation(req) {
      const r = planner.plan(req.name);
      return { vms: r.targets, revision: BigInt(r.revision) };
    },
    async getSecretUsage(req) {
      const r = await usage.usage(req.name, req.windowSeconds);
      return {
        vms: r.vms.map((v) => ({
          vm: v.vm,
          env: v.env,
          holding: HOLDING[v.holding],
          version: v.version,
          lastReceived: v.lastReceived ? ts(v.lastReceived) : undefined,
          ackedRevision: BigInt(v.ackedRevision),
          connected: v.connected,
          deliveries: v.deliveries,
          reads: v.reads,
        })),
        hostReaders: r.hostReaders,
        windowSeconds: r.windowSeconds,
        truncated: r.truncated,
        revision: BigInt(r.revision),
      };
    },
    async importSecrets(req, ctx) {
      const r = await secrets.import(ctx, req.items.map(importItem));
      return {
        results: r.results.map((x) => ({
          name: x.name,
          outcome: OUTCOME[x.outcome],
          secret: toSecret(x.record),
          movedFromScope: x.movedFrom,
        })),
        revision: BigInt(r.revision),
      };
    },
  };
}

// --- internal ---

/** UpdateSecret's expiry: a new one, null to remove it, or undefined to keep it. */
function expiryUpdate(req: UpdateSecretRequest): Date | null | undefined {
  if (req.clearExpiresAt && req.expiresAt) {
    throw invalidArgument("clear_expires_at", "give expires_at or clear_expires_at, not both");
  }
  return req.clearExpiresAt ? null : dateFrom("expires_at", req.expiresAt);
}

const OUTCOME = {
  created: ImportOutcome.CREATED,
  rotated: ImportOutcome.ROTATED,
  unchanged: ImportOutcome.UNCHANGED,
} as const;

/** An ImportSecrets item as the use case takes it (an unknown action is refused there). */
function importItem(it: ImportItem): ImportItemInput {
  const action =
    it.action === ImportAction.CREATE
      ? "create"
      : it.action === ImportAction.ROTATE
        ? "rotate"
        : "unspecified";
  return {
    name: it.name,
    action,
    value: it.value,
    env: it.env,
    scope: it.scope,
    allowSensitiveEnv: it.allowSensitiveEnv,
    moveToScope: it.moveToScope,
  };
}

const HOLDING = {
  current: SecretHolding.CURRENT,
  behind: SecretHolding.BEHIND,
  unknown: SecretHolding.UNSPECIFIED,
} as const;
