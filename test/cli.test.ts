/**
 * secretsctl end to end: the built CLI against a real secretsd (in-process, temp data dir),
 * reached through $VM_AUTH_HOME, i.e. the CLI's default socket: the secret commands, status,
 * rekey, audit, and the terminal paths (hidden prompt, trailing newline) through a real pty.
 * Export and import are in cli-env.test.ts, access in cli-access.test.ts, bad input in
 * cli-errors.test.ts.
 */
import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, test } from "vitest";
import type { CliRunner, SecretJson } from "./helpers/cli.js";
import {
  cliSuite,
  failed,
  listJson,
  ok,
  runCli,
  SECRETSCTL,
  use,
  value,
  valuesUsed,
} from "./helpers/cli.js";
import type { TestDaemon } from "./helpers/daemon.js";

const suite = cliSuite("secretsctl-cli-");
let d: TestDaemon;
let cli: CliRunner;
let work: string;

beforeAll(async () => {
  ({ d, cli, work } = suite);
});

const list = (...args: string[]) => listJson(cli, ...args);
const getValue = async (name: string, ...args: string[]) => ok(await cli(["get", name, ...args]));

describe("secrets", () => {
  test("add from the argument; get prints the value exactly, without a newline when piped", async () => {
    const v = value();
    expect(ok(await cli(["add", "openai", v]))).toBe(
      "created openai: OPENAI_API_KEY at global, version 1\n",
    );
    expect(await getValue("openai")).toBe(v);
  });

  test("add from stdin strips exactly one trailing newline", async () => {
    const v = value();
    ok(await cli(["add", "from-stdin"], { stdin: `${v}\n` }));
    expect(await getValue("from-stdin")).toBe(v);
    // A value that itself ends with a newline keeps it; CRLF counts as one newline.
    const multi = use(`line one ${value()}\nline two\n`);
    ok(await cli(["add", "multi"], { stdin: `${multi}\n` }));
    expect(await getValue("multi")).toBe(multi);
    const crlf = value();
    ok(await cli(["add", "crlf"], { stdin: `${crlf}\r\n` }));
    expect(await getValue("crlf")).toBe(crlf);
    // '-' as VALUE reads stdin too.
    const dash = value();
    ok(await cli(["add", "dash", "-"], { stdin: dash }));
    expect(await getValue("dash")).toBe(dash);
  });

  test("add --env, --scope, --provider, --description, --label", async () => {
    ok(await cli(["group", "add", "ml"]));
    const out = ok(
      await cli(
        [
          "add",
          "anth-ml",
          "--provider",
          "anthropic",
          "--scope",
          "group:ml",
          "--description",
          "for the ml group",
          "--label",
          "team=ml",
          "--label=tier=1",
        ],
        { stdin: value() },
      ),
    );
    expect(out).toBe("created anth-ml: ANTHROPIC_API_KEY at group:ml, version 1\n");
    ok(await cli(["add", "custom", "--env", "CUSTOM_TOKEN", value()]));
    const byName = new Map((await list()).map((s) => [s.name, s]));
    expect(byName.get("anth-ml")).toMatchObject({
      env: "ANTHROPIC_API_KEY",
      scope: "group:ml",
      provider: "anthropic",
      description: "for the ml group",
      labels: { team: "ml", tier: "1" },
      currentVersion: 1,
    });
    expect(byName.get("custom")).toMatchObject({ env: "CUSTOM_TOKEN", scope: "global" });
  });

  test("list masks every value and never fetches one; --json has no value; --scope filters", async () => {
    const table = ok(await cli(["list"]));
    const [header, ...rows] = table.trimEnd().split("\n");
    expect(header?.split(/\s+/)).toEqual([
      "NAME",
      "ENV",
      "VALUE",
      "SCOPE",
      "VERSION",
      "UPDATED",
      "EXPIRES",
    ]);
    expect(rows.length).toBeGreaterThanOrEqual(6);
    for (const row of rows) expect(row).toContain("••••••");
    const json = ok(await cli(["list", "--json"]));
    for (const v of valuesUsed) {
      expect(table).not.toContain(v);
      expect(json).not.toContain(v);
    }
    const secrets = (JSON.parse(json) as { secrets: SecretJson[] }).secrets;
    for (const s of secrets) {
      expect(Object.keys(s).sort()).toEqual(
        [
          "name",
          "env",
          "scope",
          "kind",
          "provider",
          "description",
          "labels",
          "currentVersion",
          "versionCount",
          "createdAt",
          "updatedAt",
          "modRevision",
          "allowSensitiveEnv",
          "expiresAt",
        ].sort(),
      );
      expect(typeof s.modRevision).toBe("number");
      expect(Date.parse(s.createdAt as string)).not.toBeNaN();
    }
    expect((await list("--scope", "group:ml")).map((s) => s.name)).toEqual(["anth-ml"]);
    // List reads no value, so the audit log has no read for it.
    const reads = await d.client.system.listAuditEvents({ action: "secret.read", limit: 10_000 });
    expect(reads.events.filter((e) => e.secret === "anth-ml")).toHaveLength(0);
  });

  test("get --json names the version", async () => {
    const v = await getValue("custom");
    expect(JSON.parse(ok(await cli(["get", "custom", "--json"])))).toEqual({
      name: "custom",
      env: "CUSTOM_TOKEN",
      scope: "global",
      version: 1,
      value: v,
    });
  });

  test("update changes metadata, never the value", async () => {
    const v = await getValue("custom");
    const out = ok(
      await cli([
        "update",
        "custom",
        "--env",
        "CUSTOM_KEY",
        "--description",
        "renamed",
        "--label",
        "a=b",
        "--scope",
        "group:ml",
      ]),
    );
    expect(out).toBe("updated custom: CUSTOM_KEY at group:ml\n");
    let s = (await list()).find((x) => x.name === "custom");
    expect(s).toMatchObject({
      env: "CUSTOM_KEY",
      scope: "group:ml",
      description: "renamed",
      labels: { a: "b" },
      currentVersion: 1,
    });
    ok(await cli(["update", "custom", "--clear-labels", "--scope", "global"]));
    s = (await list()).find((x) => x.name === "custom");
    expect(s).toMatchObject({ labels: {}, scope: "global", env: "CUSTOM_KEY" });
    expect(await getValue("custom")).toBe(v);
  });

  test("rotate (argument and stdin), versions, rollback", async () => {
    const v1 = await getValue("custom");
    const v2 = value();
    expect(ok(await cli(["rotate", "custom", v2]))).toBe("rotated custom: version 2 is current\n");
    const v3 = value();
    ok(await cli(["rotate", "custom"], { stdin: `${v3}\n` }));
    expect(await getValue("custom")).toBe(v3);
    expect(await getValue("custom", "--version", "1")).toBe(v1);
    expect(await getValue("custom", "--version=2")).toBe(v2);

    const table = ok(await cli(["versions", "custom"]))
      .trimEnd()
      .split("\n");
    expect(table[0]?.split(/\s+/)).toEqual(["VERSION", "CURRENT", "CREATED", "BY"]);
    expect(table.slice(1).map((r) => r.split(/\s+/).slice(0, 2))).toEqual([
      ["3", "*"],
      ["2", "-"],
      ["1", "-"],
    ]);
    const versions = JSON.parse(ok(await cli(["versions", "custom", "--json"]))) as {
      versions: { version: number; current: boolean; createdBy: string; createdAt: string }[];
    };
    expect(versions.versions.map((x) => [x.version, x.current, x.createdBy])).toEqual([
      [3, true, "local"],
      [2, false, "local"],
      [1, false, "local"],
    ]);

    expect(ok(await cli(["rollback", "custom", "1"]))).toBe(
      "rolled back custom: version 1 is current\n",
    );
    expect(await getValue("custom")).toBe(v1);
    expect((await list()).find((s) => s.name === "custom")).toMatchObject({
      currentVersion: 1,
      versionCount: 3,
    });
  });

  test("remove, and its alias rm", async () => {
    ok(await cli(["add", "tmp-a", value()]));
    ok(await cli(["add", "tmp-b", value()]));
    expect(ok(await cli(["remove", "tmp-a"]))).toBe("removed tmp-a\n");
    expect(JSON.parse(ok(await cli(["rm", "tmp-b", "--json"])))).toMatchObject({
      name: "tmp-b",
      removed: true,
    });
    const names = (await list()).map((s) => s.name);
    expect(names).not.toContain("tmp-a");
    expect(names).not.toContain("tmp-b");
  });
});

