/**
 * secretsctl's user and team commands end to end (issue #13): add, list, token, role,
 * remove; team add, list, members, remove; a user's token used over TCP gets what its role
 * allows; bad input is one line naming the flag, and changes nothing.
 */
import { beforeAll, describe, expect, test } from "vitest";
import type { CliRunner } from "./helpers/cli.js";
import { cliSuite, failed, ok, runCli, value } from "./helpers/cli.js";
import type { TestDaemon } from "./helpers/daemon.js";

const suite = cliSuite("secretsctl-users-");
let d: TestDaemon;
let cli: CliRunner;

beforeAll(async () => {
  ({ d, cli } = suite);
});

const over = (token: string, ...args: string[]) =>
  runCli([...args, "--server", d.tcp, "--token", token]);

describe("users", () => {
  test("user add, token, list, role, remove; the token works as the role allows", async () => {
    ok(await cli(["add", "cu-key", value()]));
    expect(ok(await cli(["user", "add", "alice", "--role", "viewer"]))).toBe(
      "added user alice (viewer)\n",
    );
    const token = ok(await cli(["user", "token", "alice"])).trim();
    expect(token).toMatch(/^vmadm_[A-Za-z0-9_-]{43}$/);
    const table = ok(await cli(["user", "list"]))
      .trimEnd()
      .split("\n");
    expect(table[0]?.split(/\s+/)).toEqual(["NAME", "ROLE", "TEAMS", "TOKEN", "CREATED"]);
    const row = table.find((l) => l.startsWith("alice "))?.split(/\s+/);
    expect(row?.slice(0, 3)).toEqual(["alice", "viewer", "-"]);
    expect(row?.[3]).toMatch(/^[0-9a-f]{12}$/);
    expect(ok(await cli(["user", "list"]))).not.toContain(token);

    // A viewer lists, never reads a value.
    expect(ok(await over(token, "list"))).toMatch(/^cu-key /m);
    failed(await over(token, "get", "cu-key"), 4, /role viewer may not call it \(needs operator\)/);

    expect(ok(await cli(["user", "role", "alice", "operator"]))).toBe(
      "user alice is now operator\n",
    );
    expect(ok(await over(token, "get", "cu-key")).length).toBeGreaterThan(0);
    failed(await over(token, "user", "list"), 4, /role operator may not call it \(needs admin\)/);

    const json = JSON.parse(ok(await cli(["user", "list", "--json"]))) as {
      users: { name: string; role: string; hasToken: boolean }[];
    };
    expect(json.users.find((u) => u.name === "alice")).toMatchObject({
      role: "operator",
      hasToken: true,
    });

    expect(ok(await cli(["user", "remove", "alice"]))).toBe("removed user alice\n");
    failed(await over(token, "list"), 4, /unknown or revoked token/);
  });

  test("bad input: one line naming the flag, nothing created", async () => {
    failed(await cli(["user", "add", "bob"]), 2, /--role: expected one of admin, operator, viewer/);
    failed(
      await cli(["user", "add", "bob", "--role", "root"]),
      2,
      /--role: expected one of admin, operator, viewer/,
    );
    failed(await cli(["user", "add", "Bob!", "--role", "viewer"]), 1, /name: user name/);
    failed(
      await cli(["user", "add", "bob", "--role", "viewer", "--team", "nope"]),
      3,
      /teams: team 'nope' not found/,
    );
    failed(await cli(["user", "role", "bob", "viewer"]), 3, /name: user 'bob' not found/);
    failed(await cli(["user", "token", "bob"]), 3, /name: user 'bob' not found/);
    expect(ok(await cli(["user", "list"]))).not.toMatch(/^bob /m);
  });
});

describe("teams", () => {
  test("team add, list, members, remove; a member sees only the team's VMs", async () => {
    ok(await cli(["group", "add", "t-web"]));
    ok(await cli(["group", "add", "t-db"]));
    ok(await cli(["vm", "add", "t-web1", "--group", "t-web"]));
    ok(await cli(["vm", "add", "t-db1", "--group", "t-db"]));
    expect(ok(await cli(["team", "add", "web-team", "--group", "t-web"]))).toBe(
      "added team web-team (groups t-web)\n",
    );
    ok(await cli(["user", "add", "carol", "--role", "operator"]));
    expect(ok(await cli(["team", "members", "web-team", "--add", "carol"]))).toBe(
      "team web-team members: carol\n",
    );
    const table = ok(await cli(["team", "list"]))
      .trimEnd()
      .split("\n");
    expect(table.map((l) => l.split(/\s+/))).toEqual([
      ["NAME", "GROUPS", "MEMBERS"],
      ["web-team", "t-web", "carol"],
    ]);
    const token = ok(await cli(["user", "token", "carol"])).trim();
    const vms = ok(await over(token, "vm", "list"))
      .trimEnd()
      .split("\n")
      .slice(1);
    expect(vms.map((l) => l.split(/\s+/)[0])).toEqual(["t-web1"]);
    failed(await over(token, "vm", "remove", "t-db1"), 3, /vm 't-db1' not found/);

    failed(await cli(["team", "members", "web-team"]), 2, /nothing to change/);
    failed(await cli(["team", "add", "x-team"]), 1, /groups: a team needs at least one group/);
    failed(
      await cli(["team", "add", "x-team", "--group", "nope"]),
      3,
      /groups: group 'nope' not found/,
    );
    expect(ok(await cli(["team", "list"]))).not.toContain("x-team");

    expect(ok(await cli(["team", "members", "web-team", "--remove", "carol"]))).toBe(
      "team web-team members: (none)\n",
    );
    expect(ok(await cli(["team", "remove", "web-team"]))).toBe("removed team web-team\n");
    expect(ok(await cli(["team", "list", "--json"]))).toBe('{\n  "teams": []\n}\n');
  });
});
