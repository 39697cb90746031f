import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon, storeOnDisk } from "./helpers/daemon.js";
import { secretValue } from "./helpers/values.js";

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon();
});
afterAll(async () => {
  await d.dispose();
});

const envOf = async (token: string) => {
  const res = await d.tcpClient(token).env.getEnv({});
  return Object.fromEntries((res.snapshot?.vars ?? []).map((v) => [v.name, v.value]));
};

describe("scopes, VMs and tokens", () => {
  test("the most specific scope wins per env var; groups tie by name", async () => {
    const c = d.client;
    await c.access.createGroup({ name: "ml" });
    await c.access.createGroup({ name: "web" });
    const a = await c.access.createVm({ name: "gpu1", groups: ["ml", "web"] });
    const b = await c.access.createVm({ name: "web1", groups: ["web"] });
    const x = await c.access.createVm({ name: "bare" });
    const global = secretValue("global");
    const ml = secretValue("ml");
    const web = secretValue("web");
    const own = secretValue("own");
    const shared = secretValue("shared");
    await c.secrets.createSecret({ name: "openai", value: global });
    await c.secrets.createSecret({
      name: "openai-ml",
      provider: "openai",
      scope: "group:ml",
      value: ml,
    });
    await c.secrets.createSecret({
      name: "openai-web",
      env: "OPENAI_API_KEY",
      scope: "group:web",
      value: web,
    });
    await c.secrets.createSecret({
      name: "openai-web1",
      env: "OPENAI_API_KEY",
      scope: "vm:web1",
      value: own,
    });
    await c.secrets.createSecret({ name: "shared", value: shared });

    expect(await envOf(a.token)).toEqual({ OPENAI_API_KEY: ml, SHARED: shared });
    expect(await envOf(b.token)).toEqual({ OPENAI_API_KEY: own, SHARED: shared });
    expect(await envOf(x.token)).toEqual({ OPENAI_API_KEY: global, SHARED: shared });

    // Leaving a group changes the view at once.
    await c.access.updateVm({ name: "gpu1", removeGroups: ["ml"] });
    expect(await envOf(a.token)).toEqual({ OPENAI_API_KEY: web, SHARED: shared });
  });

  test("two secrets may not give one env var at one scope", async () => {
    await expect(
      d.client.secrets.createSecret({
        name: "openai-dup",
        provider: "openai",
        value: secretValue(),
      }),
    ).rejects.toMatchObject({ code: "already_exists", field: "env" });
  });

  test("a VM token reads its own VM's env and nothing else", async () => {
    const vm = await d.client.access.createVm({ name: "iso1" });
    await d.client.access.createVm({ name: "iso2" });
    const c = d.tcpClient(vm.token);
    expect((await c.env.getEnv({ vm: "iso1" })).snapshot?.vm).toBe("iso1");
    await expect(c.env.getEnv({ vm: "iso2" })).rejects.toMatchObject({
      code: "permission_denied",
    });
    await expect(c.secrets.listSecrets({})).rejects.toMatchObject({ code: "permission_denied" });
    await expect(c.secrets.getSecretValue({ name: "openai" })).rejects.toMatchObject({
      code: "permission_denied",
    });
    await expect(c.access.listVms({})).rejects.toMatchObject({ code: "permission_denied" });
    await expect(c.system.rotateMasterKey({})).rejects.toMatchObject({ code: "permission_denied" });
  });

  test("tokens: missing, malformed, wrong and revoked are UNAUTHENTICATED", async () => {
    await expect(d.tcpClient().secrets.listSecrets({})).rejects.toMatchObject({
      code: "unauthenticated",
    });
    await expect(d.tcpClient("nonsense").env.getEnv({})).rejects.toMatchObject({
      code: "unauthenticated",
    });
    await expect(d.tcpClient(`vmat_${"A".repeat(43)}`).env.getEnv({})).rejects.toMatchObject({
      code: "unauthenticated",
    });
    const vm = await d.client.access.createVm({ name: "rev1" });
    expect((await d.tcpClient(vm.token).env.getEnv({})).snapshot?.vm).toBe("rev1");
    const fresh = await d.client.access.issueVmToken({ name: "rev1" });
    await expect(d.tcpClient(vm.token).env.getEnv({})).rejects.toMatchObject({
      code: "unauthenticated",
    });
    expect((await d.tcpClient(fresh.token).env.getEnv({})).snapshot?.vm).toBe("rev1");
    const kept = await d.client.access.issueVmToken({ name: "rev1", keepExisting: true });
    expect((await d.tcpClient(fresh.token).env.getEnv({})).snapshot?.vm).toBe("rev1");
    expect((await d.tcpClient(kept.token).env.getEnv({})).snapshot?.vm).toBe("rev1");
    expect((await d.client.access.revokeVmTokens({ name: "rev1" })).revoked).toBe(2);
    await expect(d.tcpClient(kept.token).env.getEnv({})).rejects.toMatchObject({
      code: "unauthenticated",
    });
  });

  test("tokens are stored only as hashes", async () => {
    const vm = await d.client.access.createVm({ name: "hash1" });
    const store = await storeOnDisk(d.dataDir);
    expect(vm.token).toMatch(/^vmat_[A-Za-z0-9_-]{43}$/);
    expect(store).not.toContain(vm.token);
    expect(store).not.toContain(vm.token.slice(5));
  });

  test("admin tokens give full access over TCP and can be revoked", async () => {
    const t = await d.client.access.createAdminToken({ name: "ci" });
    expect(t.token).toMatch(/^vmadm_/);
    const admin = d.tcpClient(t.token);
    expect((await admin.system.getStatus({})).caller).toBe("admin:ci");
    await admin.secrets.createSecret({ name: "from-ci", value: secretValue() });
    const versions = await d.client.secrets.listSecretVersions({ name: "from-ci" });
    expect(versions.versions[0]?.createdBy).toBe("admin:ci");
    expect((await d.client.access.listAdminTokens({})).adminTokens.map((x) => x.name)).toEqual([
      "ci",
    ]);
    await d.client.access.revokeAdminToken({ name: "ci" });
    await expect(admin.system.getStatus({})).rejects.toMatchObject({ code: "unauthenticated" });
  });

  test("groups and VMs with scoped secrets cannot be deleted; others can", async () => {
    await expect(d.client.access.deleteGroup({ name: "web" })).rejects.toMatchObject({
      code: "failed_precondition",
    });
    await expect(d.client.access.deleteVm({ name: "web1" })).rejects.toMatchObject({
      code: "failed_precondition",
    });
    await d.client.secrets.deleteSecret({ name: "openai-web1" });
    await d.client.access.deleteVm({ name: "web1" });
    await d.client.access.createGroup({ name: "empty" });
    await d.client.access.deleteGroup({ name: "empty" });
    const groups = await d.client.access.listGroups({});
    expect(groups.groups.find((g) => g.name === "web")?.vms).toEqual(["gpu1"]);
    expect(groups.groups.map((g) => g.name)).not.toContain("empty");
  });

  test("refused calls are audited with who and what", async () => {
    const res = await d.client.system.listAuditEvents({ limit: 500 });
    expect(
      res.events.some(
        (e) =>
          e.action === "rpc.ListSecrets" &&
          e.result === "permission_denied" &&
          e.actor === "vm:iso1",
      ),
    ).toBe(true);
    expect(res.events.some((e) => e.result === "unauthenticated" && e.actor === "anonymous")).toBe(
      true,
    );
    expect(
      res.events.some(
        (e) => e.action === "env.get" && e.vm === "iso2" && e.result === "permission_denied",
      ),
    ).toBe(true);
  });
});
