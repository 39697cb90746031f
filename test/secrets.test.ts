import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { SecretKind } from "../proto/gen/vmauth/v1/secrets_pb.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon } from "./helpers/daemon.js";
import { secretValue, track } from "./helpers/values.js";

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon();
});
afterAll(async () => {
  await d.dispose();
});

describe("secret lifecycle over gRPC", () => {
  test("create defaults env from provider presets, else the upper-cased name", async () => {
    const openai = await d.client.secrets.createSecret({ name: "openai", value: secretValue() });
    expect(openai.secret).toMatchObject({
      name: "openai",
      env: "OPENAI_API_KEY",
      scope: "global",
      kind: SecretKind.STATIC,
      provider: "openai",
      currentVersion: 1,
    });
    const anth = await d.client.secrets.createSecret({
      name: "claude",
      provider: "anthropic",
      value: secretValue(),
    });
    expect(anth.secret?.env).toBe("ANTHROPIC_API_KEY");
    const plain = await d.client.secrets.createSecret({
      name: "db.pass-word",
      value: secretValue(),
    });
    expect(plain.secret?.env).toBe("DB_PASS_WORD");
    const explicit = await d.client.secrets.createSecret({
      name: "custom",
      env: "MY_KEY",
      value: secretValue(),
      labels: { team: "ml" },
      description: "for tests",
    });
    expect(explicit.secret).toMatchObject({ env: "MY_KEY", labels: { team: "ml" } });
    expect(explicit.revision).toBeGreaterThan(anth.revision);
  });

  test("get returns exactly the stored value, any UTF-8 without NUL", async () => {
    const tricky = track(
      `-----BEGIN KEY-----\n  "q" 'q' \\ $X \${Y} \`b\` # ; = \t é 🔑 \r\n-----END KEY-----  `,
    );
    await d.client.secrets.createSecret({ name: "tricky", value: tricky });
    const got = await d.client.secrets.getSecretValue({ name: "tricky" });
    expect(got.value).toBe(tricky);
    expect(got.version).toBe(1);
  });

  test("list carries metadata only, never a value", async () => {
    const res = await d.client.secrets.listSecrets({});
    const names = res.secrets.map((s) => s.name);
    expect(names).toEqual([...names].sort());
    expect(names).toContain("openai");
    expect(
      JSON.stringify(res.secrets, (_k, v) => (typeof v === "bigint" ? String(v) : v)),
    ).not.toMatch(/sk-test/);
  });

  test("rotate adds a version; versions and rollback keep every value", async () => {
    const v1 = (await d.client.secrets.getSecretValue({ name: "openai" })).value;
    const v2 = secretValue();
    const rot = await d.client.secrets.rotateSecret({ name: "openai", value: v2 });
    expect(rot.secret?.currentVersion).toBe(2);
    expect((await d.client.secrets.getSecretValue({ name: "openai" })).value).toBe(v2);
    expect((await d.client.secrets.getSecretValue({ name: "openai", version: 1 })).value).toBe(v1);
    const versions = await d.client.secrets.listSecretVersions({ name: "openai" });
    expect(versions.versions.map((v) => [v.version, v.current, v.createdBy])).toEqual([
      [2, true, "local"],
      [1, false, "local"],
    ]);
    const rb = await d.client.secrets.rollbackSecret({ name: "openai", version: 1 });
    expect(rb.secret?.currentVersion).toBe(1);
    expect((await d.client.secrets.getSecretValue({ name: "openai" })).value).toBe(v1);
    // Rolling back loses nothing: version 2 is still there.
    expect((await d.client.secrets.getSecretValue({ name: "openai", version: 2 })).value).toBe(v2);
  });

  test("update changes metadata but never the value", async () => {
    const before = await d.client.secrets.getSecretValue({ name: "custom" });
    const up = await d.client.secrets.updateSecret({ name: "custom", env: "MY_OTHER_KEY" });
    expect(up.secret?.env).toBe("MY_OTHER_KEY");
    expect(up.secret?.labels).toEqual({ team: "ml" });
    const after = await d.client.secrets.getSecretValue({ name: "custom" });
    expect(after.value).toBe(before.value);
  });

  test("delete removes the secret and all versions", async () => {
    await d.client.secrets.deleteSecret({ name: "db.pass-word" });
    await expect(d.client.secrets.getSecretValue({ name: "db.pass-word" })).rejects.toMatchObject({
      code: "not_found",
      field: "name",
    });
  });

  test("every read and change is audited, without values", async () => {
    const res = await d.client.system.listAuditEvents({ limit: 1000 });
    const actions = new Set(res.events.map((e) => e.action));
    for (const a of [
      "secret.create",
      "secret.read",
      "secret.rotate",
      "secret.rollback",
      "secret.update",
      "secret.delete",
    ]) {
      expect(actions).toContain(a);
    }
    const reads = res.events.filter((e) => e.action === "secret.read" && e.secret === "openai");
    expect(reads.length).toBeGreaterThanOrEqual(3);
    expect(reads.every((e) => e.actor === "local" && e.result === "ok")).toBe(true);
    const failed = res.events.find((e) => e.secret === "db.pass-word" && e.result === "not_found");
    expect(failed).toBeDefined();
    const filtered = await d.client.system.listAuditEvents({ secret: "tricky", limit: 10 });
    expect(filtered.events.every((e) => e.secret === "tricky")).toBe(true);
  });
});
