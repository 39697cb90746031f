import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Role } from "../proto/gen/vmauth/v1/access_pb.js";
import { ImportAction } from "../proto/gen/vmauth/v1/secrets_pb.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon, storeOnDisk } from "./helpers/daemon.js";
import { secretValue, track } from "./helpers/values.js";

let d: TestDaemon;
let vmToken: string;
beforeAll(async () => {
  d = await startDaemon();
  await d.client.secrets.createSecret({ name: "openai", value: secretValue() });
  await d.client.access.createGroup({ name: "ml" });
  vmToken = (await d.client.access.createVm({ name: "vm1", groups: ["ml"] })).token;
  await d.client.access.createVm({ name: "vm2" });
});
afterAll(async () => {
  await d.dispose();
});

/** Runs a request that must fail, and proves it changed nothing on disk. */
async function refused(call: () => Promise<unknown>, code: string, field?: string) {
  const before = await storeOnDisk(d.dataDir);
  const rev = (await d.client.system.getStatus({})).revision;
  const err = await call().then(
    () => {
      throw new Error("expected the call to fail");
    },
    (e: unknown) => e as { code: string; field?: string; message: string },
  );
  expect(err.code).toBe(code);
  if (field !== undefined) {
    expect(err.field).toBe(field);
    expect(err.message.startsWith(`${field}: `) || err.message.includes(field)).toBe(true);
  }
  expect((await d.client.system.getStatus({})).revision).toBe(rev);
  expect(await storeOnDisk(d.dataDir)).toBe(before);
  return err;
}

const big = track(`big-${"x".repeat(64 * 1024)}`);
const withNul = track("sk-before\0after-nul-value");

