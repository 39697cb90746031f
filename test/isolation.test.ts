/**
 * Isolation, every RPC × every credential, generated from the service descriptors: an RPC
 * added to a service later is in the matrix without touching this file. Each cell calls a
 * real secretsd with a request of default fields (the `vm` field, where there is one, names
 * the VM under test) and checks the status class; for VM tokens it also checks that nothing
 * of the other VM (its name or its value) is in the answer. Users (issue #13) are cells too:
 * an operator, a viewer and a team member, each held to lists written here, apart from the
 * server's table (server/secrets/permissions.ts); a viewer's answers never hold a value, a
 * team member's never another team's VM.
 */
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { create, toBinary } from "@bufbuild/protobuf";
import type { Client } from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { methodPath } from "../proto/adapter.js";
import { Health, HealthCheckRequestSchema } from "../proto/gen/grpc/health/v1/health_pb.js";
import { AccessService, Role } from "../proto/gen/vmauth/v1/access_pb.js";
import { EnvService } from "../proto/gen/vmauth/v1/env_pb.js";
import { ManifestService } from "../proto/gen/vmauth/v1/manifest_pb.js";
import { OAuthService } from "../proto/gen/vmauth/v1/oauth_pb.js";
import { SecretService } from "../proto/gen/vmauth/v1/secrets_pb.js";
import { SystemService } from "../proto/gen/vmauth/v1/system_pb.js";
import type { AnyAnswer } from "./helpers/any-call.js";
import { anyClient, bearer, callAny } from "./helpers/any-call.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon } from "./helpers/daemon.js";
import { rawCall } from "./helpers/raw-h2.js";
import { secretValue } from "./helpers/values.js";

const SERVICES: DescService[] = [
  SecretService,
  EnvService,
  AccessService,
  SystemService,
  OAuthService,
  ManifestService,
];
/**
 * OAuth calls a VM token may make: they act only on credentials in the caller's own view
 * (test/oauth-broker.test.ts checks that a VM cannot reach another VM's credential or login).
 */
const VM_OAUTH = new Set<DescMethod>([
  OAuthService.method.startOAuthLogin,
  OAuthService.method.waitOAuthLogin,
  OAuthService.method.refreshOAuth,
]);
/** What only an admin may call (an operator gets PERMISSION_DENIED). */
const ADMIN_ONLY = new Set<DescMethod>([
  AccessService.method.createAdminToken,
  AccessService.method.listAdminTokens,
  AccessService.method.revokeAdminToken,
  AccessService.method.createUser,
  AccessService.method.listUsers,
  AccessService.method.deleteUser,
  AccessService.method.setUserRole,
  AccessService.method.issueUserToken,
  AccessService.method.createTeam,
  AccessService.method.listTeams,
  AccessService.method.deleteTeam,
  AccessService.method.setTeamMembers,
  SystemService.method.rotateMasterKey,
]);
/** What a viewer may call: metadata, never a value. */
const VIEWER = new Set<DescMethod>([
  SecretService.method.listSecrets,
  SecretService.method.listSecretVersions,
  SecretService.method.planRotation,
  AccessService.method.listVms,
  AccessService.method.listGroups,
  SystemService.method.getStatus,
  SystemService.method.listAuditEvents,
  OAuthService.method.listOAuth,
  ManifestService.method.planManifest,
  ManifestService.method.listManifests,
  ManifestService.method.getManifest,
  ManifestService.method.manifestStatus,
]);
/**
 * What a team member (an operator in a team) may call: its team's VMs, groups and secrets,
 * and the audit lines about them.
 */
const TEAM = new Set<DescMethod>([
  SecretService.method.createSecret,
  SecretService.method.updateSecret,
  SecretService.method.getSecretValue,
  SecretService.method.listSecrets,
  SecretService.method.deleteSecret,
  SecretService.method.rotateSecret,
  SecretService.method.listSecretVersions,
  SecretService.method.rollbackSecret,
  SystemService.method.listAuditEvents,
  AccessService.method.createVm,
  AccessService.method.listVms,
  AccessService.method.updateVm,
  AccessService.method.deleteVm,
  AccessService.method.issueVmToken,
  AccessService.method.revokeVmTokens,
  AccessService.method.listGroups,
  AccessService.method.deleteGroup,
]);
const OWN = "iso-own";
const OTHER = "iso-other";

type Expect = "unauthenticated" | "permission_denied" | "allowed";
type Cell =
  | "no token"
  | "garbage token"
  | "two authorization headers"
  | "revoked VM token"
  | "revoked admin token"
  | "VM token, own VM"
  | "VM token, other VM"
  | "admin token"
  | "operator token"
  | "viewer token"
  | "team member, own VM"
  | "team member, other VM"
  | "unix socket";
