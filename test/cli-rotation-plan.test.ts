/**
 * The built secretsctl for issue #11's rotation policies and expiry: `add`/`update`/`rotate
 * --expires-at`, `update --no-expires-at`, the EXPIRES column of `list`, `status`'s expiring
 * lines, and `rotate NAME --plan` (which reads no value and changes nothing).
 */
import { beforeAll, describe, expect, test } from "vitest";
import type { CliRunner, SecretJson } from "./helpers/cli.js";
import { cliSuite, failed, listJson, ok, value } from "./helpers/cli.js";
import type { TestDaemon } from "./helpers/daemon.js";

const suite = cliSuite("secretsctl-plan-");
let d: TestDaemon;
let cli: CliRunner;

beforeAll(async () => {
  ({ d, cli } = suite);
});

/** The EXPIRES cell of `name`'s row in `list` (the last column). */
async function expiresCell(name: string): Promise<string> {
  const rows = ok(await cli(["list"]))
    .trimEnd()
    .split("\n");
  const header = rows[0] ?? "";
  const row = rows.find((r) => r.startsWith(`${name} `)) ?? "";
  return row.slice(header.indexOf("EXPIRES")).trim();
}

const byName = async (name: string): Promise<SecretJson | undefined> =>
  (await listJson(cli)).find((s) => s.name === name);

describe("expiry", () => {
  test("add --expires-at +30d: listed as in 30d, an ISO time in --json", async () => {
    ok(await cli(["add", "k30", value(), "--expires-at", "+30d"]));
    expect(await expiresCell("k30")).toBe("in 30d");
    const at = (await byName("k30"))?.expiresAt as string;
    expect(Math.abs(Date.parse(at) - (Date.now() + 30 * 86_400_000))).toBeLessThan(60_000);
    ok(await cli(["add", "plain", value()]));
    expect(await expiresCell("plain")).toBe("-");
    expect((await byName("plain"))?.expiresAt).toBeNull();
  });

  test("bad --expires-at: a usage error before any call; a past time refused by secretsd", async () => {
    for (const bad of ["tomorrow", "2026-02-30", "+3y", "2026", ""]) {
      failed(await cli(["add", "bad", value(), "--expires-at", bad]), 2, "--expires-at must be");
    }
    failed(await cli(["add", "bad", value(), "--expires-at", "2001-01-01"]), 1, "expires_at: ");
    expect(await byName("bad")).toBeUndefined();
  });

  test("update: set in the past (EXPIRED, and in status), then removed", async () => {
    ok(await cli(["add", "old", value()]));
    ok(await cli(["update", "old", "--expires-at", "2020-01-01T00:00:00Z"]));
    expect(await expiresCell("old")).toMatch(/^EXPIRED \d+d ago$/);
    const status = ok(await cli(["status"]));
    expect(status).toMatch(/^expiring\s+old: expired \d+d ago \(2020-01-01T00:00:00\.000Z\)$/m);
    const json = JSON.parse(ok(await cli(["status", "--json"]))) as { expiringSecrets: string[] };
    expect(json.expiringSecrets.some((e) => e.startsWith("old: expired"))).toBe(true);
    ok(await cli(["update", "old", "--no-expires-at"]));
    expect(await expiresCell("old")).toBe("-");
    expect(ok(await cli(["status"]))).not.toMatch(/old: expired/);
    failed(await cli(["update", "old", "--expires-at", "+1d", "--no-expires-at"]), 2, "not both");
    failed(await cli(["update", "old", "--no-expires-at", "--expires-at", "+1d"]), 2, "not both");
  });

  test("rotate --expires-at gives the new value's expiry; a rotation without it leaves none", async () => {
    ok(await cli(["add", "rot", value(), "--expires-at", "+2d"]));
    ok(await cli(["rotate", "rot", value(), "--expires-at", "+7d"]));
    expect(await expiresCell("rot")).toBe("in 7d");
    ok(await cli(["rotate", "rot", value()]));
    expect(await expiresCell("rot")).toBe("-");
  });
});

describe("rotate --plan", () => {
  test("the VMs and units a rotation would reach; no value read, nothing changed", async () => {
    ok(await cli(["add", "shared", value(), "--env", "SHARED_KEY"]));
    const t1 = ok(await cli(["vm", "add", "p1"])).trim();
    ok(await cli(["vm", "add", "p2"]));
    await d.tcpClient(t1).env.ackEnv({
      revision: (await d.client.system.getStatus({})).revision,
      unitsReported: true,
      units: [
        { name: "app.service", keys: ["SHARED_KEY"], action: "restart" },
        { name: "other.service", keys: ["OTHER"], action: "restart" },
        { name: "all.service", keys: [], action: "reload" },
      ],
    });
    const rev = (await d.client.system.getStatus({})).revision;
    // stdin holds text: a plan must not read it as a value.
    const r = await cli(["rotate", "shared", "--plan"], { stdin: "not-a-value\n" });
    const rows = ok(r).trimEnd().split("\n");
    expect(rows[0]?.split(/\s{2,}/)).toEqual(["VM", "ENV", "CONNECTED", "WOULD RESTART"]);
    expect(rows.slice(1).map((l) => l.split(/\s{2,}/))).toEqual([
      ["p1", "SHARED_KEY", "no", "all.service (reload), app.service (restart)"],
      [
        "p2",
        "SHARED_KEY",
        "no",
        "unit map unknown: the VM's shim has not acked since secretsd started",
      ],
    ]);
    const json = JSON.parse(ok(await cli(["rotate", "shared", "--plan", "--json"]))) as {
      secret: string;
      revision: number;
      vms: { vm: string; units: string[]; unitMapKnown: boolean }[];
    };
    expect(json.secret).toBe("shared");
    expect(json.revision).toBe(Number(rev));
    expect(json.vms.map((v) => [v.vm, v.unitMapKnown])).toEqual([
      ["p1", true],
      ["p2", false],
    ]);
    expect((await d.client.system.getStatus({})).revision).toBe(rev);
    expect((await byName("shared"))?.currentVersion).toBe(1);
    const reads = await d.client.system.listAuditEvents({
      secret: "shared",
      action: "secret.read",
    });
    expect(reads.events).toHaveLength(0);
  });

  test("a VM-scoped secret reaches its VM only; one nobody sees says so on stderr", async () => {
    ok(await cli(["add", "p1-only", value(), "--scope", "vm:p1"]));
    const rows = ok(await cli(["rotate", "p1-only", "--plan"]))
      .trimEnd()
      .split("\n");
    expect(rows.slice(1).map((l) => l.split(/\s{2,}/)[0])).toEqual(["p1"]);
    ok(await cli(["group", "add", "empty"]));
    ok(await cli(["add", "nobody", value(), "--scope", "group:empty"]));
    const r = await cli(["rotate", "nobody", "--plan"]);
    expect(ok(r).trimEnd().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("no VM's view takes an env var from nobody");
  });

  test("--plan with a value or --expires-at is a usage error; an unknown secret names it", async () => {
    failed(await cli(["rotate", "shared", value(), "--plan"]), 2, "--plan changes nothing");
    failed(await cli(["rotate", "shared", "--plan", "--expires-at", "+1d"]), 2, "--plan");
    failed(await cli(["rotate", "missing", "--plan"]), 3, "missing");
    expect((await byName("shared"))?.currentVersion).toBe(1);
  });
});