describe("bad input gets the right status, names the field, and changes nothing", () => {
  const s = () => d.client.secrets;
  test.each([
    [
      "uppercase name",
      () => s().createSecret({ name: "OpenAI", value: "v-123456789012" }),
      "invalid_argument",
      "name",
    ],
    [
      "empty name",
      () => s().createSecret({ name: "", value: "v-123456789012" }),
      "invalid_argument",
      "name",
    ],
    [
      "name too long",
      () => s().createSecret({ name: `a${"b".repeat(63)}`, value: "v" }),
      "invalid_argument",
      "name",
    ],
    [
      "name with slash",
      () => s().createSecret({ name: "a/b", value: "v" }),
      "invalid_argument",
      "name",
    ],
    [
      "bad env name",
      () => s().createSecret({ name: "x1", env: "lower", value: "v" }),
      "invalid_argument",
      "env",
    ],
    [
      "env name with dash",
      () => s().createSecret({ name: "x1", env: "A-B", value: "v" }),
      "invalid_argument",
      "env",
    ],
    [
      "env starting with digit",
      () => s().createSecret({ name: "x1", env: "1A", value: "v" }),
      "invalid_argument",
      "env",
    ],
    [
      "value with NUL",
      () => s().createSecret({ name: "x1", value: withNul }),
      "invalid_argument",
      "value",
    ],
    [
      "value over 64 KiB",
      () => s().createSecret({ name: "x1", value: big }),
      "invalid_argument",
      "value",
    ],
    ["empty value", () => s().createSecret({ name: "x1", value: "" }), "invalid_argument", "value"],
    [
      "bad scope",
      () => s().createSecret({ name: "x1", value: "v", scope: "team:x" }),
      "invalid_argument",
      "scope",
    ],
    [
      "unknown group scope",
      () => s().createSecret({ name: "x1", value: "v", scope: "group:nope" }),
      "not_found",
      "scope",
    ],
    [
      "unknown vm scope",
      () => s().createSecret({ name: "x1", value: "v", scope: "vm:nope" }),
      "not_found",
      "scope",
    ],
    [
      "unknown provider",
      () => s().createSecret({ name: "x1", value: "v", provider: "nope" }),
      "invalid_argument",
      "provider",
    ],
    [
      "bad label",
      () => s().createSecret({ name: "x1", value: "v", labels: { "Bad Key": "1" } }),
      "invalid_argument",
      "labels",
    ],
    [
      "duplicate name",
      () => s().createSecret({ name: "openai", value: "v" }),
      "already_exists",
      "name",
    ],
    [
      "rotate unknown secret",
      () => s().rotateSecret({ name: "nope", value: "v" }),
      "not_found",
      "name",
    ],
    [
      "rotate with NUL",
      () => s().rotateSecret({ name: "openai", value: withNul }),
      "invalid_argument",
      "value",
    ],
    [
      "rotate over 64 KiB",
      () => s().rotateSecret({ name: "openai", value: big }),
      "invalid_argument",
      "value",
    ],
    ["get unknown secret", () => s().getSecretValue({ name: "nope" }), "not_found", "name"],
    [
      "get unknown version",
      () => s().getSecretValue({ name: "openai", version: 9 }),
      "not_found",
      "version",
    ],
    [
      "rollback unknown version",
      () => s().rollbackSecret({ name: "openai", version: 9 }),
      "not_found",
      "version",
    ],
    [
      "rollback version 0",
      () => s().rollbackSecret({ name: "openai", version: 0 }),
      "invalid_argument",
      "version",
    ],
    ["delete unknown secret", () => s().deleteSecret({ name: "nope" }), "not_found", "name"],
    [
      "versions of unknown secret",
      () => s().listSecretVersions({ name: "nope" }),
      "not_found",
      "name",
    ],
    [
      "update to bad env",
      () => s().updateSecret({ name: "openai", env: "x y" }),
      "invalid_argument",
      "env",
    ],
    ["update unknown", () => s().updateSecret({ name: "nope", env: "X" }), "not_found", "name"],
    [
      "vm bad name",
      () => d.client.access.createVm({ name: "Bad_VM!" }),
      "invalid_argument",
      "name",
    ],
    [
      "vm unknown group",
      () => d.client.access.createVm({ name: "vm9", groups: ["nope"] }),
      "not_found",
      "groups",
    ],
    ["vm duplicate", () => d.client.access.createVm({ name: "vm1" }), "already_exists", "name"],
    [
      "token for unknown vm",
      () => d.client.access.issueVmToken({ name: "nope" }),
      "not_found",
      "name",
    ],
    ["delete unknown vm", () => d.client.access.deleteVm({ name: "nope" }), "not_found", "name"],
    [
      "update vm unknown group",
      () => d.client.access.updateVm({ name: "vm1", addGroups: ["nope"] }),
      "not_found",
      "add_groups",
    ],
    ["getenv unknown vm", () => d.client.env.getEnv({ vm: "nope" }), "not_found", "vm"],
    ["getenv without vm", () => d.client.env.getEnv({}), "invalid_argument", "vm"],
    [
      "audit limit too high",
      () => d.client.system.listAuditEvents({ limit: 20_000 }),
      "invalid_argument",
      "limit",
    ],
    [
      "usage window over 30 days",
      () => s().getSecretUsage({ name: "openai", windowSeconds: 30 * 86_400 + 1 }),
      "invalid_argument",
      "window_seconds",
    ],
    ["usage of an unknown secret", () => s().getSecretUsage({ name: "nope" }), "not_found", "name"],
  ] as const)("%s", async (_label, call, code, field) => {
    const err = await refused(call, code, field);
    // Never echo a value.
    expect(err.message).not.toContain("after-nul");
    expect(err.message.length).toBeLessThan(300);
  });

  test("missing token, wrong token and another VM's env over TCP", async () => {
    await refused(() => d.tcpClient().env.getEnv({ vm: "vm1" }), "unauthenticated");
    await refused(() => d.tcpClient("vmat_wrong").env.getEnv({}), "unauthenticated");
    await refused(() => d.tcpClient(vmToken).env.getEnv({ vm: "vm2" }), "permission_denied", "vm");
    await refused(
      () => d.tcpClient(vmToken).secrets.rotateSecret({ name: "openai", value: "v" }),
      "permission_denied",
    );
  });
});

