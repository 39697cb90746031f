/**
 * `rotate --plan`: which VMs' current views take an env var from the secret (a more specific
 * scope hides it), and which of their acked units would act. Real store, hub and acks.
 */
import { describe, expect, test } from "vitest";
import { createMemoryDriver } from "../store/drivers/memory.js";
import { openStore } from "../store/store.js";
import { createAccessUseCases } from "./access.js";
import type { AckInput } from "./presence.js";
import { checkAck, MAX_ACK_UNITS } from "./presence.js";
import { createRotationPlanner, unitsActing } from "./rotation-plan.js";
import { createSecretUseCases } from "./secrets.js";
import { testDeps } from "./test-deps.js";
import { createWatchHub } from "./watch.js";

const local = { caller: { kind: "local" } as const, requestId: "t" };

async function setup() {
  const deps = await testDeps(await openStore(createMemoryDriver()));
  const access = createAccessUseCases(deps);
  const secrets = createSecretUseCases(deps);
  await access.createGroup(local, "web");
  for (const [vm, groups] of [
    ["web1", ["web"]],
    ["web2", ["web"]],
    ["db1", []],
    ["own", ["web"]],
  ] as const) {
    await access.createVm(local, vm, [...groups]);
  }
  await secrets.create(local, { name: "api", value: "v-global-1", env: "API_KEY" });
  await secrets.create(local, {
    name: "web-db",
    value: "v-web-12",
    env: "DB_URL",
    scope: "group:web",
  });
  // `own` gets API_KEY from its own secret: a rotation of `api` does not reach it.
  await secrets.create(local, {
    name: "own-api",
    value: "v-own-123",
    env: "API_KEY",
    scope: "vm:own",
  });
  const hub = createWatchHub({ ...deps, heartbeatMs: 60_000 });
  const planner = createRotationPlanner(deps, hub.presence);
  const ack = (vm: string, units?: AckInput["units"]) =>
    hub.ack(local, {
      vm,
      revision: deps.store.data.revision,
      restartedUnits: [],
      omitted: [],
      clientVersion: "t",
      error: "",
      ...(units ? { units } : {}),
    });
  return { deps, hub, planner, ack, secrets };
}

describe("planRotation", () => {
  test("the VMs whose view takes the var, their acting units, unknown maps said so", async () => {
    const { deps, hub, planner, ack } = await setup();
    await ack("web1", [
      { name: "app.service", keys: ["API_KEY"], action: "restart" },
      { name: "all.service", keys: [], action: "reload" },
      { name: "db.service", keys: ["DB_URL"], action: "restart" },
    ]);
    await ack("db1", []);
    await ack("web2"); // an ack without a unit map: still unknown
    const before = deps.store.data.revision;
    const plan = planner.plan("api");
    expect(plan.revision).toBe(before);
    expect(plan.targets).toEqual([
      { vm: "db1", env: "API_KEY", connected: false, units: [], unitMapKnown: true },
      {
        vm: "web1",
        env: "API_KEY",
        connected: false,
        units: ["all.service (reload)", "app.service (restart)"],
        unitMapKnown: true,
      },
      { vm: "web2", env: "API_KEY", connected: false, units: [], unitMapKnown: false },
    ]);
    expect(planner.plan("web-db").targets.map((t) => [t.vm, t.units])).toEqual([
      ["own", []],
      ["web1", ["all.service (reload)", "db.service (restart)"]],
      ["web2", []],
    ]);
    expect(planner.plan("own-api").targets.map((t) => t.vm)).toEqual(["own"]);
    expect(deps.store.data.revision).toBe(before);
    hub.close();
  });

  test("the last acked map wins; a bad or unknown name is refused naming `name`", async () => {
    const { planner, ack, hub } = await setup();
    await ack("web1", [{ name: "a.service", keys: ["API_KEY"], action: "restart" }]);
    await ack("web1", [{ name: "b.service", keys: ["OTHER"], action: "restart" }]);
    expect(planner.plan("api").targets.find((t) => t.vm === "web1")?.units).toEqual([]);
    expect(() => planner.plan("Nope!")).toThrow(expect.objectContaining({ field: "name" }));
    expect(() => planner.plan("missing")).toThrow(
      expect.objectContaining({ code: "not_found", field: "name" }),
    );
    hub.close();
  });

  test("unitsActing: keys listing the var, or no keys (every key)", () => {
    const units = [
      { name: "x.service", keys: ["A", "B"], action: "restart" as const },
      { name: "y.service", keys: ["C"], action: "restart" as const },
      { name: "z.service", keys: [], action: "reload" as const },
    ];
    expect(unitsActing(units, ["B"])).toEqual(["x.service (restart)", "z.service (reload)"]);
    expect(unitsActing(units, ["D"])).toEqual(["z.service (reload)"]);
  });
});

describe("checkAck: the unit map is bounded", () => {
  const base: AckInput = {
    vm: "v",
    revision: 1,
    restartedUnits: [],
    omitted: [],
    clientVersion: "",
    error: "",
  };
  const unit = (over: Partial<{ name: string; keys: string[]; action: string }> = {}) => ({
    name: "a.service",
    keys: ["A"],
    action: "restart",
    ...over,
  });

  test.each([
    ["too many units", Array.from({ length: MAX_ACK_UNITS + 1 }, () => unit())],
    [
      "too many keys",
      [unit({ keys: Array.from({ length: MAX_ACK_UNITS + 1 }, (_, i) => `K${i}`) })],
    ],
    ["a bad unit name", [unit({ name: "a b" })]],
    ["a bad key", [unit({ keys: ["not-an-env"] })]],
    ["a bad action", [unit({ action: "stop" })]],
  ])("%s: INVALID_ARGUMENT naming units", (_, units) => {
    expect(() => checkAck({ ...base, units })).toThrow(
      expect.objectContaining({ code: "invalid_argument", field: "units" }),
    );
  });

  test("at the bounds: accepted", () => {
    const keys = Array.from({ length: MAX_ACK_UNITS }, (_, i) => `K${i}`);
    expect(() =>
      checkAck({ ...base, units: Array.from({ length: MAX_ACK_UNITS }, () => unit({ keys })) }),
    ).not.toThrow();
  });
});
