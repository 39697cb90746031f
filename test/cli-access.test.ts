/**
 * secretsctl's access commands end to end: groups, VMs and their tokens, admin tokens, and
 * every way of reaching secretsd (default socket, --socket, --server with --token,
 * --token-file or VM_AUTH_TOKEN, TLS with --ca or VM_AUTH_CA).
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import type { CliRunner } from "./helpers/cli.js";
import { cliSuite, failed, ok, runCli, value } from "./helpers/cli.js";
import type { TestDaemon } from "./helpers/daemon.js";
import type { DaemonProcess } from "./helpers/process.js";
import { spawnTlsDaemon } from "./helpers/tls.js";

const suite = cliSuite("secretsctl-access-");
let d: TestDaemon;
let cli: CliRunner;
let work: string;

beforeAll(async () => {
  ({ d, cli, work } = suite);
});

/** The CLI over TCP, with nothing pointing it at the socket. */
const tcp = (args: readonly string[], env: Record<string, string> = {}, stdin?: string) =>
  runCli([...args, "--server", d.tcp], { env, ...(stdin === undefined ? {} : { stdin }) });
const over = (token: string, ...args: string[]) =>
  runCli([...args, "--server", d.tcp, "--token", token]);

describe("groups", () => {
  test("group add, list (table and --json), remove; a group in use is refused", async () => {
    expect(ok(await cli(["group", "add", "web"]))).toBe("created group web\n");
    ok(await cli(["group", "add", "ml"]));
    ok(await cli(["group", "add", "gone"]));
    ok(await cli(["add", "web-key", "--scope", "group:web", value()]));
    const table = ok(await cli(["group", "list"]))
      .trimEnd()
      .split("\n");
    expect(table[0]?.split(/\s+/)).toEqual(["NAME", "VMS", "SECRETS", "CREATED"]);
    expect(
      table
        .find((l) => l.startsWith("web "))
        ?.split(/\s+/)
        .slice(0, 3),
    ).toEqual(["web", "-", "1"]);
    expect(ok(await cli(["group", "remove", "gone"]))).toBe("removed group gone\n");
    const groups = (
      JSON.parse(ok(await cli(["group", "list", "--json"]))) as {
        groups: { name: string; vms: string[]; secretCount: number; createdAt: string }[];
      }
    ).groups;
    expect(groups.map((g) => [g.name, g.secretCount])).toEqual([
      ["ml", 0],
      ["web", 1],
    ]);
    failed(await cli(["group", "remove", "web"]), 1, /web/);
    expect(ok(await cli(["group", "list"]))).toMatch(/^web /m);
  });
});

