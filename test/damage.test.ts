/**
 * A damaged ciphertext with VMs connected (issue #8, the corruption table's last row): the
 * damage is one the files' own checks cannot see (the store re-sealed around it, as a bug or a
 * memory error would leave it), so secretsd starts, names the secret (log, status, vm list),
 * fails exactly the reads and views that need it with FAILED_PRECONDITION naming it, keeps
 * serving everything else, and never crashes, even when the secret moves into the view of a
 * VM whose stream is open. A rotation heals it; `--repair` drops the damaged version.
 */
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createSnapshotJournalDriver } from "../server/store/drivers/snapshot-journal.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon } from "./helpers/daemon.js";
import { secretValue } from "./helpers/values.js";
import { openWatch } from "./helpers/watch.js";

let d: TestDaemon;
let tokens: Record<string, string> = {};
const values: Record<string, string> = {};

beforeAll(async () => {
  d = await startDaemon({ heartbeatMs: 200 });
  const c = d.client;
  await c.access.createGroup({ name: "g" });
  tokens = {
    a: (await c.access.createVm({ name: "va", groups: ["g"] })).token,
    b: (await c.access.createVm({ name: "vb" })).token,
  };
  for (const [name, scope] of [
    ["shared", "global"],
    ["gkey", "group:g"],
    ["bkey", "vm:vb"],
  ] as const) {
    values[name] = secretValue(name);
    await c.secrets.createSecret({ name, scope, value: values[name] });
  }
  await d.stop();
  // Damage gkey@1 and re-seal the store around it: every file check passes.
  const file = `${d.dataDir}/store.json`;
  const data = await createSnapshotJournalDriver({ file }).load();
  const v = data?.secrets.gkey?.versions[0];
  if (!data || !v) throw new Error("no gkey in the store");
  const at = v.ciphertext.length - 10;
  v.ciphertext = `${v.ciphertext.slice(0, at)}${v.ciphertext[at] === "A" ? "B" : "A"}${v.ciphertext.slice(at + 1)}`;
  await createSnapshotJournalDriver({ file }).replace(data);
  await d.restart();
});
afterAll(async () => {
  await d.dispose();
});

describe("a damaged ciphertext is named, fails only what needs it, and never crashes", () => {
  test("named at start in the log, status and vm list; never a value", async () => {
    const log = d.logs.join("");
    expect(log).toMatch(/damaged secret.*"secret":"gkey".*"version":1/);
    for (const v of Object.values(values)) expect(log).not.toContain(v);
    const status = await d.client.system.getStatus({});
    expect(status.damagedSecrets).toEqual(["gkey@1"]);
    const vms = Object.fromEntries(
      (await d.client.access.listVms({})).vms.map((v) => [v.name, v.damagedSecrets]),
    );
    expect(vms).toEqual({ va: ["gkey"], vb: [] });
  });

  test("reads and views that need it fail with FAILED_PRECONDITION naming it; the rest work", async () => {
    const named = { code: "failed_precondition", message: expect.stringContaining("'gkey'") };
    await expect(d.client.secrets.getSecretValue({ name: "gkey" })).rejects.toMatchObject(named);
    await expect(d.tcpClient(tokens.a).env.getEnv({})).rejects.toMatchObject(named);
    const wa = openWatch(d.tcpClient(tokens.a));
    expect(await wa.done).toMatchObject(named);
    const b = await d.tcpClient(tokens.b).env.getEnv({});
    expect(b.snapshot?.vars.map((v) => v.name).sort()).toEqual(["BKEY", "SHARED"]);
    expect((await d.client.secrets.getSecretValue({ name: "shared" })).value).toBe(values.shared);
  });

  test("moved into a connected VM's view: that stream ends naming it, others go on", async () => {
    const wb = openWatch(d.tcpClient(tokens.b));
    await wb.until(() => wb.snapshots().length === 1);
    await d.client.secrets.updateSecret({ name: "gkey", scope: "vm:vb" });
    expect(await wb.done).toMatchObject({
      code: "failed_precondition",
      message: expect.stringContaining("'gkey'"),
    });
    // va no longer needs it: its view works again, and a rotation reaches it.
    const wa = openWatch(d.tcpClient(tokens.a));
    await wa.until(() => wa.snapshots().length === 1);
    const shared = secretValue("shared");
    const r = await d.client.secrets.rotateSecret({ name: "shared", value: shared });
    await wa.until(() => wa.snapshots().at(-1)?.revision === r.revision);
    expect((await d.client.system.getStatus({})).revision).toBe(r.revision);
    wa.cancel();
  });

  test("a rotation heals the view; --repair drops the damaged version and says so", async () => {
    const healed = secretValue("gkey");
    await d.client.secrets.rotateSecret({ name: "gkey", value: healed });
    const b = await d.tcpClient(tokens.b).env.getEnv({});
    expect(b.snapshot?.vars.find((v) => v.name === "GKEY")?.value).toBe(healed);
    expect(
      (await d.client.access.listVms({})).vms.every((v) => v.damagedSecrets.length === 0),
    ).toBe(true);
    // Version 1 is still stored, and still damaged.
    expect((await d.client.system.getStatus({})).damagedSecrets).toEqual(["gkey@1"]);

    await d.stop();
    const repaired = await startDaemon({ dataDir: d.dataDir, server: { repair: true } });
    try {
      const log = repaired.logs.join("");
      expect(log).toMatch(/dropped damaged secret versions.*"secret":"gkey".*"versions":\[1\]/);
      expect((await repaired.client.system.getStatus({})).damagedSecrets).toEqual([]);
      const versions = await repaired.client.secrets.listSecretVersions({ name: "gkey" });
      expect(versions.versions.map((v) => v.version)).toEqual([2]);
      expect((await repaired.client.secrets.getSecretValue({ name: "gkey" })).value).toBe(healed);
    } finally {
      await repaired.stop();
    }
    await d.restart();
  });
});
