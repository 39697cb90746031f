/**
 * Every bad input to secretsctl: the exit code (client/cli/errors.ts's table: 2 for usage
 * errors, 3 not found, 4 permission, 1 anything else), nothing on stdout,
 * exactly one stderr line `secretsctl: …` naming the field, no secret value in it, and a
 * follow-up `list --json` (plus the store revision) proving nothing changed.
 */
import { beforeAll, describe, expect, test } from "vitest";
import type { CliOptions, CliRunner } from "./helpers/cli.js";
import { cliSuite, failed, ok, runCli, use, value, valuesUsed } from "./helpers/cli.js";
import type { TestDaemon } from "./helpers/daemon.js";

const suite = cliSuite("secretsctl-errors-");
let d: TestDaemon;
let cli: CliRunner;
let vmToken: string;
/** The store as every refused request must leave it. */
let baseline: { list: string; revision: bigint };

beforeAll(async () => {
  ({ d, cli } = suite);
  ok(await cli(["add", "openai", value()]));
  ok(await cli(["rotate", "openai", value()]));
  ok(await cli(["group", "add", "ml"]));
  vmToken = ok(await cli(["vm", "add", "vm1", "--group", "ml"])).trim();
  ok(await cli(["vm", "add", "vm2"]));
  ok(await cli(["token", "create", "ci"]));
  baseline = await state();
});

interface Case {
  /** The command line; a function because the daemon's address and tokens come later. */
  args: () => string[];
  stdin?: () => string | Buffer;
  /** From the table in client/cli/errors.ts: 1 other, 2 usage, 3 not found, 4 permission. */
  code: 1 | 2 | 3 | 4;
  /** What the one stderr line must contain: the field, usually. */
  mention: string | RegExp;
  /** Run without the default socket (e.g. over TCP). */
  bare?: boolean;
}

const tcp = () => ["--server", d.tcp];
const big = use(`big-${"x".repeat(64 * 1024)}`);
const withNul = use(`sk-before\0after-${value()}`);

/** What `list --json` shows, and the store revision (which any change bumps). */
async function state() {
  return {
    list: ok(await cli(["list", "--json"])),
    revision: (await d.client.system.getStatus({})).revision,
  };
}

/**
 * Runs a failing case and proves the store did not change: every case is refused, so the
 * state after each one must still be the baseline taken before the first.
 */
async function refused(c: Case): Promise<string> {
  const opts: CliOptions = c.stdin ? { stdin: c.stdin() } : {};
  const r = c.bare ? await runCli(c.args(), opts) : await cli(c.args(), opts);
  const msg = failed(r, c.code, c.mention);
  expect(await state()).toEqual(baseline);
  for (const v of valuesUsed) expect(msg).not.toContain(v);
  return msg;
}

