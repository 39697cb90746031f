/**
 * Users, roles and teams (issue #13) over real gRPC: the permission table matches the
 * service descriptors, each role gets what the table says (a viewer never a value), an
 * admin token from before users keeps working as role admin, the audit log names the user,
 * and a team member sees and acts on only its team's groups and VMs.
 */
import type { DescService } from "@bufbuild/protobuf";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { VmAuthClient } from "../client/index.js";
import { AccessService, Role } from "../proto/gen/vmauth/v1/access_pb.js";
import { EnvService } from "../proto/gen/vmauth/v1/env_pb.js";
import { ManifestService } from "../proto/gen/vmauth/v1/manifest_pb.js";
import { OAuthService } from "../proto/gen/vmauth/v1/oauth_pb.js";
import { SecretService } from "../proto/gen/vmauth/v1/secrets_pb.js";
import { SystemService } from "../proto/gen/vmauth/v1/system_pb.js";
import { PERMISSIONS } from "../server/secrets/permissions.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon } from "./helpers/daemon.js";
import { secretValue } from "./helpers/values.js";
import { openWatch } from "./helpers/watch.js";

const SERVICES: DescService[] = [
  SecretService,
  EnvService,
  AccessService,
  SystemService,
  OAuthService,
  ManifestService,
];

let d: TestDaemon;
const as: Record<string, VmAuthClient> = {};
let value: string;

beforeAll(async () => {
  d = await startDaemon();
  const c = d.client;
  value = secretValue("sk-users");
  await c.secrets.createSecret({ name: "u-global", value });
  for (const g of ["red", "blue"]) {
    await c.access.createGroup({ name: g });
    await c.access.createVm({ name: `${g}-vm`, groups: [g] });
  }
  await c.access.createTeam({ name: "red-team", groups: ["red"] });
  await c.access.createTeam({ name: "blue-team", groups: ["blue"] });
  const users = [
    ["op", Role.OPERATOR, []],
    ["viewer", Role.VIEWER, []],
    ["red-op", Role.OPERATOR, ["red-team"]],
    ["red-viewer", Role.VIEWER, ["red-team"]],
    ["blue-op", Role.OPERATOR, ["blue-team"]],
  ] as const;
  for (const [name, role, teams] of users) {
    await c.access.createUser({ name, role, teams: [...teams] });
    as[name] = d.tcpClient((await c.access.issueUserToken({ name })).token);
  }
  as.legacy = d.tcpClient((await c.access.createAdminToken({ name: "legacy" })).token);
});

afterAll(async () => {
  await d?.dispose();
});

describe("the permission table", () => {
  test("has exactly one entry per RPC of the API", () => {
    const rpcs = SERVICES.flatMap((s) => s.methods.map((m) => `${s.typeName}/${m.name}`)).sort();
    expect(Object.keys(PERMISSIONS).sort()).toEqual(rpcs);
  });
});