describe("vms", () => {
  let t1: string;

  test("vm add prints the token alone on stdout, once; the note goes to stderr", async () => {
    const r = await cli(["vm", "add", "web1", "--group", "web", "--group", "ml"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^vmat_\S+\n$/);
    expect(r.stderr).toBe(
      "secretsctl: vm web1 added; its token is shown once and cannot be retrieved again\n",
    );
    t1 = r.stdout.trim();
    const j = JSON.parse(ok(await cli(["vm", "add", "web2", "--json"]))) as {
      vm: { name: string };
      token: string;
    };
    expect(j.vm.name).toBe("web2");
    expect(j.token).toMatch(/^vmat_/);
    // No listing ever shows a token again.
    expect(ok(await cli(["vm", "list", "--json"]))).not.toContain(t1);
  });

  test("vm list: table and --json", async () => {
    const table = ok(await cli(["vm", "list"]))
      .trimEnd()
      .split("\n");
    expect(table[0]?.split(/\s+/)).toEqual([
      "NAME",
      "GROUPS",
      "CONNECTED",
      "APPLIED",
      "BEHIND",
      "COMPLETE",
      "LAST-SEEN",
      "VERSION",
    ]);
    expect(table[1]?.split(/\s+/).slice(0, 3)).toEqual(["web1", "ml,web", "no"]);
    const vms = (
      JSON.parse(ok(await cli(["vm", "list", "--json"]))) as {
        vms: Record<string, unknown>[];
      }
    ).vms;
    expect(vms[0]).toMatchObject({
      name: "web1",
      groups: ["ml", "web"],
      connected: false,
      appliedRevision: 0,
      lastSeen: null,
      tokenCount: 1,
    });
    expect(Object.keys(vms[0] ?? {}).sort()).toEqual(
      [
        "name",
        "groups",
        "createdAt",
        "tokenCount",
        "connected",
        "appliedRevision",
        "viewRevision",
        "behind",
        "lastSeen",
        "clientVersion",
        "lastRestartedUnits",
        "lastError",
        "diverged",
        "damagedSecrets",
        "missingRequired",
      ].sort(),
    );
  });

  test("vm groups --add/--remove", async () => {
    expect(ok(await cli(["vm", "groups", "web2", "--add", "web", "--add", "ml"]))).toBe(
      "vm web2 groups: ml, web\n",
    );
    const j = JSON.parse(ok(await cli(["vm", "groups", "web2", "--remove", "ml", "--json"]))) as {
      vm: { groups: string[] };
    };
    expect(j.vm.groups).toEqual(["web"]);
  });

  test("a VM token over TCP exports its own VM, and nothing else", async () => {
    const dot = ok(await over(t1, "export", "web1"));
    expect(dot).toMatch(/^# written by secretsctl export web1 \(vm-auth /);
    expect(dot).toMatch(/^WEB_KEY='/m);
    // The VM may be left out: the token names it.
    expect(ok(await over(t1, "export", "--format", "json"))).toContain('"WEB_KEY"');
    const msg = failed(await over(t1, "export", "web2"), 4, "secretsctl: vm: ");
    expect(msg).toContain("web2");
    failed(await over(t1, "list"), 4, "a VM token may only call EnvService");
    failed(await over(t1, "get", "web-key"), 4, "a VM token may only call EnvService");
  });

  test("vm token: a new token revokes the others unless --keep", async () => {
    const r = await cli(["vm", "token", "web1"]);
    expect(r.stdout).toMatch(/^vmat_\S+\n$/);
    expect(r.stderr).toContain("its other tokens are revoked");
    const t2 = r.stdout.trim();
    failed(await over(t1, "export", "web1"), 4, "authorization: ");
    ok(await over(t2, "export", "web1"));
    const t3 = ok(await cli(["vm", "token", "web1", "--keep"])).trim();
    ok(await over(t2, "export", "web1"));
    ok(await over(t3, "export", "web1"));

    expect(ok(await cli(["vm", "revoke", "web1"]))).toBe("revoked 2 tokens of vm web1\n");
    failed(await over(t2, "export", "web1"), 4, "authorization: unknown or revoked token");
    failed(await over(t3, "export", "web1"), 4, "authorization: unknown or revoked token");
    expect(JSON.parse(ok(await cli(["vm", "revoke", "web1", "--json"])))).toEqual({
      name: "web1",
      revoked: 0,
    });
  });

  test("vm remove (and rm)", async () => {
    ok(await cli(["vm", "add", "short-lived"]));
    expect(ok(await cli(["vm", "remove", "short-lived"]))).toBe("removed vm short-lived\n");
    ok(await cli(["vm", "add", "short-lived2"]));
    ok(await cli(["vm", "rm", "short-lived2"]));
    const names = (
      JSON.parse(ok(await cli(["vm", "list", "--json"]))) as {
        vms: { name: string }[];
      }
    ).vms.map((v) => v.name);
    expect(names).toEqual(["web1", "web2"]);
  });
});

describe("admin tokens over TCP", () => {
  let admin: string;
  let tokenFile: string;

  test("token create prints the token once; it works with --token-file and VM_AUTH_TOKEN", async () => {
    const r = await cli(["token", "create", "ci"]);
    expect(r.stdout).toMatch(/^vmadm_\S+\n$/);
    expect(r.stderr).toContain("shown once");
    admin = r.stdout.trim();
    tokenFile = join(work, "admin.token");
    await writeFile(tokenFile, `${admin}\n`, { mode: 0o600 });

    const v = value();
    ok(await tcp(["add", "remote-added", "--token-file", tokenFile], {}, v));
    expect(ok(await tcp(["get", "remote-added", "--token-file", tokenFile]))).toBe(v);
    const st = JSON.parse(
      ok(
        await runCli(["status", "--json"], {
          env: { VM_AUTH_SERVER: d.tcp, VM_AUTH_TOKEN: admin },
        }),
      ),
    ) as { caller: string; target: string };
    expect(st).toMatchObject({ caller: "admin:ci", target: d.tcp });
    expect(ok(await over(admin, "list"))).toMatch(/^remote-added\s/m);
  });

  test("token list shows names and ids, never a token", async () => {
    ok(await cli(["token", "create", "other"]));
    const table = ok(await cli(["token", "list"]));
    expect(table.split("\n")[0]?.split(/\s+/)).toEqual(["NAME", "ID", "CREATED"]);
    expect(table).toMatch(/^ci\s+\S+\s+/m);
    const json = ok(await cli(["token", "list", "--json"]));
    expect(json).not.toContain(admin);
    expect(json).not.toContain("vmadm_");
    const tokens = (JSON.parse(json) as { adminTokens: { name: string; id: string }[] })
      .adminTokens;
    expect(tokens.map((t) => t.name).sort()).toEqual(["ci", "other"]);
  });

  test("token revoke: the token stops working at once", async () => {
    expect(ok(await cli(["token", "revoke", "ci"]))).toBe("revoked admin token ci\n");
    failed(
      await tcp(["list", "--token-file", tokenFile]),
      4,
      "authorization: unknown or revoked token",
    );
    expect(ok(await cli(["token", "list"]))).not.toMatch(/^ci\s/m);
  });

  test("no token, a wrong token, and token flags on the socket", async () => {
    failed(await tcp(["list"]), 4, "authorization: a bearer token is required");
    failed(await tcp(["list", "--token", "vmadm_not-a-real-token"]), 4, "authorization: ");
    failed(await tcp(["list", "--token", "garbage"]), 4, "authorization: ");
    failed(await cli(["list", "--token", "x"]), 2, "--token is for --server");
    failed(await tcp(["list", "--token", "a", "--token-file", tokenFile]), 2, "not both");
    failed(
      await tcp(["list", "--token-file", join(work, "nope")]),
      1,
      /^secretsctl: token-file: cannot read .*nope \(ENOENT\)$/,
    );
    failed(
      await runCli(["list"], { env: { VM_AUTH_SERVER: d.tcp, VM_AUTH_SOCKET: d.socket } }),
      2,
      "VM_AUTH_SOCKET and VM_AUTH_SERVER are both set",
    );
    // A flag beats the environment.
    ok(await runCli(["list", "--socket", d.socket], { env: { VM_AUTH_SERVER: d.tcp } }));
    // Connection options may also come before the command.
    const fresh = join(work, "fresh.token");
    await writeFile(fresh, ok(await cli(["token", "create", "fresh"])), { mode: 0o600 });
    expect(ok(await runCli(["--server", d.tcp, "--token-file", fresh, "vm", "list"]))).toMatch(
      /^web1\s/m,
    );
  });

  test("--socket and VM_AUTH_SOCKET reach the daemon without VM_AUTH_HOME", async () => {
    expect(ok(await runCli(["list", "--socket", d.socket]))).toMatch(/^remote-added\s/m);
    expect(ok(await runCli(["list"], { env: { VM_AUTH_SOCKET: d.socket } }))).toMatch(
      /^remote-added\s/m,
    );
  });

  test("unreachable server: one line naming it and secretsd, exit 5", async () => {
    const msg = failed(
      await runCli(["list", "--server", "127.0.0.1:1", "--token", "x"]),
      5,
      "127.0.0.1:1",
    );
    expect(msg).toContain("cannot reach secretsd");
    expect(msg).not.toContain("x)");
  });
});

describe("TLS", () => {
  let dir: string;
  let p: DaemonProcess | undefined;
  let token: string;

  beforeAll(async () => {
    ({ dir, p } = await spawnTlsDaemon("vm-auth-cli-tls-"));
    token = ok(
      await runCli(["token", "create", "tls"], { env: { VM_AUTH_HOME: join(dir, "data") } }),
    ).trim();
  });
  afterAll(async () => {
    p?.child.kill("SIGTERM");
    await p?.exited;
  });

  test("--ca and VM_AUTH_CA verify the server; without them the call fails on one line", async () => {
    const server = p?.tcp ?? "";
    const st = JSON.parse(
      ok(
        await runCli([
          "status",
          "--json",
          "--server",
          server,
          "--token",
          token,
          "--ca",
          join(dir, "cert.pem"),
        ]),
      ),
    ) as { caller: string };
    expect(st.caller).toBe("admin:tls");
    ok(
      await runCli(["list"], {
        env: { VM_AUTH_SERVER: server, VM_AUTH_TOKEN: token, VM_AUTH_CA: join(dir, "cert.pem") },
      }),
    );
    // Plaintext against TLS, and the system CAs against a self-signed certificate.
    failed(await runCli(["status", "--server", server, "--token", token]), 5, server);
    failed(await runCli(["status", "--server", server, "--token", token, "--tls"]), 5, server);
    failed(
      await runCli(["status", "--server", server, "--token", token, "--ca", join(dir, "none.pem")]),
      1,
      "ca: cannot read",
    );
  });
});