const server: Record<string, Case> = {
  "invalid secret name": {
    args: () => ["add", "Bad-Name", value()],
    code: 1,
    mention: "secretsctl: name: ",
  },
  "empty secret name": { args: () => ["add", "", value()], code: 1, mention: "secretsctl: name: " },
  "secret name too long": {
    args: () => ["add", `a${"b".repeat(63)}`, value()],
    code: 1,
    mention: "name: ",
  },
  "taken secret name": { args: () => ["add", "openai", value()], code: 1, mention: "name: " },
  "invalid env name": {
    args: () => ["add", "good", "--env", "lower-case", value()],
    code: 1,
    mention: "secretsctl: env: ",
  },
  "env var taken at that scope": {
    args: () => ["add", "good", "--env", "OPENAI_API_KEY", value()],
    code: 1,
    mention: "env: ",
  },
  "malformed scope": {
    args: () => ["add", "good", "--scope", "planet:x", value()],
    code: 1,
    mention: "secretsctl: scope: ",
  },
  "scope naming an unknown group": {
    args: () => ["add", "good", "--scope", "group:nope", value()],
    code: 3,
    mention: "scope: ",
  },
  "scope naming an unknown vm": {
    args: () => ["add", "good", "--scope", "vm:nope", value()],
    code: 3,
    mention: "scope: ",
  },
  "env var on the deny-list": {
    args: () => ["add", "good", "--env", "LD_PRELOAD", value()],
    code: 1,
    mention: /^secretsctl: env: LD_PRELOAD changes how programs load or run/,
  },
  "env var on the deny-list, from the secret's name": {
    args: () => ["add", "path", value()],
    code: 1,
    mention: "secretsctl: env: PATH",
  },
  "invalid label key": {
    args: () => ["add", "good", "--label", "Bad Key=v", value()],
    code: 1,
    mention: "label",
  },
  "value with NUL (stdin)": {
    args: () => ["add", "nul"],
    stdin: () => withNul,
    code: 1,
    mention: "secretsctl: value: must not contain NUL",
  },
  "value over 64 KiB (stdin)": {
    args: () => ["add", "big"],
    stdin: () => big,
    code: 1,
    mention: /^secretsctl: value: is 65540 bytes; the limit is 65536$/,
  },
  "empty value (stdin)": {
    args: () => ["add", "empty"],
    stdin: () => "\n",
    code: 1,
    mention: "value: must not be empty",
  },
  "value that is not UTF-8 (stdin)": {
    args: () => ["add", "latin1"],
    stdin: () => Buffer.from([0x73, 0x6b, 0xe9, 0xff, 0x0a]),
    code: 1,
    mention: "value: stdin is not valid UTF-8",
  },
  "rotate with NUL (stdin)": {
    args: () => ["rotate", "openai"],
    stdin: () => withNul,
    code: 1,
    mention: "value: ",
  },
  "rotate over 64 KiB (argument)": {
    args: () => ["rotate", "openai", big],
    code: 1,
    mention: "value: is 65540 bytes",
  },
  "get of an unknown secret": {
    args: () => ["get", "nope"],
    code: 3,
    mention: "secretsctl: name: secret 'nope' not found",
  },
  "rotate of an unknown secret": {
    args: () => ["rotate", "nope", value()],
    code: 3,
    mention: "name: secret 'nope' not found",
  },
  "update of an unknown secret": {
    args: () => ["update", "nope", "--env", "X"],
    code: 3,
    mention: "name: ",
  },
  "update to an invalid env": {
    args: () => ["update", "openai", "--env", "no spaces"],
    code: 1,
    mention: "env: ",
  },
  "remove of an unknown secret": { args: () => ["remove", "nope"], code: 3, mention: "name: " },
  "versions of an unknown secret": { args: () => ["versions", "nope"], code: 3, mention: "name: " },
  "get of an unknown version": {
    args: () => ["get", "openai", "--version", "99"],
    code: 3,
    mention: "secretsctl: version: ",
  },
  "rollback to an unknown version": {
    args: () => ["rollback", "openai", "99"],
    code: 3,
    mention: "version: ",
  },
  "export of an unknown vm": {
    args: () => ["export", "nope"],
    code: 3,
    mention: /vm 'nope' not found/,
  },
  "vm add with an invalid name": {
    args: () => ["vm", "add", "Bad VM"],
    code: 1,
    mention: "name: ",
  },
  "vm add of a taken name": { args: () => ["vm", "add", "vm1"], code: 1, mention: "name: " },
  "vm add into an unknown group": {
    args: () => ["vm", "add", "vm3", "--group", "nope"],
    code: 3,
    mention: "groups: ",
  },
  "vm remove of an unknown vm": {
    args: () => ["vm", "remove", "nope"],
    code: 3,
    mention: "name: vm 'nope' not found",
  },
  "vm token of an unknown vm": {
    args: () => ["vm", "token", "nope"],
    code: 3,
    mention: "name: vm 'nope' not found",
  },
  "vm revoke of an unknown vm": {
    args: () => ["vm", "revoke", "nope"],
    code: 3,
    mention: "name: vm 'nope' not found",
  },
  "vm groups with an unknown group": {
    args: () => ["vm", "groups", "vm1", "--add", "nope"],
    code: 3,
    mention: "add_groups: ",
  },
  "group add with an invalid name": {
    args: () => ["group", "add", "Bad Group"],
    code: 1,
    mention: "name: ",
  },
  "group remove of an unknown group": {
    args: () => ["group", "remove", "nope"],
    code: 3,
    mention: "name: ",
  },
  "token create with an invalid name": {
    args: () => ["token", "create", "Bad Name"],
    code: 1,
    mention: "name: ",
  },
  "token revoke of an unknown token": {
    args: () => ["token", "revoke", "nope"],
    code: 3,
    mention: "name: ",
  },
};