describe("roles", () => {
  test("an admin token from before users is a user of role admin and keeps every call", async () => {
    const users = (await d.client.access.listUsers({})).users;
    expect(users.find((u) => u.name === "legacy")).toMatchObject({
      role: Role.ADMIN,
      hasToken: true,
    });
    const legacy = as.legacy as VmAuthClient;
    expect((await legacy.secrets.getSecretValue({ name: "u-global" })).value).toBe(value);
    await legacy.access.createUser({ name: "by-legacy", role: Role.VIEWER });
  });

  test("a viewer lists metadata but never receives a value", async () => {
    const v = as.viewer as VmAuthClient;
    expect((await v.secrets.listSecrets({})).secrets.map((s) => s.name)).toContain("u-global");
    expect((await v.access.listVms({})).vms.map((x) => x.name)).toEqual(["blue-vm", "red-vm"]);
    await v.system.getStatus({});
    await expect(v.secrets.getSecretValue({ name: "u-global" })).rejects.toMatchObject({
      code: "permission_denied",
      message: "GetSecretValue: role viewer may not call it (needs operator)",
    });
    await expect(v.env.getEnv({ vm: "red-vm" })).rejects.toMatchObject({
      code: "permission_denied",
      message: expect.stringContaining("role viewer"),
    });
    await expect(
      v.secrets.createSecret({ name: "by-viewer", value: secretValue() }),
    ).rejects.toMatchObject({ code: "permission_denied" });
    // A refused call changes nothing.
    const names = (await d.client.secrets.listSecrets({})).secrets.map((s) => s.name);
    expect(names).not.toContain("by-viewer");
  });

  test("an operator manages secrets, VMs and groups but not users, tokens or the master key", async () => {
    const o = as.op as VmAuthClient;
    await o.secrets.createSecret({ name: "by-op", value: secretValue() });
    await o.secrets.rotateSecret({ name: "by-op", value: secretValue() });
    await o.access.createGroup({ name: "op-grp" });
    await o.access.createVm({ name: "op-vm", groups: ["op-grp"] });
    await o.access.deleteVm({ name: "op-vm" });
    await o.secrets.deleteSecret({ name: "by-op" });
    for (const call of [
      () => o.access.createUser({ name: "by-op", role: Role.ADMIN }),
      () => o.access.issueUserToken({ name: "op" }),
      () => o.access.setUserRole({ name: "op", role: Role.ADMIN }),
      () => o.access.createAdminToken({ name: "by-op" }),
      () => o.access.listUsers({}),
      () => o.system.rotateMasterKey({}),
    ]) {
      await expect(call()).rejects.toMatchObject({
        code: "permission_denied",
        message: expect.stringMatching(/: role operator may not call it \(needs admin\)$/),
      });
    }
    expect((await d.client.access.listUsers({})).users.find((u) => u.name === "op")?.role).toBe(
      Role.OPERATOR,
    );
  });

  test("a role change applies to the user's next call", async () => {
    await d.client.access.createUser({ name: "promoted", role: Role.VIEWER });
    const p = d.tcpClient((await d.client.access.issueUserToken({ name: "promoted" })).token);
    await expect(p.secrets.getSecretValue({ name: "u-global" })).rejects.toMatchObject({
      code: "permission_denied",
    });
    await d.client.access.setUserRole({ name: "promoted", role: Role.OPERATOR });
    expect((await p.secrets.getSecretValue({ name: "u-global" })).value).toBe(value);
    await d.client.access.deleteUser({ name: "promoted" });
    await expect(p.secrets.listSecrets({})).rejects.toMatchObject({ code: "unauthenticated" });
  });

  test("a role or team change ends the streams the user has open; it reconnects as what it now is", async () => {
    await d.client.access.createUser({ name: "demoted", role: Role.OPERATOR });
    const p = d.tcpClient((await d.client.access.issueUserToken({ name: "demoted" })).token);
    const w = openWatch(p, { vm: "red-vm" });
    await w.until(() => w.snapshots().length > 0);
    await d.client.access.setUserRole({ name: "demoted", role: Role.VIEWER });
    // The stream that carries values must not outlive the role that allowed it.
    expect(await w.done).toMatchObject({
      code: "unauthenticated",
      message: expect.stringContaining("role or teams changed"),
    });
    const again = openWatch(p, { vm: "red-vm" });
    expect(await again.done).toMatchObject({ code: "permission_denied" });
    await d.client.access.deleteUser({ name: "demoted" });
  });

  test("a new token replaces the old one; a user without a token cannot call", async () => {
    await d.client.access.createUser({ name: "rotated", role: Role.VIEWER });
    const first = (await d.client.access.issueUserToken({ name: "rotated" })).token;
    const second = (await d.client.access.issueUserToken({ name: "rotated" })).token;
    await expect(d.tcpClient(first).secrets.listSecrets({})).rejects.toMatchObject({
      code: "unauthenticated",
    });
    await d.tcpClient(second).secrets.listSecrets({});
  });

  test("token revoke ends a user's token but keeps the user; an old admin token goes", async () => {
    await d.client.access.createUser({ name: "revoked-user", role: Role.OPERATOR });
    const token = (await d.client.access.issueUserToken({ name: "revoked-user" })).token;
    await d.client.access.revokeAdminToken({ name: "revoked-user" });
    await expect(d.tcpClient(token).secrets.listSecrets({})).rejects.toMatchObject({
      code: "unauthenticated",
    });
    expect(
      (await d.client.access.listUsers({})).users.find((u) => u.name === "revoked-user"),
    ).toMatchObject({ role: Role.OPERATOR, hasToken: false, tokenId: "" });
    expect(
      (await d.client.access.listAdminTokens({})).adminTokens.map((t) => t.name),
    ).not.toContain("revoked-user");
    await expect(d.client.access.revokeAdminToken({ name: "revoked-user" })).rejects.toMatchObject({
      code: "not_found",
    });
    await d.client.access.createAdminToken({ name: "old-style" });
    await d.client.access.revokeAdminToken({ name: "old-style" });
    const names = (await d.client.access.listUsers({})).users.map((u) => u.name);
    expect(names).not.toContain("old-style");
  });

  test("the audit log names the user", async () => {
    await (as.op as VmAuthClient).access.createGroup({ name: "audited-grp" });
    const events = (await d.client.system.listAuditEvents({ limit: 1000 })).events;
    const by = (action: string, actor: string) =>
      events.some((e) => e.action === action && e.actor === actor && e.result === "ok");
    expect(by("group.create", "user:op")).toBe(true);
    expect(by("user.create", "admin:legacy")).toBe(true);
    expect(events.some((e) => e.action === "rpc.GetSecretValue" && e.actor === "user:viewer")).toBe(
      true,
    );
  });
});