describe("status, rekey, audit", () => {
  test("status: reachable, counts, data dir, master key, caller; --json has stable fields", async () => {
    ok(await cli(["vm", "add", "st1"]));
    ok(await cli(["vm", "add", "st2"]));
    const text = ok(await cli(["status"]));
    expect(text).toMatch(/^reachable\s+yes \(.*secretsd\.sock\)$/m);
    expect(text).toMatch(new RegExp(`^data dir\\s+${d.dataDir}$`, "m"));
    expect(text).toMatch(/^caller\s+local$/m);
    expect(text).toMatch(/^vms\s+0 connected \/ 2 total$/m);
    const s = JSON.parse(ok(await cli(["status", "--json"]))) as Record<string, unknown>;
    expect(Object.keys(s).sort()).toEqual(
      [
        "reachable",
        "target",
        "version",
        "startedAt",
        "uptimeSeconds",
        "revision",
        "secretCount",
        "vmCount",
        "connectedVmCount",
        "groupCount",
        "dataDir",
        "masterKeyId",
        "caller",
        "damagedSecrets",
        "storeWarnings",
        "oauthAttention",
        "expiringSecrets",
      ].sort(),
    );
    expect(s).toMatchObject({
      reachable: true,
      target: d.socket,
      dataDir: d.dataDir,
      caller: "local",
      vmCount: 2,
      connectedVmCount: 0,
      groupCount: 1,
      secretCount: (await list()).length,
    });
    expect(typeof s.revision).toBe("number");
  });

  test("status with no daemon: one line naming the socket it tried and secretsd; exit 5", async () => {
    const env = { VM_AUTH_HOME: work };
    const msg = failed(await runCli(["status"], { env }), 5, join(work, "secretsd.sock"));
    expect(msg).toContain("is secretsd running?");
    const r = await runCli(["status", "--json"], { env });
    expect(r.code).toBe(5);
    expect(JSON.parse(r.stdout)).toEqual({ reachable: false, target: join(work, "secretsd.sock") });
    expect(r.stderr.split("\n")).toHaveLength(2);
  });

  test("rekey replaces the master key; every value is still readable", async () => {
    const names = ["openai", "multi", "custom", "crlf", "anth-ml"];
    const before = new Map<string, string>();
    for (const n of names) before.set(n, await getValue(n));
    const id = (JSON.parse(ok(await cli(["status", "--json"]))) as { masterKeyId: string })
      .masterKeyId;
    const r = JSON.parse(ok(await cli(["rekey", "--json"]))) as {
      masterKeyId: string;
      revision: number;
    };
    expect(r.masterKeyId).not.toBe(id);
    expect(ok(await cli(["rekey"]))).toMatch(/^master key replaced: \S+ \(revision \d+\)\n$/);
    for (const n of names) expect(await getValue(n), n).toBe(before.get(n));
    await d.restart();
    for (const n of names) expect(await getValue(n), n).toBe(before.get(n));
  });

  test("audit: reads and changes, filtered by secret, vm and action; never a value", async () => {
    const events = async (...args: string[]) =>
      (
        JSON.parse(ok(await cli(["audit", "--json", ...args]))) as {
          events: {
            action: string;
            secret: string;
            vm: string;
            actor: string;
            result: string;
            time: string;
            revision: number;
          }[];
        }
      ).events;
    const custom = await events("--secret", "custom", "--limit", "10000");
    const actions = new Set(custom.map((e) => e.action));
    for (const a of [
      "secret.create",
      "secret.read",
      "secret.update",
      "secret.rotate",
      "secret.rollback",
    ]) {
      expect(actions, a).toContain(a);
    }
    for (const e of custom) {
      expect(e.secret).toBe("custom");
      expect(e.actor).toBe("local");
      expect(Date.parse(e.time)).not.toBeNaN();
    }
    const reads = await events("--action", "secret.read", "--limit", "2");
    expect(reads.length).toBe(2);
    for (const e of reads) expect(e.action).toBe("secret.read");
    ok(await cli(["export", "st1"]));
    expect(
      (await events("--vm", "st1", "--limit", "10000")).some((e) => e.action === "env.get"),
    ).toBe(true);
    const table = ok(await cli(["audit", "--limit", "50"]));
    expect(table.split("\n")[0]?.split(/\s+/)).toEqual([
      "TIME",
      "ACTOR",
      "ACTION",
      "SECRET",
      "VM",
      "VERSION",
      "RESULT",
    ]);
    const all = ok(await cli(["audit", "--json", "--limit", "10000"]));
    for (const v of valuesUsed) expect(all).not.toContain(v);
  });
});