const overTcp: Record<string, Case> = {
  "missing token over TCP": {
    args: () => ["list", ...tcp()],
    bare: true,
    code: 4,
    mention: "secretsctl: authorization: ",
  },
  "wrong token over TCP": {
    args: () => ["list", ...tcp(), "--token", "vmadm_wrongwrongwrong"],
    bare: true,
    code: 4,
    mention: "authorization: unknown or revoked token",
  },
  "malformed token over TCP": {
    args: () => ["add", "x", value(), ...tcp(), "--token", "not-a-token"],
    bare: true,
    code: 4,
    mention: "authorization: ",
  },
  "VM token asking for another VM": {
    args: () => ["export", "vm2", ...tcp(), "--token", vmToken],
    bare: true,
    code: 4,
    mention: /^secretsctl: vm: this token belongs to vm 'vm1', not 'vm2'$/,
  },
  "VM token writing a secret": {
    args: () => ["rotate", "openai", value(), ...tcp(), "--token", vmToken],
    bare: true,
    code: 4,
    mention: "a VM token may only call EnvService",
  },
  "VM token reading a secret": {
    args: () => ["get", "openai", ...tcp(), "--token", vmToken],
    bare: true,
    code: 4,
    mention: "a VM token may only call EnvService",
  },
};

const usage: Record<string, Case> = {
  "missing NAME": {
    args: () => ["add"],
    code: 2,
    mention: "Missing required positional argument: NAME",
  },
  "missing VERSION": { args: () => ["rollback", "openai"], code: 2, mention: "VERSION" },
  "unknown option": {
    args: () => ["add", "x", "--scpoe", "vm:vm1", value()],
    code: 2,
    mention: "unknown option --scpoe",
  },
  "a value that looks like an option": {
    args: () => ["add", "x", `-${value()}`],
    code: 2,
    mention: "after '--'",
  },
  "too many arguments": {
    args: () => ["add", "x", value(), value()],
    code: 2,
    mention: "too many arguments",
  },
  "label without =": {
    args: () => ["add", "x", "--label", "novalue", value()],
    code: 2,
    mention: "--label must be KEY=VALUE",
  },
  "option without its value": {
    args: () => ["add", "x", "--env"],
    code: 2,
    mention: "--env needs a value",
  },
  "option given twice": {
    args: () => ["add", "x", "--env", "A", "--env", "B", value()],
    code: 2,
    mention: "--env given more than once",
  },
  "non-numeric --version": {
    args: () => ["get", "openai", "--version", "latest"],
    code: 2,
    mention: "--version must be",
  },
  "non-numeric VERSION": {
    args: () => ["rollback", "openai", "first"],
    code: 2,
    mention: "VERSION must be",
  },
  "negative --limit": {
    args: () => ["audit", "--limit", "-1"],
    code: 2,
    mention: "--limit must be",
  },
  "unknown --format": {
    args: () => ["export", "vm1", "--format", "xml"],
    code: 2,
    mention: "--format",
  },
  "unknown command": { args: () => ["frobnicate"], code: 2, mention: "unknown command frobnicate" },
  "group command without a subcommand": {
    args: () => ["vm"],
    code: 2,
    mention: "secretsctl vm needs a command: add, list",
  },
  "update with nothing to change": {
    args: () => ["update", "openai"],
    code: 2,
    mention: "nothing to update",
  },
  "vm groups with nothing to change": {
    args: () => ["vm", "groups", "vm1"],
    code: 2,
    mention: "nothing to change",
  },
  "bad --timeout": { args: () => ["list", "--timeout", "0"], code: 2, mention: "--timeout" },
  "--socket and --server together": {
    args: () => ["list", "--socket", d.socket, ...tcp()],
    code: 2,
    mention: "not both",
  },
  "token flag on the socket": {
    args: () => ["list", "--token", "abc"],
    code: 2,
    mention: "--token is for --server",
  },
};

describe("refused by secretsd: exit 1 (3 not found), one line naming the field, nothing changed", () => {
  test.each(Object.entries(server))("%s", async (_, c) => {
    await refused(c);
  });
});

describe("refused over TCP: exit 4, one line, nothing changed", () => {
  test.each(Object.entries(overTcp))("%s", async (_, c) => {
    await refused(c);
  });
});

describe("usage errors: exit 2, one line, nothing changed", () => {
  test.each(Object.entries(usage))("%s", async (_, c) => {
    await refused(c);
  });
});

test("the refused requests above are in the audit log, and no value is", async () => {
  const all = ok(await cli(["audit", "--json", "--limit", "10000"]));
  const events = (JSON.parse(all) as { events: { result: string; actor: string }[] }).events;
  expect(events.some((e) => e.result === "unauthenticated")).toBe(true);
  expect(events.some((e) => e.result === "permission_denied" && e.actor === "vm:vm1")).toBe(true);
  for (const v of valuesUsed) expect(all).not.toContain(v);
});