describe("ImportSecrets: every item is checked first; an error names the item and nothing is applied", () => {
  const s = () => d.client.secrets;
  const CREATE = ImportAction.CREATE;
  const ROTATE = ImportAction.ROTATE;
  // A valid first item in each request: it must not be applied when a later one is refused.
  const fine = () => ({ name: "imp-fine", action: CREATE, value: secretValue() });
  test.each([
    ["no items", () => s().importSecrets({ items: [] }), "invalid_argument", "items"],
    [
      "more than 1000 items",
      () =>
        s().importSecrets({
          items: [
            fine(),
            ...Array.from({ length: 1000 }, (_, i) => ({
              name: `imp-n${i}`,
              action: CREATE,
              value: "v-1",
            })),
          ],
        }),
      "invalid_argument",
      "items",
    ],
    [
      "an item without an action",
      () => s().importSecrets({ items: [fine(), { name: "imp-x", value: secretValue() }] }),
      "invalid_argument",
      "items[1].action",
    ],
    [
      "a bad name",
      () => s().importSecrets({ items: [fine(), { name: "Bad", action: CREATE, value: "v" }] }),
      "invalid_argument",
      "items[1].name",
    ],
    [
      "a name twice",
      () => s().importSecrets({ items: [fine(), fine()] }),
      "invalid_argument",
      "items[1].name",
    ],
    [
      "a value with NUL",
      () =>
        s().importSecrets({ items: [fine(), { name: "imp-x", action: CREATE, value: withNul }] }),
      "invalid_argument",
      "items[1].value",
    ],
    [
      "a value over 64 KiB",
      () => s().importSecrets({ items: [fine(), { name: "openai", action: ROTATE, value: big }] }),
      "invalid_argument",
      "items[1].value",
    ],
    [
      "an empty value",
      () => s().importSecrets({ items: [fine(), { name: "imp-x", action: CREATE, value: "" }] }),
      "invalid_argument",
      "items[1].value",
    ],
    [
      "create of an existing secret",
      () =>
        s().importSecrets({
          items: [fine(), { name: "openai", action: CREATE, value: secretValue() }],
        }),
      "already_exists",
      "items[1].name",
    ],
    [
      "rotate of an unknown secret",
      () => s().importSecrets({ items: [fine(), { name: "nope", action: ROTATE, value: "v-1" }] }),
      "not_found",
      "items[1].name",
    ],
    [
      "an env var another secret gives at that scope",
      () =>
        s().importSecrets({
          items: [fine(), { name: "imp-x", action: CREATE, value: "v-1", env: "OPENAI_API_KEY" }],
        }),
      "already_exists",
      "items[1].env",
    ],
    [
      "an env var an earlier item gives at that scope",
      () =>
        s().importSecrets({
          items: [
            { ...fine(), env: "IMP_SAME" },
            { name: "imp-x", action: CREATE, value: "v-1", env: "IMP_SAME" },
          ],
        }),
      "already_exists",
      "items[1].env",
    ],
    [
      "a sensitive env var without the flag",
      () =>
        s().importSecrets({
          items: [fine(), { name: "imp-x", action: CREATE, value: "v-1", env: "LD_PRELOAD" }],
        }),
      "invalid_argument",
      "items[1].env",
    ],
    [
      "a scope naming an unknown VM",
      () =>
        s().importSecrets({
          items: [fine(), { name: "imp-x", action: CREATE, value: "v-1", scope: "vm:nope" }],
        }),
      "not_found",
      "items[1].scope",
    ],
    [
      "a scope on a rotation",
      () =>
        s().importSecrets({
          items: [fine(), { name: "openai", action: ROTATE, value: "v-1", scope: "vm:vm1" }],
        }),
      "invalid_argument",
      "items[1].scope",
    ],
    [
      "a move to an unknown group",
      () =>
        s().importSecrets({
          items: [fine(), { name: "openai", action: ROTATE, value: "v-1", moveToScope: "group:x" }],
        }),
      "not_found",
      "items[1].move_to_scope",
    ],
    [
      "a move on a create",
      () =>
        s().importSecrets({
          items: [fine(), { name: "imp-x", action: CREATE, value: "v-1", moveToScope: "global" }],
        }),
      "invalid_argument",
      "items[1].move_to_scope",
    ],
  ] as const)("%s", async (_label, call, code, field) => {
    const err = await refused(call, code, field);
    expect(err.message).not.toContain("after-nul");
    expect(err.message.length).toBeLessThan(300);
    await expect(s().getSecretValue({ name: "imp-fine" })).rejects.toMatchObject({
      code: "not_found",
    });
  });

  test("a VM token may not import", async () => {
    await refused(
      () =>
        d.tcpClient(vmToken).secrets.importSecrets({
          items: [{ name: "imp-vm", action: ImportAction.CREATE, value: "v-1" }],
        }),
      "permission_denied",
    );
  });
});

describe("env names that change how programs load or run are refused unless flagged", () => {
  const s = () => d.client.secrets;
  test.each(["PATH", "LD_PRELOAD", "LD_LIBRARY_PATH", "NODE_OPTIONS", "BASH_ENV", "HOME", "_"])(
    "%s",
    async (env) => {
      const name = `deny-${env.toLowerCase().replaceAll("_", "-")}x`;
      const err = await refused(
        () => s().createSecret({ name, env, value: secretValue() }),
        "invalid_argument",
        "env",
      );
      expect(err.message).toContain(env);
      expect(err.message).toContain("allow_sensitive_env");
    },
  );

  test("a name defaulted from the secret's name is checked too", async () => {
    await refused(
      () => s().createSecret({ name: "path", value: secretValue() }),
      "invalid_argument",
      "env",
    );
  });

  test("the flag on the secret allows it, and the VM gets it; clearing the flag is refused", async () => {
    const value = secretValue();
    const r = await s().createSecret({
      name: "tools-path",
      env: "PATH",
      scope: "vm:vm2",
      value,
      allowSensitiveEnv: true,
    });
    expect(r.secret?.allowSensitiveEnv).toBe(true);
    const env = await d.client.env.getEnv({ vm: "vm2" });
    expect(env.snapshot?.vars.find((v) => v.name === "PATH")?.value).toBe(value);
    await refused(
      () => s().updateSecret({ name: "tools-path", allowSensitiveEnv: false }),
      "invalid_argument",
      "allow_sensitive_env",
    );
    // Moving an ordinary secret onto a denied name needs the flag as well.
    await refused(
      () => s().updateSecret({ name: "openai", env: "NODE_OPTIONS" }),
      "invalid_argument",
      "env",
    );
    await s().deleteSecret({ name: "tools-path" });
  });
});

