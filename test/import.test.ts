/**
 * ImportSecrets over real gRPC: creates, rotations and moves land in ONE revision, durable
 * across a restart, each audited as its single-secret RPC; an unchanged value stores no
 * version, and a request that changes nothing makes no revision. The refusals (each naming
 * `items[i].field`, nothing applied) are in bad-input.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { ImportAction, ImportOutcome } from "../proto/gen/vmauth/v1/secrets_pb.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon } from "./helpers/daemon.js";
import { secretValue } from "./helpers/values.js";

let d: TestDaemon;
beforeAll(async () => {
  d = await startDaemon();
  await d.client.access.createVm({ name: "web1" });
});
afterAll(async () => {
  await d?.dispose();
});

describe("ImportSecrets", () => {
  test("creates, rotates and moves in one revision, each audited, durable across a restart", async () => {
    const s = () => d.client.secrets;
    const old = secretValue();
    await s().createSecret({ name: "imp-a", value: old });
    await s().createSecret({ name: "imp-b", value: secretValue() });
    const same = secretValue();
    await s().createSecret({ name: "imp-c", value: same });
    const before = (await d.client.system.getStatus({})).revision;
    const [va, vb, vn] = [secretValue(), secretValue(), `line 1\nline "2" $HOME\n`];
    const r = await s().importSecrets({
      items: [
        { name: "imp-a", action: ImportAction.ROTATE, value: va },
        { name: "imp-b", action: ImportAction.ROTATE, value: vb, moveToScope: "vm:web1" },
        { name: "imp-c", action: ImportAction.ROTATE, value: same },
        { name: "imp-new", action: ImportAction.CREATE, value: vn, scope: "vm:web1" },
      ],
    });
    expect(r.revision).toBe(before + 1n);
    expect(r.results.map((x) => [x.name, ImportOutcome[x.outcome], x.movedFromScope])).toEqual([
      ["imp-a", "ROTATED", ""],
      ["imp-b", "ROTATED", "global"],
      ["imp-c", "UNCHANGED", ""],
      ["imp-new", "CREATED", ""],
    ]);
    expect(r.results[1]?.secret?.scope).toBe("vm:web1");
    expect(r.results[2]?.secret?.currentVersion).toBe(1);

    await d.restart();
    const value = async (name: string) => (await s().getSecretValue({ name })).value;
    expect(await value("imp-a")).toBe(va);
    expect(await value("imp-b")).toBe(vb);
    expect(await value("imp-new")).toBe(vn);
    expect((await s().getSecretValue({ name: "imp-a", version: 1 })).value).toBe(old);
    const env = await d.client.env.getEnv({ vm: "web1" });
    expect(env.snapshot?.vars.find((v) => v.name === "IMP_NEW")?.value).toBe(vn);

    const events = (await d.client.system.listAuditEvents({ limit: 200 })).events.filter(
      (e) => e.revision === r.revision && e.action.startsWith("secret."),
    );
    expect(events.map((e) => `${e.action} ${e.secret} ${e.result}`).sort()).toEqual([
      "secret.create imp-new ok",
      "secret.rotate imp-a ok",
      "secret.rotate imp-b ok",
      "secret.update imp-b ok",
    ]);
  });

  test("a move alone changes the scope and stores no version", async () => {
    const v = secretValue();
    await d.client.secrets.createSecret({ name: "imp-move", value: v });
    const r = await d.client.secrets.importSecrets({
      items: [{ name: "imp-move", action: ImportAction.ROTATE, value: v, moveToScope: "vm:web1" }],
    });
    expect(ImportOutcome[r.results[0]?.outcome ?? 0]).toBe("UNCHANGED");
    expect(r.results[0]?.movedFromScope).toBe("global");
    expect(r.results[0]?.secret).toMatchObject({ scope: "vm:web1", currentVersion: 1 });
  });

  test("a refused request audits each item with the error, and applies none", async () => {
    const err = await d.client.secrets
      .importSecrets({
        items: [
          { name: "imp-r1", action: ImportAction.CREATE, value: secretValue() },
          { name: "imp-r2", action: ImportAction.ROTATE, value: secretValue() },
        ],
      })
      .catch((e: unknown) => e as { code: string; field: string });
    expect(err).toMatchObject({ code: "not_found", field: "items[1].name" });
    const events = (await d.client.system.listAuditEvents({ limit: 200 })).events;
    const mine = events.filter((e) => e.secret === "imp-r1" || e.secret === "imp-r2");
    expect(mine.map((e) => `${e.action} ${e.secret} ${e.result}`).sort()).toEqual([
      "secret.create imp-r1 not_found",
      "secret.rotate imp-r2 not_found",
    ]);
    await expect(d.client.secrets.getSecretValue({ name: "imp-r1" })).rejects.toMatchObject({
      code: "not_found",
    });
  });

  test("a request that changes nothing makes no revision", async () => {
    const v = secretValue();
    await d.client.secrets.createSecret({ name: "imp-noop", value: v });
    const before = (await d.client.system.getStatus({})).revision;
    const r = await d.client.secrets.importSecrets({
      items: [{ name: "imp-noop", action: ImportAction.ROTATE, value: v, moveToScope: "global" }],
    });
    expect(r.revision).toBe(before);
    expect((await d.client.system.getStatus({})).revision).toBe(before);
  });
});