describe("teams", () => {
  test("a team member lists only its team's VMs and groups", async () => {
    for (const who of ["red-op", "red-viewer"]) {
      const m = as[who] as VmAuthClient;
      expect((await m.access.listVms({})).vms.map((v) => v.name)).toEqual(["red-vm"]);
      expect((await m.access.listGroups({})).groups.map((g) => g.name)).toEqual(["red"]);
    }
    expect(
      (await (as["blue-op"] as VmAuthClient).access.listVms({})).vms.map((v) => v.name),
    ).toEqual(["blue-vm"]);
  });

  test("acting on another team's VM or group is NOT_FOUND, as if it did not exist", async () => {
    const m = as["red-op"] as VmAuthClient;
    await expect(m.access.issueVmToken({ name: "blue-vm" })).rejects.toMatchObject({
      code: "not_found",
      message: "name: vm 'blue-vm' not found",
    });
    await expect(m.access.deleteVm({ name: "blue-vm" })).rejects.toMatchObject({
      code: "not_found",
    });
    await expect(m.access.revokeVmTokens({ name: "blue-vm" })).rejects.toMatchObject({
      code: "not_found",
    });
    await expect(m.access.deleteGroup({ name: "blue" })).rejects.toMatchObject({
      code: "not_found",
    });
    await expect(m.access.createVm({ name: "x-vm", groups: ["blue"] })).rejects.toMatchObject({
      code: "not_found",
      message: "groups: group 'blue' not found",
    });
    await expect(m.access.updateVm({ name: "red-vm", addGroups: ["blue"] })).rejects.toMatchObject({
      code: "not_found",
      field: "add_groups",
    });
    expect((await d.client.access.listVms({})).vms.map((v) => v.name)).toEqual([
      "blue-vm",
      "red-vm",
    ]);
  });

  test("a team member manages its team's VMs", async () => {
    const m = as["red-op"] as VmAuthClient;
    const made = await m.access.createVm({ name: "red-vm2", groups: ["red"] });
    expect(made.token).toMatch(/^vmat_/);
    await m.access.issueVmToken({ name: "red-vm2" });
    await expect(m.access.createVm({ name: "red-vm3" })).rejects.toMatchObject({
      code: "invalid_argument",
      field: "groups",
    });
    await m.access.deleteVm({ name: "red-vm2" });
  });

  test("calls the team cannot yet be scoped to are refused to its members, never unscoped", async () => {
    const m = as["red-op"] as VmAuthClient;
    for (const call of [
      () => m.system.getStatus({}),
      () => m.env.getEnv({ vm: "red-vm" }),
      () => m.secrets.importSecrets({}),
      () => m.access.createGroup({ name: "red2" }),
    ]) {
      await expect(call()).rejects.toMatchObject({
        code: "permission_denied",
        message: expect.stringContaining("not available to a team member"),
      });
    }
  });

  test("a team member reaches only its team's secrets; another team's are NOT_FOUND", async () => {
    const red = as["red-op"] as VmAuthClient;
    const blue = as["blue-op"] as VmAuthClient;
    const redValue = secretValue("sk-red");
    const blueValue = secretValue("sk-blue");
    await red.secrets.createSecret({ name: "red-key", value: redValue, scope: "group:red" });
    await red.secrets.createSecret({
      name: "red-vm-key",
      value: secretValue(),
      scope: "vm:red-vm",
    });
    await blue.secrets.createSecret({ name: "blue-key", value: blueValue, scope: "group:blue" });
    expect((await red.secrets.listSecrets({})).secrets.map((s) => s.name)).toEqual([
      "red-key",
      "red-vm-key",
    ]);
    expect((await blue.secrets.listSecrets({})).secrets.map((s) => s.name)).toEqual(["blue-key"]);
    expect((await red.secrets.getSecretValue({ name: "red-key" })).value).toBe(redValue);
    for (const call of [
      () => red.secrets.getSecretValue({ name: "blue-key" }),
      () => red.secrets.getSecretValue({ name: "u-global" }),
      () => red.secrets.rotateSecret({ name: "blue-key", value: secretValue() }),
      () => red.secrets.deleteSecret({ name: "blue-key" }),
      () => red.secrets.listSecretVersions({ name: "blue-key" }),
      () => red.secrets.updateSecret({ name: "blue-key", description: "x" }),
    ]) {
      await expect(call()).rejects.toMatchObject({
        code: "not_found",
        message: expect.stringMatching(/^name: secret '(blue-key|u-global)' not found$/),
      });
    }
    // Out of the team by scope: another team's group or VM as if missing, global admin-only.
    await expect(
      red.secrets.createSecret({ name: "x-key", value: secretValue(), scope: "group:blue" }),
    ).rejects.toMatchObject({ code: "not_found", field: "scope" });
    await expect(
      red.secrets.createSecret({ name: "x-key", value: secretValue(), scope: "vm:blue-vm" }),
    ).rejects.toMatchObject({ code: "not_found", field: "scope" });
    await expect(
      red.secrets.createSecret({ name: "x-key", value: secretValue() }),
    ).rejects.toMatchObject({ code: "permission_denied", field: "scope" });
    await expect(
      red.secrets.updateSecret({ name: "red-key", scope: "global" }),
    ).rejects.toMatchObject({ code: "permission_denied", field: "scope" });
    const all = (await d.client.secrets.listSecrets({})).secrets.map((s) => s.name);
    expect(all).not.toContain("x-key");
    expect((await d.client.secrets.getSecretValue({ name: "blue-key" })).value).toBe(blueValue);
  });

  test("a team member's audit log holds only its team's secrets and VMs", async () => {
    const events = (await (as["red-op"] as VmAuthClient).system.listAuditEvents({ limit: 1000 }))
      .events;
    expect(events.some((e) => e.secret === "red-key")).toBe(true);
    for (const e of events) {
      expect(["red-key", "red-vm-key", ""]).toContain(e.secret);
      if (e.secret === "") expect(["red-vm", "red-vm2"]).toContain(e.vm);
      expect(JSON.stringify(e, (_k, v) => (typeof v === "bigint" ? String(v) : v))).not.toMatch(
        /blue/,
      );
    }
  });

  test("teams: list, members, and removal", async () => {
    const c = d.client;
    expect((await c.access.listTeams({})).teams).toEqual([
      expect.objectContaining({ name: "blue-team", groups: ["blue"], members: ["blue-op"] }),
      expect.objectContaining({
        name: "red-team",
        groups: ["red"],
        members: ["red-op", "red-viewer"],
      }),
    ]);
    await c.access.createTeam({ name: "tmp-team", groups: ["red", "blue"] });
    const t = await c.access.setTeamMembers({ name: "tmp-team", add: ["op"], remove: [] });
    expect(t.team?.members).toEqual(["op"]);
    await expect(c.access.deleteGroup({ name: "audited-grp" })).resolves.toBeDefined();
    await c.access.deleteTeam({ name: "tmp-team" });
    expect((await c.access.listUsers({})).users.find((u) => u.name === "op")?.teams).toEqual([]);
    expect((await c.access.listTeams({})).teams.map((x) => x.name)).toEqual([
      "blue-team",
      "red-team",
    ]);
  });

  test("a team's only group cannot be deleted while the team exists", async () => {
    await d.client.access.createGroup({ name: "solo" });
    await d.client.access.createTeam({ name: "solo-team", groups: ["solo"] });
    await expect(d.client.access.deleteGroup({ name: "solo" })).rejects.toMatchObject({
      code: "failed_precondition",
      message: expect.stringContaining("only group of team solo-team"),
    });
    await d.client.access.deleteTeam({ name: "solo-team" });
    await d.client.access.deleteGroup({ name: "solo" });
  });
});

describe("after a restart", () => {
  test("users, roles, teams and tokens are as they were", async () => {
    const token = (await d.client.access.issueUserToken({ name: "red-viewer" })).token;
    const before = {
      users: (await d.client.access.listUsers({})).users,
      teams: (await d.client.access.listTeams({})).teams,
    };
    await d.restart();
    expect((await d.client.access.listUsers({})).users).toEqual(before.users);
    expect((await d.client.access.listTeams({})).teams).toEqual(before.teams);
    const m = d.tcpClient(token);
    expect((await m.access.listVms({})).vms.map((v) => v.name)).toEqual(["red-vm"]);
    await expect(m.secrets.getSecretValue({ name: "red-key" })).rejects.toMatchObject({
      code: "permission_denied",
      message: "GetSecretValue: role viewer may not call it (needs operator)",
    });
  });
});
