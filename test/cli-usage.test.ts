/**
 * The built secretsctl for issue #13's "Usage": `usage NAME` shows which VMs hold the secret
 * (by their acks), when each last applied it, connected or not, deliveries and GetEnv reads
 * per VM and host-side reads over a window; `--window` and `--json`; bad input is one line
 * naming the flag (exit 2) or the secret (exit 3), and nothing changes.
 */
import { beforeAll, describe, expect, test } from "vitest";
import type { CliRunner } from "./helpers/cli.js";
import { cliSuite, failed, ok, value } from "./helpers/cli.js";
import type { TestDaemon } from "./helpers/daemon.js";

const suite = cliSuite("secretsctl-usage-");
let d: TestDaemon;
let cli: CliRunner;

beforeAll(async () => {
  ({ d, cli } = suite);
});

describe("usage", () => {
  test("holders, last received, connected, reads per VM and host-side reads; nothing changes", async () => {
    ok(await cli(["add", "shared", value(), "--env", "SHARED_KEY"]));
    const t1 = ok(await cli(["vm", "add", "u1"])).trim();
    const t2 = ok(await cli(["vm", "add", "u2"])).trim();
    await d.tcpClient(t1).env.ackEnv({
      revision: (await d.client.system.getStatus({})).revision,
      clientVersion: "test",
    });
    await d.tcpClient(t2).env.getEnv({});
    await d.tcpClient(t2).env.getEnv({});
    ok(await cli(["get", "shared"]));
    const rev = (await d.client.system.getStatus({})).revision;

    const rows = ok(await cli(["usage", "shared"]))
      .trimEnd()
      .split("\n");
    expect(rows[0]?.split(/\s{2,}/)).toEqual([
      "VM",
      "VERSION",
      "LAST RECEIVED",
      "CONNECTED",
      "READS (7d)",
    ]);
    expect(rows.slice(1).map((l) => l.split(/\s{2,}/))).toEqual([
      ["u1", "1", "just now", "no", "0 delivered, 0 GetEnv"],
      ["u2", "unknown", "never", "no", "0 delivered, 2 GetEnv"],
      ["host-side reads (7d): local 1"],
      ["unknown: no ack from that VM's shim since secretsd started or in the audit log"],
    ]);

    const json = JSON.parse(ok(await cli(["usage", "shared", "--window", "12h", "--json"]))) as {
      secret: string;
      windowSeconds: number;
      truncated: boolean;
      vms: { vm: string; holding: string; version: number; lastReceived: string | null }[];
      hostReaders: { actor: string; reads: number }[];
    };
    expect(json.secret).toBe("shared");
    expect(json.windowSeconds).toBe(12 * 3600);
    expect(json.truncated).toBe(false);
    expect(json.vms.map((v) => [v.vm, v.holding, v.version])).toEqual([
      ["u1", "current", 1],
      ["u2", "unknown", 0],
    ]);
    expect(Math.abs(Date.parse(json.vms[0]?.lastReceived as string) - Date.now())).toBeLessThan(
      60_000,
    );
    expect(json.vms[1]?.lastReceived).toBeNull();
    expect(json.hostReaders).toEqual([{ actor: "local", reads: 1 }]);
    expect(ok(await cli(["usage", "shared", "--window", "12h"]))).toContain("READS (12h)");
    expect(ok(await cli(["usage", "shared", "--window", "36h"]))).toContain("READS (36h)");

    // After a rotation, u1's last ack predates it: behind until it acks again.
    ok(await cli(["rotate", "shared", value()]));
    const behind = ok(await cli(["usage", "shared"]));
    expect(behind).toMatch(/^u1\s+behind\s+/m);
    // usage itself changed nothing and read nothing.
    const now = (await d.client.system.getStatus({})).revision;
    ok(await cli(["usage", "shared"]));
    expect((await d.client.system.getStatus({})).revision).toBe(now);
    expect(now).toBeGreaterThan(rev);
    const reads = await d.client.system.listAuditEvents({
      secret: "shared",
      action: "secret.read",
    });
    expect(reads.events).toHaveLength(1);
  });

  test("bad --window: a usage error naming it; an unknown secret names it", async () => {
    for (const bad of ["0d", "31d", "7", "week", "-1h", ""]) {
      failed(await cli(["usage", "shared", "--window", bad]), 2, "--window must be");
    }
    failed(await cli(["usage", "missing"]), 3, "missing");
  });
});
