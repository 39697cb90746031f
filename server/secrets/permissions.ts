/**
 * What each role may call (issue #13), in one table keyed by fully-qualified method, so the
 * transport checks every call in one place and test/users.test.ts can hold the table to the
 * service descriptors: an RPC added without a row fails that test (and, until it has one, is
 * refused to every user: a missing row never means "allowed").
 *
 * `team` says how a team member (a user in teams, not an admin) is limited:
 * - "filtered": the call sees only the team's groups, the VMs in them and the secrets scoped
 *   to those (access.ts; transport/handlers/team-scope.ts for secrets and the audit log);
 *   anything else is NOT_FOUND, as if it did not exist, and listings leave it out;
 * - "refused": team scoping applies but the use case does not scope yet: a team member
 *   gets PERMISSION_DENIED (fail closed) rather than see what is not the team's;
 * - "none": not about a team's things (admin-only calls).
 */

import type { StoreView } from "../store/store.js";
import type { RoleRecord } from "../store/types.js";
import type { Caller } from "./caller.js";

export interface Permission {
  /** The least role that may call the method. */
  readonly role: RoleRecord;
  readonly team: "filtered" | "refused" | "none";
}

const RANK: Record<RoleRecord, number> = { viewer: 1, operator: 2, admin: 3 };
export const ROLES: readonly RoleRecord[] = ["admin", "operator", "viewer"];

const admin: Permission = { role: "admin", team: "none" };
const op = (team: Permission["team"] = "refused"): Permission => ({ role: "operator", team });
const view = (team: Permission["team"] = "refused"): Permission => ({ role: "viewer", team });

/** Fully-qualified method ("vmauth.v1.Service/Method") → who may call it. */
export const PERMISSIONS: Readonly<Record<string, Permission>> = {
  "vmauth.v1.SecretService/CreateSecret": op("filtered"),
  "vmauth.v1.SecretService/UpdateSecret": op("filtered"),
  "vmauth.v1.SecretService/GetSecretValue": op("filtered"),
  "vmauth.v1.SecretService/ListSecrets": view("filtered"),
  "vmauth.v1.SecretService/DeleteSecret": op("filtered"),
  "vmauth.v1.SecretService/RotateSecret": op("filtered"),
  "vmauth.v1.SecretService/ListSecretVersions": view("filtered"),
  "vmauth.v1.SecretService/RollbackSecret": op("filtered"),
  "vmauth.v1.SecretService/PlanRotation": view(),
  // Who read a secret and where it went: an operator's, not yet team-scoped.
  "vmauth.v1.SecretService/GetSecretUsage": op(),
  "vmauth.v1.SecretService/ImportSecrets": op(),
  // A view is values: never a viewer's.
  "vmauth.v1.EnvService/GetEnv": op(),
  "vmauth.v1.EnvService/WatchEnv": op(),
  "vmauth.v1.EnvService/AckEnv": op(),
  "vmauth.v1.AccessService/CreateVm": op("filtered"),
  "vmauth.v1.AccessService/ListVms": view("filtered"),
  "vmauth.v1.AccessService/UpdateVm": op("filtered"),
  "vmauth.v1.AccessService/DeleteVm": op("filtered"),
  "vmauth.v1.AccessService/IssueVmToken": op("filtered"),
  "vmauth.v1.AccessService/RevokeVmTokens": op("filtered"),
  // A new group is in no team: a team member cannot make one.
  "vmauth.v1.AccessService/CreateGroup": op("refused"),
  "vmauth.v1.AccessService/ListGroups": view("filtered"),
  "vmauth.v1.AccessService/DeleteGroup": op("filtered"),
  "vmauth.v1.AccessService/CreateAdminToken": admin,
  "vmauth.v1.AccessService/ListAdminTokens": admin,
  "vmauth.v1.AccessService/RevokeAdminToken": admin,
  "vmauth.v1.AccessService/CreateUser": admin,
  "vmauth.v1.AccessService/ListUsers": admin,
  "vmauth.v1.AccessService/DeleteUser": admin,
  "vmauth.v1.AccessService/SetUserRole": admin,
  "vmauth.v1.AccessService/IssueUserToken": admin,
  "vmauth.v1.AccessService/CreateTeam": admin,
  "vmauth.v1.AccessService/ListTeams": admin,
  "vmauth.v1.AccessService/DeleteTeam": admin,
  "vmauth.v1.AccessService/SetTeamMembers": admin,
  "vmauth.v1.SystemService/GetStatus": view(),
  "vmauth.v1.SystemService/RotateMasterKey": admin,
  "vmauth.v1.SystemService/ListAuditEvents": view("filtered"),
  "vmauth.v1.OAuthService/AddOAuth": op(),
  "vmauth.v1.OAuthService/ListOAuth": view(),
  "vmauth.v1.OAuthService/StartOAuthLogin": op(),
  "vmauth.v1.OAuthService/WaitOAuthLogin": op(),
  "vmauth.v1.OAuthService/CancelOAuthLogin": op(),
  "vmauth.v1.OAuthService/RefreshOAuth": op(),
  "vmauth.v1.OAuthService/LogoutOAuth": op(),
  "vmauth.v1.ManifestService/PlanManifest": view(),
  "vmauth.v1.ManifestService/ApplyManifest": op(),
  "vmauth.v1.ManifestService/ListManifests": view(),
  "vmauth.v1.ManifestService/GetManifest": view(),
  "vmauth.v1.ManifestService/RemoveManifest": op(),
  "vmauth.v1.ManifestService/ManifestStatus": view(),
  "vmauth.v1.ManifestService/ProvideManifestValue": op(),
};

/**
 * Why a user may not call `method` (one line naming the method and the role), or undefined
 * when it may. Callers other than users are the transport's business, not this table's.
 */
export function refusalFor(caller: Caller, method: string, short: string): string | undefined {
  if (caller.kind !== "admin") return undefined;
  const p = PERMISSIONS[method];
  if (!p) return `${short}: no role may call it (no permission entry)`;
  if (RANK[caller.role] < RANK[p.role]) {
    return `${short}: role ${caller.role} may not call it (needs ${p.role})`;
  }
  if (p.team === "refused" && teamLimited(caller)) {
    return `${short}: not available to a team member (role ${caller.role}, teams ${caller.teams.join(", ")})`;
  }
  return undefined;
}

/** Whether the caller is limited to its teams' groups: a user in teams who is not an admin. */
export function teamLimited(caller: Caller): boolean {
  return caller.kind === "admin" && caller.role !== "admin" && caller.teams.length > 0;
}

/**
 * The groups a team-limited caller may see and act on (those bound to one of its teams);
 * undefined for a caller who is not limited.
 */
export function teamGroups(caller: Caller, data: StoreView): ReadonlySet<string> | undefined {
  if (!teamLimited(caller) || caller.kind !== "admin") return undefined;
  const mine = new Set(caller.teams);
  const out = new Set<string>();
  for (const g of Object.values(data.groups)) {
    if (g.teams?.some((t) => mine.has(t))) out.add(g.name);
  }
  return out;
}

/** Whether a VM is in one of `groups` (undefined: no limit). */
export function vmInGroups(
  vm: { groups: readonly string[] },
  groups: ReadonlySet<string> | undefined,
) {
  return groups === undefined || vm.groups.some((g) => groups.has(g));
}