const CELLS: Cell[] = [
  "no token",
  "garbage token",
  "two authorization headers",
  "revoked VM token",
  "revoked admin token",
  "VM token, own VM",
  "VM token, other VM",
  "admin token",
  "operator token",
  "viewer token",
  "team member, own VM",
  "team member, other VM",
  "unix socket",
];

let d: TestDaemon;
let tcp: Client;
let unix: Client;
const tokens = {
  own: "",
  admin: "",
  revokedVm: "",
  revokedAdmin: "",
  operator: "",
  viewer: "",
  member: "",
};
let otherValue: string;
const values: string[] = [];

beforeAll(async () => {
  // Every refused cell comes from 127.0.0.1: the failed-auth throttle must not answer them.
  d = await startDaemon({ server: { authFailureLimit: 100_000 } });
  const c = d.client;
  await c.access.createGroup({ name: "iso-grp" });
  tokens.own = (await c.access.createVm({ name: OWN, groups: ["iso-grp"] })).token;
  await c.access.createVm({ name: OTHER });
  values.push(secretValue(), secretValue());
  await c.secrets.createSecret({ name: "iso-global", value: values[0] as string });
  await c.secrets.createSecret({ name: "iso-own", value: values[1] as string, scope: `vm:${OWN}` });
  otherValue = secretValue("sk-other");
  values.push(otherValue);
  await c.secrets.createSecret({ name: "iso-other", value: otherValue, scope: `vm:${OTHER}` });
  tokens.revokedVm = (await c.access.createVm({ name: "iso-revoked" })).token;
  await c.access.revokeVmTokens({ name: "iso-revoked" });
  tokens.admin = (await c.access.createAdminToken({ name: "iso-admin" })).token;
  tokens.revokedAdmin = (await c.access.createAdminToken({ name: "iso-gone" })).token;
  await c.access.revokeAdminToken({ name: "iso-gone" });
  await c.access.createTeam({ name: "iso-team", groups: ["iso-grp"] });
  const users = [
    ["operator", Role.OPERATOR, []],
    ["viewer", Role.VIEWER, []],
    ["member", Role.OPERATOR, ["iso-team"]],
  ] as const;
  for (const [who, role, teams] of users) {
    await c.access.createUser({ name: `iso-${who}`, role, teams: [...teams] });
    tokens[who] = (await c.access.issueUserToken({ name: `iso-${who}` })).token;
  }
  tcp = anyClient(d.tcp);
  unix = anyClient(`unix:${d.socket}`);
});

afterAll(async () => {
  tcp?.close();
  unix?.close();
  await d?.dispose();
});

const methods = SERVICES.flatMap((s) => s.methods);

describe.each(methods.map((m) => [`${m.parent.name}.${m.name}`, m] as const))(
  "%s",
  (_name, method) => {
    test.each(CELLS)("%s", async (cell) => {
      const answer = await call(cell, method);
      const want = expected(cell, method);
      const got =
        answer.code === status.UNAUTHENTICATED
          ? "unauthenticated"
          : answer.code === status.PERMISSION_DENIED
            ? "permission_denied"
            : "allowed";
      expect(got, `${cell}: ${status[answer.code]} ${answer.message}`).toBe(want);
      if (cell === "two authorization headers") {
        expect(answer.message).toBe("authorization: more than one header");
      }
      if (cell === "viewer token") {
        // A viewer never receives a value, whatever it calls.
        const seen = `${answer.message}\n${answer.response?.toString("latin1") ?? ""}`;
        for (const v of values) expect(seen).not.toContain(v);
      }
      if (cell.startsWith("team member")) {
        // Nothing outside the team: no value of the other VM, not even its name.
        const seen = `${answer.message}\n${answer.response?.toString("latin1") ?? ""}`;
        expect(seen).not.toContain(otherValue);
        if (got === "allowed") expect(seen).not.toContain(OTHER);
      }
      if (cell.startsWith("VM token")) {
        // Nothing of the other VM reaches a VM token: not its value, not even its name.
        const seen = `${answer.message}\n${answer.response?.toString("latin1") ?? ""}`;
        expect(seen).not.toContain(otherValue);
        if (got === "allowed") expect(seen).not.toContain(OTHER);
      }
    });
  },
);

describe("public services answer whatever token is sent", () => {
  const check = Health.method.check;
  const body = Buffer.from(toBinary(HealthCheckRequestSchema, create(HealthCheckRequestSchema)));
  test.each([
    ["no token", undefined],
    ["garbage token", "garbage"],
    ["revoked VM token", "revokedVm"],
  ] as const)("Health.Check, %s", async (_label, which) => {
    const token = which === undefined ? undefined : which === "garbage" ? "x" : tokens[which];
    const a = await callAny(tcp, check, body, bearer(token));
    expect(a.code, a.message).toBe(status.OK);
  });

  test("Health.Check, two authorization headers", async () => {
    const a = await rawCall({
      target: d.tcp,
      path: methodPath(check),
      headers: [
        ["authorization", "Bearer x"],
        ["authorization", "Bearer y"],
      ],
      body,
    });
    expect(a.code, a.message).toBe(status.OK);
  });
});

