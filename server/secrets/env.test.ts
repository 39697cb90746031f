/**
 * GetEnv and WatchEnv share one view path: the same answer for the same damage, the VM check
 * in one place, and no cache kept for a deleted VM. Real store (memory driver), barrier and
 * services; the watch sink records what it is given.
 */
import { describe, expect, test } from "vitest";
import { createMemoryDriver } from "../store/drivers/memory.js";
import { openStore } from "../store/store.js";
import { createAccessUseCases } from "./access.js";
import { createEnvUseCases } from "./env.js";
import { createSecretUseCases } from "./secrets.js";
import { testDeps } from "./test-deps.js";
import { createWatchHub } from "./watch.js";

const local = { caller: { kind: "local" } as const, requestId: "t" };

async function setup() {
  const deps = await testDeps(await openStore(createMemoryDriver()));
  const access = createAccessUseCases(deps);
  const secrets = createSecretUseCases(deps);
  await access.createVm(local, "vm1", []);
  await access.createVm(local, "vm2", []);
  await secrets.create(local, { name: "key", value: "v-1234567890", scope: "vm:vm1" });
  const env = createEnvUseCases(deps);
  const hub = createWatchHub({ ...deps, heartbeatMs: 60_000 });
  const watch = (vm: string) =>
    hub.watch(
      local,
      { vm, sinceRevision: 0, appliedDigest: "", clientVersion: "" },
      { encode: () => "s", heartbeat: () => "h", write: () => undefined },
      new AbortController().signal,
    );
  return { deps, env, hub, watch, access };
}

describe("one view path for GetEnv and WatchEnv", () => {
  test("a secret whose current version is missing: FAILED_PRECONDITION naming it, on both", async () => {
    const { deps, env, hub, watch } = await setup();
    const open = watch("vm1"); // served now; the fan-out of the damage ends it
    await deps.store.mutate((head, tx) => {
      const rec = head.secrets.key;
      if (rec) tx.put("secrets", { ...rec, currentVersion: 7 });
    });
    const named = {
      code: "failed_precondition",
      message: expect.stringContaining("secret 'key' has no version 7"),
    };
    await expect(open).rejects.toMatchObject(named);
    await expect(env.getEnv(local, "vm1")).rejects.toMatchObject(named);
    await expect(watch("vm1")).rejects.toMatchObject(named);
    // vm2 does not need it: served.
    expect((await env.getEnv(local, "vm2")).vars).toEqual([]);
    hub.close();
  });

  test("the VM check is the same on every env call: unknown, missing, another VM's", async () => {
    const { env, hub, watch } = await setup();
    const vmCaller = { caller: { kind: "vm", vm: "vm1", tokenId: "x" } as const, requestId: "t" };
    await expect(env.getEnv(local, "nope")).rejects.toMatchObject({
      code: "not_found",
      field: "vm",
    });
    await expect(watch("nope")).rejects.toMatchObject({ code: "not_found", field: "vm" });
    await expect(env.getEnv(local, "")).rejects.toMatchObject({
      code: "invalid_argument",
      field: "vm",
    });
    await expect(env.getEnv(vmCaller, "vm2")).rejects.toMatchObject({
      code: "permission_denied",
      field: "vm",
    });
    await expect(
      hub.ack(vmCaller, {
        vm: "vm2",
        revision: 1,
        restartedUnits: [],
        omitted: [],
        clientVersion: "",
        error: "",
      }),
    ).rejects.toMatchObject({ code: "permission_denied", field: "vm" });
    hub.close();
  });

  test("a deleted VM's cached plan is dropped", async () => {
    const { deps, env, hub, access } = await setup();
    await env.getEnv(local, "vm1");
    await env.getEnv(local, "vm2");
    expect(env.cachedPlans()).toBe(2);
    await deps.store.mutate((_head, tx) => tx.delete("secrets", "key"));
    await access.deleteVm(local, "vm1");
    expect(env.cachedPlans()).toBe(1);
    hub.close();
  });
});
