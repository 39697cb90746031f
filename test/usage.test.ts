/**
 * Issue #13, "Usage", over real gRPC: GetSecretUsage lists the VMs whose view takes the secret
 * (not one where a more specific scope gives its env var), what each holds by its acks (the
 * current version, behind after a rotation until it acks, unknown when it never acked), when
 * it last applied it, connected or not, and deliveries and reads per VM and host-side reads
 * per actor over a window; after a restart the acks still come from the audit log. It reads
 * no value and changes nothing; bad input names the field.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { VmAuthClient } from "../client/index.js";
import { type GetSecretUsageResponse, SecretHolding } from "../proto/gen/vmauth/v1/secrets_pb.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon, storeOnDisk } from "./helpers/daemon.js";
import { secretValue } from "./helpers/values.js";
import { openWatch, type TestWatch } from "./helpers/watch.js";

let d: TestDaemon;
const tokens: Record<string, string> = {};
const watches: TestWatch[] = [];
const values: string[] = [];

beforeAll(async () => {
  d = await startDaemon({ heartbeatMs: 500 });
  const a = d.client.access;
  await a.createGroup({ name: "web" });
  for (const [name, groups] of [
    ["web1", ["web"]],
    ["solo", []],
    ["over", ["web"]],
  ] as const) {
    tokens[name] = (await a.createVm({ name, groups: [...groups] })).token;
  }
  const s = d.client.secrets;
  values.push(secretValue(), secretValue(), secretValue());
  await s.createSecret({ name: "api", env: "API_KEY", value: values[0] as string });
  // `over` takes API_KEY from its own secret: it does not hold `api`.
  await s.createSecret({
    name: "over-api",
    env: "API_KEY",
    scope: "vm:over",
    value: values[1] as string,
  });
  await s.createSecret({
    name: "web-db",
    env: "DB_URL",
    scope: "group:web",
    value: values[2] as string,
  });
});

afterAll(async () => {
  for (const w of watches) w.cancel();
  await d?.dispose();
});

function vmClient(vm: string): VmAuthClient {
  return d.tcpClient(tokens[vm]);
}

async function ack(vm: string) {
  const revision = (await d.client.system.getStatus({})).revision;
  await vmClient(vm).env.ackEnv({ revision, clientVersion: "test" });
}

/** The answer as plain rows, times left out (checked on their own). */
function rows(u: GetSecretUsageResponse) {
  return u.vms.map((v) => ({
    vm: v.vm,
    env: v.env,
    holding: SecretHolding[v.holding],
    version: v.version,
    received: v.lastReceived !== undefined,
    connected: v.connected,
    deliveries: v.deliveries,
    reads: v.reads,
  }));
}