const hasPython = spawnSync("python3", ["-c", "import pty"]).status === 0;

describe.skipIf(!hasPython)("on a terminal (python3 pty)", () => {
  test("add prompts without echo; get adds a newline on a terminal", async () => {
    const v = value("sk-typed");
    const typed = await inPty(["add", "typed"], v);
    expect(typed.code).toBe(0);
    expect(typed.transcript).toContain("Value for typed (input hidden): ");
    expect(typed.transcript).not.toContain(v);
    expect(await getValue("typed")).toBe(v);
    const shown = await inPty(["get", "typed"]);
    expect(shown.transcript).toBe(`${v}\r\n`);
  });

  test("Ctrl-C at the prompt cancels: exit 130, nothing stored", async () => {
    const r = await inPty(["add", "cancelled"], "\u0003");
    expect(r.code).toBe(130);
    expect(r.transcript).toContain("secretsctl: cancelled");
    expect((await list()).map((s) => s.name)).not.toContain("cancelled");
  });
});

// --- internal ---

/**
 * Runs secretsctl on a pty; when it prompts, types `input` then Enter. The transcript is
 * everything the terminal showed.
 */
function inPty(
  args: string[],
  input?: string,
): Promise<{ code: number | null; transcript: string }> {
  const script = `
import os, pty, sys
data = sys.stdin.buffer.read()
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
buf, sent = b"", False
while True:
    try:
        chunk = os.read(fd, 4096)
    except OSError:
        break
    if not chunk:
        break
    buf += chunk
    if not sent and b"(input hidden): " in buf:
        os.write(fd, data if data == b"\\x03" else data + b"\\r")
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.buffer.write(buf)
sys.exit(os.waitstatus_to_exitcode(status))
`;
  const child = spawn("python3", ["-c", script, process.execPath, SECRETSCTL, ...args], {
    env: {
      PATH: process.env.PATH ?? "",
      HOME: work,
      VM_AUTH_HOME: d.dataDir,
      NO_COLOR: "1",
    },
    stdio: ["pipe", "pipe", "inherit"],
  });
  child.stdin.end(input ?? "");
  const out: Buffer[] = [];
  child.stdout.on("data", (b: Buffer) => out.push(b));
  return new Promise((res) =>
    child.on("close", (code) => res({ code, transcript: Buffer.concat(out).toString("utf8") })),
  );
}
