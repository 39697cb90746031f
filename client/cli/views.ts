/**
 * The JSON shapes of `--json`: stable camelCase field names, numbers for uint64 fields,
 * ISO 8601 strings (or null) for times. Built field by field from the wire messages, so a
 * proto change never silently changes what scripts read.
 */
import type { AdminToken, Group, Vm } from "../../proto/gen/vmauth/v1/access_pb.js";
import type {
  EntryStatus,
  ManifestInfo,
  PlannedEntry,
  VmEnvPlan,
} from "../../proto/gen/vmauth/v1/manifest_pb.js";
import { EntryAction, EntryState } from "../../proto/gen/vmauth/v1/manifest_pb.js";
import type { OAuthCredential } from "../../proto/gen/vmauth/v1/oauth_pb.js";
import { OauthState } from "../../proto/gen/vmauth/v1/oauth_pb.js";
import type { Secret, SecretVersion } from "../../proto/gen/vmauth/v1/secrets_pb.js";
import { SecretKind } from "../../proto/gen/vmauth/v1/secrets_pb.js";
import type { AuditEvent, GetStatusResponse } from "../../proto/gen/vmauth/v1/system_pb.js";
import { iso } from "./output.js";

const KINDS: Record<SecretKind, string> = {
  [SecretKind.UNSPECIFIED]: "unspecified",
  [SecretKind.STATIC]: "static",
  [SecretKind.GENERATED]: "generated",
  [SecretKind.OAUTH]: "oauth",
};

/** A secret's metadata; never a value. */
export function secretJson(s: Secret | undefined) {
  if (!s) return null;
  return {
    name: s.name,
    env: s.env,
    scope: s.scope,
    kind: KINDS[s.kind] ?? "unspecified",
    provider: s.provider,
    description: s.description,
    labels: { ...s.labels },
    currentVersion: s.currentVersion,
    versionCount: s.versionCount,
    createdAt: iso(s.createdAt),
    updatedAt: iso(s.updatedAt),
    modRevision: Number(s.modRevision),
    allowSensitiveEnv: s.allowSensitiveEnv,
    expiresAt: iso(s.expiresAt),
  };
}

const OAUTH_STATES: Record<OauthState, string> = {
  [OauthState.UNSPECIFIED]: "unspecified",
  [OauthState.OK]: "ok",
  [OauthState.NEEDS_LOGIN]: "needs_login",
  [OauthState.ERROR]: "error",
};

/** An oauth credential's state in words, for tables and messages. */
export function oauthStateText(state: OauthState): string {
  return (OAUTH_STATES[state] ?? "unspecified").replace("_", " ");
}

/** An oauth credential's configuration and state (the wire message holds no token). */
export function oauthJson(c: OAuthCredential | undefined) {
  if (!c) return null;
  const e = c.endpoints;
  return {
    name: c.name,
    preset: c.preset,
    issuer: c.issuer,
    tenant: c.tenant,
    clientId: c.clientId,
    scopes: [...c.scopes],
    env: c.env,
    expiresEnv: c.expiresEnv,
    scope: c.scope,
    state: OAUTH_STATES[c.state] ?? "unspecified",
    version: c.version,
    expiresAt: iso(c.expiresAt),
    lastRefreshAt: iso(c.lastRefreshAt),
    nextRefreshAt: iso(c.nextRefreshAt),
    lastError: c.lastError,
    lastErrorAt: iso(c.lastErrorAt),
    hasRefreshToken: c.hasRefreshToken,
    confidential: c.confidential,
    revocationSupported: c.revocationSupported,
    deviceLoginSupported: c.deviceLoginSupported,
    codeLoginSupported: c.codeLoginSupported,
    endpoints: {
      token: e?.token ?? "",
      authorization: e?.authorization ?? "",
      deviceAuthorization: e?.deviceAuthorization ?? "",
      revocation: e?.revocation ?? "",
    },
    modRevision: Number(c.modRevision),
  };
}

/** One version of a secret; never its value. */
export function versionJson(v: SecretVersion) {
  return {
    version: v.version,
    current: v.current,
    createdAt: iso(v.createdAt),
    createdBy: v.createdBy,
  };
}