describe("revoking a token ends every stream it opened", () => {
  test.each(["vm", "admin"] as const)("a %s token's WatchEnv", async (kind) => {
    const vm = `rev-${kind}`;
    const vmToken = (await d.client.access.createVm({ name: vm })).token;
    const token =
      kind === "vm" ? vmToken : (await d.client.access.createAdminToken({ name: vm })).token;
    const stream = d.tcpClient(token).env.watchEnv({ vm })[Symbol.asyncIterator]();
    expect((await stream.next()).done).toBe(false);
    const t0 = Date.now();
    if (kind === "vm") await d.client.access.revokeVmTokens({ name: vm });
    else await d.client.access.revokeAdminToken({ name: vm });
    const end = await drain(stream, 2000);
    expect(end).toMatchObject({ code: "unauthenticated" });
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});

// --- internal ---

function expected(cell: Cell, method: DescMethod): Expect {
  switch (cell) {
    case "no token":
    case "garbage token":
    case "two authorization headers":
    case "revoked VM token":
    case "revoked admin token":
      return "unauthenticated";
    case "admin token":
    case "unix socket":
      return "allowed";
    case "operator token":
      return ADMIN_ONLY.has(method) ? "permission_denied" : "allowed";
    case "viewer token":
      return VIEWER.has(method) ? "allowed" : "permission_denied";
    case "team member, own VM":
    case "team member, other VM":
      // A request of default fields creates a secret at scope global: admin-only.
      if (method === SecretService.method.createSecret) return "permission_denied";
      return TEAM.has(method) ? "allowed" : "permission_denied";
    case "VM token, own VM":
      return method.parent.typeName === EnvService.typeName || VM_OAUTH.has(method)
        ? "allowed"
        : "permission_denied";
    case "VM token, other VM":
      if (VM_OAUTH.has(method)) return "allowed";
      if (method.parent.typeName !== EnvService.typeName) return "permission_denied";
      // A method without a `vm` field can only be about the caller's own VM.
      return vmField(method) ? "permission_denied" : "allowed";
  }
}

function vmField(method: DescMethod) {
  return method.input.fields.find((f) => f.name === "vm" && f.fieldKind === "scalar");
}

/** Default fields, except `vm`, which names the VM the cell is about. */
function request(method: DescMethod, vm: string): Buffer {
  const msg = create(method.input);
  const f = vmField(method);
  if (f) (msg as Record<string, unknown>)[f.localName] = vm;
  return Buffer.from(toBinary(method.input, msg));
}

async function call(cell: Cell, method: DescMethod): Promise<AnyAnswer> {
  const vm = cell === "VM token, other VM" || cell === "team member, other VM" ? OTHER : OWN;
  const req = request(method, vm);
  switch (cell) {
    case "no token":
      return callAny(tcp, method, req, bearer(undefined));
    case "garbage token":
      return callAny(tcp, method, req, bearer("garbage-not-a-token"));
    case "revoked VM token":
      return callAny(tcp, method, req, bearer(tokens.revokedVm));
    case "revoked admin token":
      return callAny(tcp, method, req, bearer(tokens.revokedAdmin));
    case "VM token, own VM":
    case "VM token, other VM":
      return callAny(tcp, method, req, bearer(tokens.own));
    case "admin token":
      return callAny(tcp, method, req, bearer(tokens.admin));
    case "operator token":
      return callAny(tcp, method, req, bearer(tokens.operator));
    case "viewer token":
      return callAny(tcp, method, req, bearer(tokens.viewer));
    case "team member, own VM":
    case "team member, other VM":
      return callAny(tcp, method, req, bearer(tokens.member));
    case "unix socket":
      return callAny(unix, method, req, bearer(undefined));
    case "two authorization headers": {
      // The admin token first: a server that took the first header would allow every call.
      const a = await rawCall({
        target: d.tcp,
        path: methodPath(method),
        headers: [
          ["authorization", `Bearer ${tokens.admin}`],
          ["authorization", `Bearer ${tokens.own}`],
        ],
        body: req,
        stopAfter: 1,
      });
      return { code: a.code, message: a.message, response: a.messages[0] };
    }
  }
}

/** Reads a stream to its end; resolves with the error it ended with (undefined if none). */
async function drain(it: AsyncIterator<unknown>, ms: number): Promise<unknown> {
  const deadline = Date.now() + ms;
  try {
    for (;;) {
      const left = deadline - Date.now();
      if (left <= 0) return new Error("stream still open");
      const next = await Promise.race([
        it.next(),
        new Promise<"timeout">((r) => setTimeout(() => r("timeout"), left)),
      ]);
      if (next === "timeout") return new Error("stream still open");
      if (next.done) return undefined;
    }
  } catch (err) {
    return err;
  }
}
