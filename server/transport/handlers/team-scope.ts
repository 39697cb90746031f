/**
 * Team scoping (issue #13) for the secret and audit calls, as a layer over their handlers:
 * a team member (a user in teams, not an admin; permissions.ts) reaches only secrets scoped
 * to its teams' groups (`group:G`) and to VMs in them (`vm:V`). Listings are filtered; a
 * secret outside the team is NOT_FOUND, worded as for one that does not exist, so a member
 * cannot learn what the team does not hold; creating or moving a secret to a scope outside
 * the team is NOT_FOUND for another group or VM and PERMISSION_DENIED for `global`/`host`
 * (admin-only). Callers who are not team-limited pass straight through.
 */

import { Encoded } from "../../../proto/adapter.js";
import type { SecretService } from "../../../proto/gen/vmauth/v1/secrets_pb.js";
import type { SystemService } from "../../../proto/gen/vmauth/v1/system_pb.js";
import { notFound, permissionDenied } from "../../errors.js";
import type { AccessUseCases } from "../../secrets/access.js";
import type { Caller } from "../../secrets/caller.js";
import type { ServiceImpl } from "../adapter.js";

type Scope = NonNullable<ReturnType<AccessUseCases["teamScope"]>>;

export function teamScopedSecrets(
  impl: ServiceImpl<typeof SecretService>,
  access: AccessUseCases,
): ServiceImpl<typeof SecretService> {
  /** The caller's team scope, after checking that secret `name` is in it. */
  const guard = (caller: Caller, name: string): Scope | undefined => {
    const t = access.teamScope(caller);
    if (t && !t.secretVisible(name)) throw notFound("secret", name, "name");
    return t;
  };
  return {
    ...impl,
    async createSecret(req, ctx) {
      const t = access.teamScope(ctx.caller);
      if (t) checkScope(t, req.scope || "global");
      return impl.createSecret(req, ctx);
    },
    async updateSecret(req, ctx) {
      const t = guard(ctx.caller, req.name);
      if (t && req.scope !== undefined) checkScope(t, req.scope);
      return impl.updateSecret(req, ctx);
    },
    async getSecretValue(req, ctx) {
      guard(ctx.caller, req.name);
      return impl.getSecretValue(req, ctx);
    },
    async deleteSecret(req, ctx) {
      guard(ctx.caller, req.name);
      return impl.deleteSecret(req, ctx);
    },
    async rotateSecret(req, ctx) {
      guard(ctx.caller, req.name);
      return impl.rotateSecret(req, ctx);
    },
    async listSecretVersions(req, ctx) {
      guard(ctx.caller, req.name);
      return impl.listSecretVersions(req, ctx);
    },
    async rollbackSecret(req, ctx) {
      guard(ctx.caller, req.name);
      return impl.rollbackSecret(req, ctx);
    },
    async listSecrets(req, ctx) {
      const t = access.teamScope(ctx.caller);
      const res = await impl.listSecrets(req, ctx);
      if (!t || res instanceof Encoded) return res;
      const secrets = (res.secrets ?? []).filter((s) => t.allowsScope(s.scope ?? ""));
      return { secrets, ...(res.revision === undefined ? {} : { revision: res.revision }) };
    },
  };
}

/**
 * ListAuditEvents for a team member: only events about the team's secrets or VMs (an event
 * about neither, such as a group or user change, is not the team's). `limit` counts before
 * the filter, so a member may get fewer events than asked for.
 */
export function teamScopedSystem(
  impl: ServiceImpl<typeof SystemService>,
  access: AccessUseCases,
): ServiceImpl<typeof SystemService> {
  return {
    ...impl,
    async listAuditEvents(req, ctx) {
      const t = access.teamScope(ctx.caller);
      const res = await impl.listAuditEvents(req, ctx);
      if (!t || res instanceof Encoded) return res;
      const events = (res.events ?? []).filter((e) =>
        e.secret ? t.secretVisible(e.secret) : e.vm ? t.allowsVm(e.vm) : false,
      );
      return { events };
    },
  };
}

// --- internal ---

function checkScope(t: Scope, scope: string) {
  if (t.allowsScope(scope)) return;
  if (scope === "global" || scope === "host") {
    throw permissionDenied(
      `scope: ${scope} is admin-only; a team member may use group:G or vm:V of its teams`,
      "scope",
    );
  }
  const i = scope.indexOf(":");
  throw notFound(i > 0 ? scope.slice(0, i) : "scope", i > 0 ? scope.slice(i + 1) : scope, "scope");
}