describe("users and teams: bad input names the field and changes nothing", () => {
  const a = () => d.client.access;
  beforeAll(async () => {
    await a().createUser({ name: "bi-user", role: Role.VIEWER });
    await a().createTeam({ name: "bi-team", groups: ["ml"] });
  });
  test.each([
    [
      "user: malformed name",
      () => a().createUser({ name: "Bi!", role: Role.VIEWER }),
      "invalid_argument",
      "name",
    ],
    [
      "user: empty name",
      () => a().createUser({ name: "", role: Role.VIEWER }),
      "invalid_argument",
      "name",
    ],
    ["user: no role", () => a().createUser({ name: "bi-x" }), "invalid_argument", "role"],
    [
      "user: unknown role number",
      () => a().createUser({ name: "bi-x", role: 9 as Role }),
      "invalid_argument",
      "role",
    ],
    [
      "user: unknown team",
      () => a().createUser({ name: "bi-x", role: Role.VIEWER, teams: ["nope"] }),
      "not_found",
      "teams",
    ],
    [
      "user: malformed team",
      () => a().createUser({ name: "bi-x", role: Role.VIEWER, teams: ["No"] }),
      "invalid_argument",
      "teams",
    ],
    [
      "user: name taken",
      () => a().createUser({ name: "bi-user", role: Role.ADMIN }),
      "already_exists",
      "name",
    ],
    ["user: delete unknown", () => a().deleteUser({ name: "nope" }), "not_found", "name"],
    [
      "user: role of unknown",
      () => a().setUserRole({ name: "nope", role: Role.ADMIN }),
      "not_found",
      "name",
    ],
    ["user: role unset", () => a().setUserRole({ name: "bi-user" }), "invalid_argument", "role"],
    ["user: token for unknown", () => a().issueUserToken({ name: "nope" }), "not_found", "name"],
    ["team: no group", () => a().createTeam({ name: "bi-x" }), "invalid_argument", "groups"],
    [
      "team: unknown group",
      () => a().createTeam({ name: "bi-x", groups: ["nope"] }),
      "not_found",
      "groups",
    ],
    [
      "team: malformed name",
      () => a().createTeam({ name: "X", groups: ["ml"] }),
      "invalid_argument",
      "name",
    ],
    [
      "team: name taken",
      () => a().createTeam({ name: "bi-team", groups: ["ml"] }),
      "already_exists",
      "name",
    ],
    ["team: delete unknown", () => a().deleteTeam({ name: "nope" }), "not_found", "name"],
    [
      "team: members of unknown",
      () => a().setTeamMembers({ name: "nope", add: ["bi-user"] }),
      "not_found",
      "name",
    ],
    [
      "team: add unknown user",
      () => a().setTeamMembers({ name: "bi-team", add: ["nope"] }),
      "not_found",
      "add",
    ],
    [
      "team: add malformed user",
      () => a().setTeamMembers({ name: "bi-team", add: ["N!"] }),
      "invalid_argument",
      "add",
    ],
    [
      "team: only group deleted",
      () => a().deleteGroup({ name: "ml" }),
      "failed_precondition",
      "name",
    ],
  ] as const)("%s", async (_label, call, code, field) => {
    await refused(call, code, field);
  });

  test("a viewer's and an operator's user calls are refused and change nothing", async () => {
    const viewer = d.tcpClient((await a().issueUserToken({ name: "bi-user" })).token);
    await refused(
      () => viewer.access.createUser({ name: "bi-x", role: Role.ADMIN }),
      "permission_denied",
    );
    await refused(() => viewer.secrets.getSecretValue({ name: "openai" }), "permission_denied");
    await refused(
      () => viewer.secrets.createSecret({ name: "bi-x", value: secretValue() }),
      "permission_denied",
    );
  });
});
