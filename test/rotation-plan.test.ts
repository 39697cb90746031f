/**
 * Issue #11, rotation policies and expiry, over real gRPC:
 * - PlanRotation lists the VMs whose current view takes the secret's env var (not one where a
 *   more specific scope gives it), connected or not, with the units their acked unit maps say
 *   would act (from AckEnv sent by VM tokens, and from the BUILT shim), and changes nothing;
 * - a static secret's expires_at: shown by status, warned about once (one log line, one audit
 *   entry) within the window and once at expiry, and bad input refused naming the field.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { VmAuthClient } from "../client/index.js";
import type { RotationTarget } from "../proto/gen/vmauth/v1/secrets_pb.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon, storeOnDisk } from "./helpers/daemon.js";
import { secretValue, testRoot } from "./helpers/values.js";
import { openWatch, type TestWatch } from "./helpers/watch.js";

const SHIM = resolve(import.meta.dirname, "../dist/shim.cjs");
const DAY = 86_400_000;
/** The test daemon's warning window (SECRETSD_EXPIRY_WARNING_MS): one day. */
const WARN_MS = DAY;

let d: TestDaemon;
const tokens: Record<string, string> = {};
const watches: TestWatch[] = [];
let shim: ChildProcess | undefined;
const outRoot = mkdtempSync(join(tmpdir(), "vm-auth-plan-out-"));

beforeAll(async () => {
  d = await startDaemon({ heartbeatMs: 500, server: { expiryWarningMs: WARN_MS } });
  const a = d.client.access;
  await a.createGroup({ name: "web" });
  for (const [name, groups] of [
    ["web1", ["web"]],
    ["web2", ["web"]],
    ["solo", []],
    ["over", ["web"]],
    ["built", ["web"]],
  ] as const) {
    tokens[name] = (await a.createVm({ name, groups: [...groups] })).token;
  }
  const s = d.client.secrets;
  await s.createSecret({ name: "api", env: "API_KEY", value: secretValue() });
  await s.createSecret({ name: "web-db", env: "DB_URL", scope: "group:web", value: secretValue() });
  // `over` takes API_KEY from its own secret: a rotation of `api` never reaches it.
  await s.createSecret({
    name: "over-api",
    env: "API_KEY",
    scope: "vm:over",
    value: secretValue(),
  });
});

afterAll(async () => {
  for (const w of watches) w.cancel();
  if (shim && shim.exitCode === null) {
    const exited = new Promise((r) => shim?.once("exit", r));
    shim.kill("SIGTERM");
    await exited;
  }
  await d?.dispose();
  rmSync(outRoot, { recursive: true, force: true });
});

/** A VM token's client: it watches and acks as a shim would. */
function vmClient(vm: string): VmAuthClient {
  return d.tcpClient(tokens[vm]);
}

/** A RotationTarget as a plain object. */
function plain(t: RotationTarget) {
  const { vm, env, connected, unitMapKnown } = t;
  return { vm, env, connected, units: [...t.units], unitMapKnown };
}

async function ack(vm: string, units?: { name: string; keys: string[]; action: string }[]) {
  const revision = (await d.client.system.getStatus({})).revision;
  await vmClient(vm).env.ackEnv({
    revision,
    clientVersion: "test",
    ...(units ? { units, unitsReported: true } : {}),
  });
}