describe("GetSecretUsage", () => {
  test("holders by their acks, last received, connected, deliveries and reads; nothing changes", async () => {
    const w = openWatch(vmClient("web1"));
    watches.push(w);
    await w.until(() => w.snapshots().length > 0);
    const before = Date.now();
    await ack("web1");
    const after = Date.now();
    for (let i = 0; i < 3; i++) await vmClient("solo").env.getEnv({});
    await d.client.secrets.getSecretValue({ name: "api" });
    await d.client.secrets.getSecretValue({ name: "api" });
    await d.client.secrets.getSecretValue({ name: "web-db" }); // another secret: not counted

    const rev = (await d.client.system.getStatus({})).revision;
    const disk = await storeOnDisk(d.dataDir);
    const audited = (await d.client.system.listAuditEvents({ limit: 10000 })).events.length;
    const u = await d.client.secrets.getSecretUsage({ name: "api" });
    expect(u.revision).toBe(rev);
    expect(u.windowSeconds).toBe(7 * 86400);
    expect(u.truncated).toBe(false);
    expect(rows(u)).toEqual([
      {
        vm: "solo",
        env: "API_KEY",
        holding: "UNSPECIFIED",
        version: 0,
        received: false,
        connected: false,
        deliveries: 0,
        reads: 3,
      },
      {
        vm: "web1",
        env: "API_KEY",
        holding: "CURRENT",
        version: 1,
        received: true,
        connected: true,
        deliveries: 1,
        reads: 0,
      },
    ]);
    const at = timestampDate(u.vms[1]?.lastReceived ?? ({} as never)).getTime();
    expect(at).toBeGreaterThanOrEqual(before - 5);
    expect(at).toBeLessThanOrEqual(after + 5);
    expect(u.hostReaders.map((r) => ({ actor: r.actor, reads: r.reads }))).toEqual([
      { actor: "local", reads: 2 },
    ]);
    // A group-scoped secret: its group's VMs, `over` included (it takes DB_URL from it).
    const group = await d.client.secrets.getSecretUsage({ name: "web-db" });
    expect(group.vms.map((v) => v.vm)).toEqual(["over", "web1"]);
    // Nothing changed, nothing was audited, no value in the answer.
    expect((await d.client.system.getStatus({})).revision).toBe(rev);
    expect(await storeOnDisk(d.dataDir)).toBe(disk);
    expect((await d.client.system.listAuditEvents({ limit: 10000 })).events).toHaveLength(audited);
    const text = JSON.stringify(u, (_k, v) => (typeof v === "bigint" ? String(v) : v));
    for (const v of values) expect(text).not.toContain(v);
  });

  test("after a rotation: behind until the VM acks, then the new version", async () => {
    const w = watches[0] as TestWatch;
    const frames = w.frames.length;
    await d.client.secrets.rotateSecret({ name: "api", value: secretValue() });
    await w.until(() => w.frames.some((f, i) => i >= frames && f.event.case !== "heartbeat"));
    const behind = await d.client.secrets.getSecretUsage({ name: "api" });
    const web1 = () => behind.vms.find((v) => v.vm === "web1");
    expect(web1()?.holding).toBe(SecretHolding.BEHIND);
    expect(web1()?.version).toBe(0);
    await ack("web1");
    const now = await d.client.secrets.getSecretUsage({ name: "api" });
    expect(now.vms.find((v) => v.vm === "web1")).toMatchObject({
      holding: SecretHolding.CURRENT,
      version: 2,
    });
    // A fan-out's deliveries are audited in a batch just after they are sent.
    await expect
      .poll(async () => {
        const u = await d.client.secrets.getSecretUsage({ name: "api" });
        return u.vms.find((v) => v.vm === "web1")?.deliveries;
      })
      .toBe(2);
  });

  test("the window: counts only what is inside it", async () => {
    await sleep(1100);
    const u = await d.client.secrets.getSecretUsage({ name: "api", windowSeconds: 1 });
    expect(u.windowSeconds).toBe(1);
    expect(u.vms.map((v) => [v.vm, v.deliveries, v.reads])).toEqual([
      ["solo", 0, 0],
      ["web1", 0, 0],
    ]);
    expect(u.hostReaders).toEqual([]);
    // The holding does not depend on the window.
    expect(u.vms.find((v) => v.vm === "web1")?.holding).toBe(SecretHolding.CURRENT);
  });

  test("bad input: window_seconds over 30 days, a bad or unknown name", async () => {
    await expect(
      d.client.secrets.getSecretUsage({ name: "api", windowSeconds: 30 * 86400 + 1 }),
    ).rejects.toMatchObject({ code: "invalid_argument", field: "window_seconds" });
    await expect(d.client.secrets.getSecretUsage({ name: "Bad Name" })).rejects.toMatchObject({
      code: "invalid_argument",
      field: "name",
    });
    await expect(d.client.secrets.getSecretUsage({ name: "nope" })).rejects.toMatchObject({
      code: "not_found",
      field: "name",
    });
  });

  test("after a restart: what a VM holds still comes from the acks in the audit log", async () => {
    for (const w of watches.splice(0)) w.cancel();
    await d.restart();
    const u = await d.client.secrets.getSecretUsage({ name: "api" });
    expect(u.vms.map((v) => [v.vm, SecretHolding[v.holding], v.version, v.connected])).toEqual([
      ["solo", "UNSPECIFIED", 0, false],
      ["web1", "CURRENT", 2, false],
    ]);
  });
});