/** A VM and its shim's delivery state; never a token. */
export function vmJson(v: Vm | undefined) {
  if (!v) return null;
  return {
    name: v.name,
    groups: [...v.groups],
    createdAt: iso(v.createdAt),
    tokenCount: v.tokenCount,
    connected: v.connected,
    appliedRevision: Number(v.appliedRevision),
    viewRevision: Number(v.viewRevision),
    behind: v.behind,
    lastSeen: iso(v.lastSeen),
    clientVersion: v.clientVersion,
    lastRestartedUnits: [...v.lastRestartedUnits],
    lastError: v.lastError,
    diverged: v.diverged,
    damagedSecrets: [...v.damagedSecrets],
    missingRequired: [...v.missingRequired],
  };
}

/** A group, its VMs and how many secrets are scoped to it. */
export function groupJson(g: Group | undefined) {
  if (!g) return null;
  return {
    name: g.name,
    vms: [...g.vms],
    secretCount: g.secretCount,
    createdAt: iso(g.createdAt),
  };
}

/** An admin token's description; never the token. */
export function adminTokenJson(t: AdminToken | undefined) {
  if (!t) return null;
  return { name: t.name, id: t.id, createdAt: iso(t.createdAt) };
}

/** One audit event (which never holds a value or token). */
export function auditJson(e: AuditEvent) {
  return {
    time: iso(e.time),
    requestId: e.requestId,
    actor: e.actor,
    action: e.action,
    secret: e.secret,
    vm: e.vm,
    result: e.result,
    version: e.version,
    revision: Number(e.revision),
  };
}

/** `status --json`: the daemon's state plus where the CLI reached it. */
export function statusJson(s: GetStatusResponse, target: string) {
  return {
    reachable: true,
    target,
    version: s.version,
    startedAt: iso(s.startedAt),
    uptimeSeconds: Number(s.uptimeSeconds),
    revision: Number(s.revision),
    secretCount: s.secretCount,
    vmCount: s.vmCount,
    connectedVmCount: s.connectedVmCount,
    groupCount: s.groupCount,
    dataDir: s.dataDir,
    masterKeyId: s.masterKeyId,
    caller: s.caller,
    damagedSecrets: [...s.damagedSecrets],
    storeWarnings: [...s.storeWarnings],
    oauthAttention: [...s.oauthAttention],
    expiringSecrets: [...s.expiringSecrets],
  };
}

const ENTRY_ACTIONS: Record<EntryAction, string> = {
  [EntryAction.UNSPECIFIED]: "unspecified",
  [EntryAction.KEEP]: "keep",
  [EntryAction.GENERATE]: "generate",
  [EntryAction.REGENERATE]: "regenerate",
  [EntryAction.FETCH]: "fetch",
  [EntryAction.PROVIDE]: "provide",
};

const ENTRY_STATES: Record<EntryState, string> = {
  [EntryState.UNSPECIFIED]: "unspecified",
  [EntryState.CONFIGURED]: "configured",
  [EntryState.MISSING]: "missing",
  [EntryState.MALFORMED]: "malformed",
};

/** A manifest entry's action in words (keep, generate, regenerate, fetch, provide). */
export function entryActionText(a: EntryAction): string {
  return ENTRY_ACTIONS[a] ?? "unspecified";
}

/** A manifest entry's state in words (configured, missing, malformed). */
export function entryStateText(s: EntryState): string {
  return ENTRY_STATES[s] ?? "unspecified";
}

/** A manifest as recorded (its entries are in `manifest show`). */
export function manifestInfoJson(m: ManifestInfo | undefined) {
  if (!m) return null;
  return {
    name: m.name,
    description: m.description,
    bind: m.bind,
    entryCount: m.entryCount,
    createdAt: iso(m.createdAt),
    updatedAt: iso(m.updatedAt),
    modRevision: Number(m.modRevision),
  };
}

/** One manifest entry for one target, as planned or applied; never a value. */
export function plannedEntryJson(e: PlannedEntry) {
  return {
    id: e.id,
    class: e.class,
    env: e.env,
    secret: e.secret,
    scope: e.scope,
    action: entryActionText(e.action),
    state: entryStateText(e.state),
    required: e.required,
    description: e.description,
    label: e.label,
    format: e.format,
    error: e.error,
  };
}

/** The env one VM would see (names only) and the required entry ids it would still miss. */
export function vmEnvPlanJson(v: VmEnvPlan) {
  return { vm: v.vm, env: [...v.env], missing: [...v.missing] };
}

/** One manifest entry's state for one VM (vm "" for a host-only entry); never a value. */
export function entryStatusJson(e: EntryStatus) {
  return {
    manifest: e.manifest,
    vm: e.vm,
    id: e.id,
    class: e.class,
    env: e.env,
    state: entryStateText(e.state),
    source: e.source,
    required: e.required,
    secret: e.secret,
    error: e.error,
  };
}