describe("PlanRotation", () => {
  test("the VMs that see the change and the units that would act; nothing changes", async () => {
    const w = openWatch(vmClient("web1"));
    watches.push(w);
    await w.until(() => w.snapshots().length > 0);
    await ack("web1", [
      { name: "app.service", keys: ["API_KEY"], action: "restart" },
      { name: "db.service", keys: ["DB_URL"], action: "restart" },
      { name: "all.service", keys: [], action: "reload" },
    ]);
    await ack("web2", [{ name: "worker.service", keys: ["API_KEY", "DB_URL"], action: "reload" }]);
    await ack("over", [{ name: "app.service", keys: [], action: "restart" }]);
    // `solo` and `built` never acked a unit map (an ack without one leaves it unknown).
    await ack("solo");

    const rev = (await d.client.system.getStatus({})).revision;
    const disk = await storeOnDisk(d.dataDir);
    const reads = await d.client.system.listAuditEvents({ action: "secret.read", limit: 1000 });
    const plan = await d.client.secrets.planRotation({ name: "api" });
    expect(plan.revision).toBe(rev);
    expect(plan.vms.map(plain)).toEqual([
      { vm: "built", env: "API_KEY", connected: false, units: [], unitMapKnown: false },
      { vm: "solo", env: "API_KEY", connected: false, units: [], unitMapKnown: false },
      {
        vm: "web1",
        env: "API_KEY",
        connected: true,
        units: ["all.service (reload)", "app.service (restart)"],
        unitMapKnown: true,
      },
      {
        vm: "web2",
        env: "API_KEY",
        connected: false,
        units: ["worker.service (reload)"],
        unitMapKnown: true,
      },
    ]);
    const group = await d.client.secrets.planRotation({ name: "web-db" });
    expect(group.vms.map((t) => [t.vm, [...t.units]])).toEqual([
      ["built", []],
      ["over", ["app.service (restart)"]],
      ["web1", ["all.service (reload)", "db.service (restart)"]],
      ["web2", ["worker.service (reload)"]],
    ]);
    // Nothing changed, nothing was read.
    expect((await d.client.system.getStatus({})).revision).toBe(rev);
    expect(await storeOnDisk(d.dataDir)).toBe(disk);
    const after = await d.client.system.listAuditEvents({ action: "secret.read", limit: 1000 });
    expect(after.events).toHaveLength(reads.events.length);
    const api = (await d.client.secrets.listSecrets({})).secrets.find((s) => s.name === "api");
    expect(api?.currentVersion).toBe(1);
  });

  test("bad input: INVALID_ARGUMENT or NOT_FOUND naming `name`; an oversized unit map naming `units`", async () => {
    await expect(d.client.secrets.planRotation({ name: "Bad Name" })).rejects.toMatchObject({
      code: "invalid_argument",
      field: "name",
    });
    await expect(d.client.secrets.planRotation({ name: "" })).rejects.toMatchObject({
      code: "invalid_argument",
      field: "name",
    });
    await expect(d.client.secrets.planRotation({ name: "nope" })).rejects.toMatchObject({
      code: "not_found",
      field: "name",
    });
    const many = Array.from({ length: 257 }, (_, i) => ({
      name: `u${i}.service`,
      keys: ["A"],
      action: "restart",
    }));
    await expect(ack("web2", many)).rejects.toMatchObject({
      code: "invalid_argument",
      field: "units",
    });
    await expect(
      ack("web2", [{ name: "x.service", keys: ["A"], action: "stop" }]),
    ).rejects.toMatchObject({ code: "invalid_argument", field: "units" });
    // The refused acks changed nothing: web2's last good map still stands.
    const plan = await d.client.secrets.planRotation({ name: "api" });
    expect(plan.vms.find((t) => t.vm === "web2")?.units).toEqual(["worker.service (reload)"]);
  });

  test("the built shim acks its configured unit map", async () => {
    if (!existsSync(SHIM)) throw new Error(`${SHIM} is missing: run \`node scripts/build.mjs\``);
    const out = join(outRoot, "built");
    const kept = join(testRoot() ?? outRoot, "shim-plan-built");
    mkdirSync(out, { recursive: true });
    mkdirSync(kept, { recursive: true });
    const sysctl = join(out, "systemctl");
    writeFileSync(sysctl, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
    writeFileSync(join(out, "token"), `${tokens.built}\n`, { mode: 0o600 });
    const config = join(out, "shim.json");
    writeFileSync(
      config,
      JSON.stringify({
        server: d.tcp,
        tokenFile: join(out, "token"),
        environmentDFile: join(out, "env.d/vm-auth.conf"),
        unitEnvFile: join(out, "run/env"),
        lastKnownGoodFile: join(out, "lkg.env"),
        stateFile: join(kept, "state.json"),
        statusFile: join(kept, "status.json"),
        units: [
          { name: "app", keys: ["API_KEY"] },
          { name: "db.service", keys: ["DB_URL"], action: "reload" },
          { name: "everything.service" },
        ],
        debounceMs: 10,
        heartbeatMs: 500,
        systemctl: sysctl,
      }),
    );
    shim = spawn(process.execPath, [SHIM, "run", "--config", config], {
      stdio: ["ignore", "ignore", "ignore"],
    });
    const known = async () =>
      (await d.client.secrets.planRotation({ name: "api" })).vms.find((t) => t.vm === "built");
    await expect.poll(async () => (await known())?.unitMapKnown, { timeout: 10_000 }).toBe(true);
    const t = await known();
    expect(t?.connected).toBe(true);
    expect([...(t?.units ?? [])]).toEqual([
      "app.service (restart)",
      "everything.service (restart)",
    ]);
    const db = await d.client.secrets.planRotation({ name: "web-db" });
    expect([...(db.vms.find((v) => v.vm === "built")?.units ?? [])]).toEqual([
      "db.service (reload)",
      "everything.service (restart)",
    ]);
    expect(readFileSync(join(kept, "status.json"), "utf8")).toContain('"connection"');
  });
});

describe("expires_at", () => {
  const audit = async (secret: string) =>
    (await d.client.system.listAuditEvents({ secret, limit: 1000 })).events
      .filter((e) => e.action === "secret.expiring" || e.action === "secret.expired")
      .map((e) => [e.action, e.actor, e.result]);
  const logLines = (secret: string, msg: string) =>
    d.logs.filter((l) => l.includes(`"msg":"${msg}"`) && l.includes(`"secret":"${secret}"`));

  test("within the window: in status, one log line, one audit entry; far off: neither", async () => {
    const soon = timestampFromMs(Date.now() + WARN_MS / 2);
    const created = await d.client.secrets.createSecret({
      name: "soon",
      value: secretValue(),
      expiresAt: soon,
    });
    expect(created.secret?.expiresAt).toEqual(soon);
    await d.client.secrets.createSecret({
      name: "later",
      value: secretValue(),
      expiresAt: timestampFromMs(Date.now() + 30 * DAY),
    });
    await expect.poll(() => audit("soon")).toEqual([["secret.expiring", "system:expiry", "ok"]]);
    const status = await d.client.system.getStatus({});
    expect(status.expiringSecrets).toEqual([expect.stringMatching(/^soon: expires in 1[12]h \(/)]);
    // Another commit re-checks; still one of each.
    await d.client.secrets.updateSecret({ name: "soon", description: "touched" });
    await new Promise((r) => setTimeout(r, 200));
    expect(await audit("soon")).toHaveLength(1);
    expect(logLines("soon", "secret expiring")).toHaveLength(1);
    expect(await audit("later")).toEqual([]);
    const listed = (await d.client.secrets.listSecrets({})).secrets.find((s) => s.name === "later");
    expect(listed?.expiresAt).toBeDefined();
  });

  test("at expiry: reported once more as expired; an expiry set in the past by update too", async () => {
    await d.client.secrets.createSecret({
      name: "brief",
      value: secretValue(),
      expiresAt: timestampFromMs(Date.now() + 600),
    });
    await expect
      .poll(() => audit("brief"), { timeout: 5000 })
      .toEqual([
        ["secret.expiring", "system:expiry", "ok"],
        ["secret.expired", "system:expiry", "ok"],
      ]);
    expect(logLines("brief", "secret expired")).toHaveLength(1);
    await d.client.secrets.createSecret({ name: "dead", value: secretValue() });
    await d.client.secrets.updateSecret({
      name: "dead",
      expiresAt: timestampFromMs(Date.now() - 2 * 3_600_000),
    });
    await expect.poll(() => audit("dead")).toEqual([["secret.expired", "system:expiry", "ok"]]);
    const status = await d.client.system.getStatus({});
    expect(status.expiringSecrets.slice(0, 2)).toEqual([
      expect.stringMatching(/^dead: expired 2h ago \(/),
      expect.stringMatching(/^brief: expired \d+s ago \(/),
    ]);
    // Removed: no longer listed, and the secret's metadata has no expiry.
    const cleared = await d.client.secrets.updateSecret({ name: "dead", clearExpiresAt: true });
    expect(cleared.secret?.expiresAt).toBeUndefined();
    const after = await d.client.system.getStatus({});
    expect(after.expiringSecrets.some((e) => e.startsWith("dead:"))).toBe(false);
  });

  test("bad expires_at: INVALID_ARGUMENT naming the field, nothing changed", async () => {
    const rev = (await d.client.system.getStatus({})).revision;
    const s = d.client.secrets;
    const v = secretValue();
    for (const call of [
      () => s.createSecret({ name: "p1", value: v, expiresAt: timestampFromMs(Date.now() - DAY) }),
      () => s.createSecret({ name: "p2", value: v, expiresAt: { seconds: 1n, nanos: -1 } }),
      () => s.createSecret({ name: "p3", value: v, expiresAt: { seconds: 300_000_000_000n } }),
      () => s.updateSecret({ name: "api", expiresAt: { seconds: -5n } }),
      () => s.rotateSecret({ name: "api", value: v, expiresAt: timestampFromMs(Date.now() - 1) }),
    ]) {
      await expect(call()).rejects.toMatchObject({
        code: "invalid_argument",
        field: "expires_at",
        message: expect.stringMatching(/^expires_at: /),
      });
    }
    await expect(
      s.updateSecret({
        name: "api",
        expiresAt: timestampFromMs(Date.now() + DAY),
        clearExpiresAt: true,
      }),
    ).rejects.toMatchObject({ code: "invalid_argument", field: "clear_expires_at" });
    expect((await d.client.system.getStatus({})).revision).toBe(rev);
  });
});
