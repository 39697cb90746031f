import { chmod, mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, test } from "vitest";
import { createClient } from "../client/index.js";
import { HealthCheckResponse_ServingStatus } from "../proto/gen/grpc/health/v1/health_pb.js";
import { createSnapshotJournalDriver } from "../server/store/drivers/snapshot-journal.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon, storeOnDisk } from "./helpers/daemon.js";
import { spawnDaemon } from "./helpers/process.js";
import { secretValue, testRoot } from "./helpers/values.js";

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
async function daemon(dataDir?: string): Promise<TestDaemon> {
  const d = await startDaemon(dataDir ? { dataDir } : {});
  cleanup.push(() => d.dispose());
  return d;
}
const tmp = () => mkdtemp(join(testRoot() ?? tmpdir(), "vm-auth-daemon-"));

describe("secretsd daemon", () => {
  test("data dir 0700, master key, store and journal 0600, socket 0600", async () => {
    const d = await daemon();
    const mode = async (p: string) => (await stat(p)).mode & 0o777;
    expect(await mode(d.dataDir)).toBe(0o700);
    expect(await mode(join(d.dataDir, "master.key"))).toBe(0o600);
    await d.client.secrets.createSecret({ name: "a", value: secretValue() });
    expect(await mode(join(d.dataDir, "store.json"))).toBe(0o600);
    await d.client.secrets.createSecret({ name: "b", value: secretValue() });
    expect(await mode(join(d.dataDir, "store.json.wal"))).toBe(0o600);
    expect(await mode(d.socket)).toBe(0o600);
    expect(await mode(join(d.dataDir, "audit.log"))).toBe(0o600);
  });

  test("values survive a restart; the store holds only ciphertext", async () => {
    const d = await daemon();
    const v = secretValue();
    await d.client.secrets.createSecret({ name: "openai", value: v });
    const vm = await d.client.access.createVm({ name: "vm1" });
    expect(await storeOnDisk(d.dataDir)).not.toContain(v);
    await d.restart();
    expect((await d.client.secrets.getSecretValue({ name: "openai" })).value).toBe(v);
    expect((await d.tcpClient(vm.token).env.getEnv({})).snapshot?.vars[0]?.value).toBe(v);
    expect(await storeOnDisk(d.dataDir)).not.toContain(v);
  });

  test("rekey replaces the master key without losing a value, across a restart", async () => {
    const d = await daemon();
    const v = secretValue();
    await d.client.secrets.createSecret({ name: "openai", value: v });
    const oldKey = await readFile(join(d.dataDir, "master.key"), "utf8");
    const before = (await d.client.system.getStatus({})).masterKeyId;
    const r = await d.client.system.rotateMasterKey({});
    expect(r.masterKeyId).not.toBe(before);
    const newKey = await readFile(join(d.dataDir, "master.key"), "utf8");
    expect(newKey).not.toBe(oldKey);
    expect((await d.client.secrets.getSecretValue({ name: "openai" })).value).toBe(v);
    await d.restart();
    expect((await d.client.system.getStatus({})).masterKeyId).toBe(r.masterKeyId);
    expect((await d.client.secrets.getSecretValue({ name: "openai" })).value).toBe(v);
    // The old key no longer opens the store.
    await d.stop();
    await writeFile(join(d.dataDir, "master.key"), oldKey, { mode: 0o600 });
    await expect(d.restart()).rejects.toThrow(/does not match/);
    await writeFile(join(d.dataDir, "master.key"), newKey, { mode: 0o600 });
    await d.restart();
  });

  test("kill -9 right after a rekey: the journal alone brings back the new keyring", async () => {
    const dir = await tmp();
    const p = await spawnDaemon(dir, ["--listen", "off"]);
    const c = createClient({ socket: join(dir, "secretsd.sock") });
    const v = secretValue();
    await c.secrets.createSecret({ name: "openai", value: v });
    const r = await c.system.rotateMasterKey({});
    await c.secrets.createSecret({ name: "after", value: v });
    // No clean shutdown, so no snapshot: the keyring change is only in store.json.wal.
    expect(await readFile(join(dir, "store.json.wal"), "utf8")).toContain(r.masterKeyId);
    p.child.kill("SIGKILL");
    await p.exited;
    c.close();
    const d = await daemon(dir);
    expect((await d.client.system.getStatus({})).masterKeyId).toBe(r.masterKeyId);
    expect((await d.client.secrets.getSecretValue({ name: "openai" })).value).toBe(v);
    expect((await d.client.secrets.getSecretValue({ name: "after" })).value).toBe(v);
  });

  test("an interrupted rekey is finished or discarded on start", async () => {
    const d = await daemon();
    const v = secretValue();
    await d.client.secrets.createSecret({ name: "k", value: v });
    await d.stop();
    // Crash after staging the new key, before the store commit: the stale file is discarded.
    await writeFile(
      join(d.dataDir, "master.key.new"),
      `${Buffer.alloc(32, 7).toString("base64")}\n`,
      {
        mode: 0o600,
      },
    );
    await d.restart();
    expect((await d.client.secrets.getSecretValue({ name: "k" })).value).toBe(v);
    await expect(stat(join(d.dataDir, "master.key.new"))).rejects.toThrow();
  });

  test("refuses a master key readable by group or others", async () => {
    const d = await daemon();
    await d.stop();
    await chmod(join(d.dataDir, "master.key"), 0o640);
    await expect(d.restart()).rejects.toThrow(/readable by group or others/);
    await chmod(join(d.dataDir, "master.key"), 0o600);
    await d.restart();
  });

  test("a second secretsd on the same data dir exits with a clear message", async () => {
    const dir = await tmp();
    const first = await spawnDaemon(dir, ["--listen", "127.0.0.1:0"]);
    cleanup.push(async () => {
      first.child.kill("SIGTERM");
      await first.exited;
    });
    await expect(spawnDaemon(dir, ["--listen", "127.0.0.1:0"])).rejects.toThrow(
      new RegExp(`another secretsd \\(pid ${first.child.pid}\\) is already running on data dir`),
    );
  });

  test("kill -9 during a burst of writes: every acknowledged write survives", async () => {
    const dir = await tmp();
    const p = await spawnDaemon(dir, ["--listen", "off"]);
    const c = createClient({ socket: join(dir, "secretsd.sock") });
    const acked: string[] = [];
    let stop = false;
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; !stop; i++) {
        const name = `s${w}-${i}`;
        try {
          await c.secrets.createSecret({ name, value: secretValue() });
          acked.push(name);
        } catch {
          return;
        }
      }
    });
    await new Promise((r) => setTimeout(r, 400));
    p.child.kill("SIGKILL");
    stop = true;
    await Promise.all(writers);
    await p.exited;
    c.close();
    expect(acked.length).toBeGreaterThan(20);
    const d = await daemon(dir);
    const names = new Set((await d.client.secrets.listSecrets({})).secrets.map((s) => s.name));
    for (const n of acked) expect(names.has(n)).toBe(true);
  });

  test("a ciphertext moved to another slot fails to decrypt, naming the secret", async () => {
    const d = await daemon();
    const a = secretValue();
    await d.client.secrets.createSecret({ name: "a", value: a });
    await d.client.secrets.createSecret({ name: "b", value: secretValue() });
    await d.stop();
    // Moved, and the store re-sealed around it: the file's own checks pass, the AAD does not.
    const file = join(d.dataDir, "store.json");
    const data = await createSnapshotJournalDriver({ file }).load();
    const [va, vb] = [data?.secrets.a?.versions[0], data?.secrets.b?.versions[0]];
    if (!data || !va || !vb) throw new Error("secrets a and b missing from the store");
    vb.ciphertext = va.ciphertext;
    await createSnapshotJournalDriver({ file }).replace(data);
    await d.restart();
    await expect(d.client.secrets.getSecretValue({ name: "b" })).rejects.toMatchObject({
      code: "failed_precondition",
      message: expect.stringContaining("secret 'b' version 1 is damaged"),
    });
    expect((await d.client.secrets.getSecretValue({ name: "a" })).value).toBe(a);
  });

  test("health is SERVING, reflection lists the API", async () => {
    const d = await daemon();
    const anon = d.tcpClient();
    expect((await anon.health.check({ service: "" })).status).toBe(
      HealthCheckResponse_ServingStatus.SERVING,
    );
    expect((await anon.health.check({ service: "vmauth.v1.SecretService" })).status).toBe(
      HealthCheckResponse_ServingStatus.SERVING,
    );
    const { listServicesViaReflection } = await import("./helpers/reflection.js");
    const services = await listServicesViaReflection(d.tcp);
    expect(services).toEqual(
      expect.arrayContaining([
        "vmauth.v1.SecretService",
        "vmauth.v1.EnvService",
        "vmauth.v1.AccessService",
        "vmauth.v1.SystemService",
        "grpc.health.v1.Health",
      ]),
    );
  });

  test("SIGTERM: health turns NOT_SERVING, an in-flight call finishes, the process exits 0", async () => {
    const dir = await tmp();
    const p = await spawnDaemon(dir, ["--listen", "127.0.0.1:0"]);
    const c = createClient({ server: p.tcp ?? "" });
    const local = createClient({ socket: join(dir, "secretsd.sock") });
    cleanup.push(async () => {
      c.close();
      local.close();
    });
    const statuses: number[] = [];
    const watching = (async () => {
      try {
        for await (const m of c.health.watch({ service: "" })) statuses.push(m.status);
      } catch {}
    })();
    await local.system.getStatus({});
    // Calls sent before SIGTERM: every one finishes and is acknowledged.
    const names = Array.from({ length: 40 }, (_, i) => `late-${i}`);
    const inflight = names.map((name) =>
      local.secrets.createSecret({ name, value: secretValue() }),
    );
    await Promise.race(inflight);
    p.child.kill("SIGTERM");
    const results = await Promise.allSettled(inflight);
    expect(results.filter((r) => r.status === "rejected")).toEqual([]);
    const exit = await p.exited;
    expect(exit.code).toBe(0);
    await watching;
    expect(statuses[0]).toBe(HealthCheckResponse_ServingStatus.SERVING);
    expect(statuses).toContain(HealthCheckResponse_ServingStatus.NOT_SERVING);
    const d = await daemon(dir);
    const stored = new Set((await d.client.secrets.listSecrets({})).secrets.map((x) => x.name));
    for (const n of names) expect(stored.has(n)).toBe(true);
  });
});
