/**
 * secretsctl's `oauth` commands, `get --host-only` and the shim's `login` / `refresh`, run as
 * built programs against a real secretsd and a real OAuth provider (oidc-provider behind
 * test/helpers/oauth-provider.ts), with the test playing the user (test/helpers/oauth-user.ts).
 * Every token the provider issued is checked absent from listings and diagnostics.
 */
import { spawn } from "node:child_process";
import { chmod, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import {
  discover,
  pollDeviceToken,
  startDeviceAuthorization,
} from "../server/oauth/protocol/index.js";
import type { CliResult, CliRunner, CliSuite } from "./helpers/cli.js";
import { cliSuite, failed, ok, SECRETSCTL, use } from "./helpers/cli.js";
import { type OAuthProvider, startOAuthProvider } from "./helpers/oauth-provider.js";
import { approveDevice, authorizeInBrowser } from "./helpers/oauth-user.js";
import { secretValue } from "./helpers/values.js";

const SHIM = resolve(import.meta.dirname, "../dist/shim.cjs");
const suite: CliSuite = cliSuite("secretsctl-oauth-");
let cli: CliRunner;
let op: OAuthProvider;
/** A confidential client at a second provider. */
let conf: OAuthProvider;
/** Every stdout and stderr of the programs spawned here by hand. */
const spawnedOutput: string[] = [];

beforeAll(async () => {
  cli = suite.cli;
  // Long-lived access tokens: the daemon's scheduler stays quiet while the tests look.
  [op, conf] = await Promise.all([
    startOAuthProvider({ accessTokenTtlSec: 600 }),
    startOAuthProvider({ accessTokenTtlSec: 600, clientSecret: `${secretValue("cs")}:+/` }),
  ]);
});

afterAll(async () => {
  // Registered for the cliSuite check that no token reached any stderr of runCli.
  for (const p of [op, conf]) {
    for (const t of [...(p?.issued.refreshTokens ?? []), ...(p?.issued.accessTokens ?? [])]) {
      use(t);
    }
  }
  const spawned = spawnedOutput.join("\n");
  for (const t of allTokens()) expect(spawned.includes(t)).toBe(false);
  await Promise.all([op?.stop(), conf?.stop()]);
});

/** `oauth add NAME` at the public client of `op`, with the flags given. */
const addArgs = (name: string, ...more: string[]) => [
  "oauth",
  "add",
  name,
  "--preset",
  "oidc",
  "--issuer",
  op.issuer,
  "--client-id",
  op.clientId,
  "--oauth-scope",
  "openid offline_access",
  ...more,
];

describe("bad input", () => {
  test("unknown preset, missing --client-id, empty stdin, a missing issuer: one line, exit 1", async () => {
    const [preset, noPreset, noClient, noToken, noIssuer, env] = await Promise.all([
      cli(["oauth", "add", "x", "--preset", "okta", "--client-id", "c"]),
      cli(["oauth", "add", "x", "--client-id", "c"]),
      cli(["oauth", "add", "x", "--preset", "oidc"]),
      cli([...addArgs("x"), "--refresh-token"], { stdin: "" }),
      cli(["oauth", "add", "x", "--preset", "oidc", "--client-id", "c"]),
      cli([...addArgs("x"), "--env", "PATH"]),
    ]);
    failed(preset, 1, /^secretsctl: preset: 'okta' is unknown/);
    failed(noPreset, 1, "preset: is required");
    failed(noClient, 1, "client_id: is required");
    failed(noToken, 1, "refresh_token");
    failed(noIssuer, 1, "issuer");
    failed(env, 1, "env");
  });

  test("usage errors exit 2; two secrets from stdin need two lines", async () => {
    const [oneLine, both, inline, missing] = await Promise.all([
      cli([...addArgs("x"), "--client-secret", "--refresh-token"], { stdin: "only-one\n" }),
      cli(["oauth", "login", "x", "--device", "--browser"]),
      cli([...addArgs("x"), "--client-secret=abc123"]),
      cli(["oauth", "refresh", "nope"]),
    ]);
    failed(oneLine, 2, "two lines");
    failed(both, 2, "not both");
    expect(failed(inline, 2, "takes no value")).not.toContain("abc123");
    failed(missing, 3, "nope");
  });
});

describe("a public client, logged in with the device grant", () => {
  test("oauth add without a token: needs login, in the table and in --json", async () => {
    const out = ok(await cli(addArgs("gh", "--env", "OIDC_TOKEN", "--expires-env", "OIDC_EXP")));
    expect(out).toBe(
      "added gh: OIDC_TOKEN at global, state needs login (run secretsctl oauth login gh)\n",
    );
    const table = ok(await cli(["oauth", "list"]))
      .trimEnd()
      .split("\n");
    expect(table[0]?.split(/\s+/)).toEqual([
      "NAME",
      "PRESET",
      "STATE",
      "EXPIRES",
      "LAST-REFRESH",
      "NEXT-REFRESH",
      "SCOPE",
      "LAST-ERROR",
    ]);
    expect(table.find((l) => l.startsWith("gh "))?.split(/ {2,}/)).toEqual([
      "gh",
      "oidc",
      "needs login",
      "-",
      "never",
      "-",
      "global",
      "-",
    ]);
    expect(await credential("gh")).toMatchObject({
      state: "needs_login",
      hasRefreshToken: false,
      scopes: ["openid", "offline_access"],
      env: "OIDC_TOKEN",
      expiresEnv: "OIDC_EXP",
      deviceLoginSupported: true,
      revocationSupported: true,
    });
  });

  test("Ctrl-C while waiting cancels the login and exits 130", async () => {
    const first = await spawnWaiting([SECRETSCTL, "oauth", "login", "gh", "--device"], "stderr");
    first.child.kill("SIGINT");
    const r = await first.done;
    expect(r.code).toBe(130);
    expect(r.stderr.trimEnd().split("\n").at(-1)).toBe(
      "secretsctl: interrupted: the login was cancelled",
    );
    // A login still pending would be handed out again, with the same code: this one is new.
    // --no-wait prints the login id on stdout; asking again while it is pending gets it again.
    const next = await cli(["oauth", "login", "gh", "--device", "--no-wait"]);
    const loginId = ok(next);
    expect(loginId).toMatch(/^\S+\n$/);
    expect(next.stderr).toContain("Not waiting");
    expect(userCode(next.stderr)).not.toBe(first.code);
    expect(ok(await cli(["oauth", "login", "gh", "--device", "--no-wait"]))).toBe(loginId);
    await approveDevice(op.issuer, userCode(next.stderr));
    await until(async () => (await credential("gh")).state === "ok");
    // Logged out again, so that the next test logs in while the CLI waits.
    ok(await cli(["oauth", "logout", "gh"]));
  });

  test("oauth login --device: prompt on stderr, the test approves, the result on stdout", async () => {
    const run = await spawnWaiting([SECRETSCTL, "oauth", "login", "gh", "--device"], "stderr");
    await approveDevice(op.issuer, run.code);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^logged in gh: access token version \d+\n$/);
    expect(r.stderr).toMatch(new RegExp(`^Open ${op.issuer}/device and enter code ${run.code}\n`));
    expect(r.stderr).toContain("Ctrl-C cancels");
    const c = await credential("gh");
    expect(c).toMatchObject({ state: "ok", hasRefreshToken: true, lastError: "" });
    expect(Date.parse(String(c.expiresAt)) - Date.now()).toBeGreaterThan(500_000);
    const row = ok(await cli(["oauth", "list"]))
      .split("\n")
      .find((l) => l.startsWith("gh "));
    expect(row?.split(/ {2,}/)[2]).toBe("ok");
    expect(row?.split(/ {2,}/)[3]).toMatch(/^in (9|10)m$/);
  });

  test("get prints the access token; --host-only the refresh token, and only with the flag", async () => {
    const access = op.issued.accessTokens.at(-1) ?? "";
    const refresh = op.issued.refreshTokens.at(-1) ?? "";
    const [plain, json, hostOnly, hostOnlyJson, help] = await Promise.all([
      cli(["get", "gh"]),
      cli(["get", "gh", "--json"]),
      cli(["get", "gh", "--host-only"]),
      cli(["get", "gh", "--host-only", "--json"]),
      cli(["get", "--help"]),
    ]);
    expect(ok(plain)).toBe(access);
    expect(ok(json)).not.toContain(refresh);
    expect(ok(hostOnly)).toBe(`refresh_token=${refresh}\n`);
    expect(JSON.parse(ok(hostOnlyJson))).toMatchObject({
      name: "gh",
      value: access,
      refreshToken: refresh,
      clientSecret: null,
    });
    expect(ok(help)).toMatch(/--host-only.*audited/);
  });

  test("oauth refresh: a new version with its expiry", async () => {
    const before = (await credential("gh")).version as number;
    const out = ok(await cli(["oauth", "refresh", "gh"]));
    expect(out).toMatch(new RegExp(`^refreshed gh: version ${before + 1}, expires in (9|10)m\n$`));
    expect(ok(await cli(["get", "gh"]))).toBe(op.issued.accessTokens.at(-1));
  });

  test("oauth logout revokes at the provider; the credential needs login again", async () => {
    const refresh = op.issued.refreshTokens.at(-1) ?? "";
    expect(await op.introspect(refresh)).toEqual({ active: true });
    expect(ok(await cli(["oauth", "logout", "gh"]))).toBe(
      "logged out gh (revoked at the provider)\n",
    );
    expect(await op.introspect(refresh)).toEqual({ active: false });
    expect(await credential("gh")).toMatchObject({ state: "needs_login", hasRefreshToken: false });
    failed(await cli(["get", "gh"]), 1, "gh");
  });
});

describe("a login in a browser on the host", () => {
  test("oauth login --browser: the URL on stderr; the redirect reaches secretsd", async () => {
    const run = await spawnWaiting(
      [SECRETSCTL, "oauth", "login", "gh", "--browser"],
      "stderr",
      /in a browser on this host:\n {2}(\S+)\n/,
    );
    expect(await authorizeInBrowser(run.code)).toBe(200);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^logged in gh: access token version \d+\n$/);
    expect(await credential("gh")).toMatchObject({ state: "ok", hasRefreshToken: true });
  });
});

describe("imported tokens", () => {
  test("oauth add --refresh-token reads stdin, proves it with one refresh: state ok", async () => {
    const rt = await deviceLoginAt(op);
    const out = ok(
      await cli([...addArgs("imp", "--env", "IMP_TOKEN"), "--refresh-token"], { stdin: `${rt}\n` }),
    );
    expect(out).toBe("added imp: IMP_TOKEN at global, state ok\n");
    expect(await credential("imp")).toMatchObject({
      state: "ok",
      hasRefreshToken: true,
      version: 1,
    });
    // The first refresh rotated it: the imported token is dead, the stored one is the new one.
    expect(await op.introspect(rt)).toEqual({ active: false });
    expect(ok(await cli(["get", "imp", "--host-only"]))).toBe(
      `refresh_token=${op.issued.refreshTokens.at(-1)}\n`,
    );
    // A refused token stores nothing.
    const bad = await cli([...addArgs("imp2"), "--refresh-token"], { stdin: rt });
    failed(bad, 1, "refresh_token");
    expect((await list()).map((c) => c.name)).not.toContain("imp2");
  });

  test("a confidential client: client secret and refresh token as two stdin lines", async () => {
    const rt = await deviceLoginAt(conf);
    const secret = conf.clientSecret ?? "";
    const args = [
      "oauth",
      "add",
      "conf",
      "--preset",
      "oidc",
      "--issuer",
      conf.issuer,
      "--client-id",
      conf.clientId,
      "--oauth-scope",
      "openid",
      "--oauth-scope",
      "offline_access",
      "--env",
      "CONF_TOKEN",
      "--scope",
      "global",
      "--client-secret",
      "--refresh-token",
      "--json",
    ];
    const j = JSON.parse(ok(await cli(args, { stdin: `${secret}\n${rt}\n` }))) as {
      credential: Record<string, unknown>;
    };
    expect(j.credential).toMatchObject({ name: "conf", state: "ok", confidential: true });
    expect(ok(await cli(["get", "conf", "--host-only"]))).toBe(
      `refresh_token=${conf.issued.refreshTokens.at(-1)}\nclient_secret=${secret}\n`,
    );
  });
});

describe("listings never hold a token", () => {
  test("oauth list, --json and list --json: no token the providers issued", async () => {
    const runs = await Promise.all([
      cli(["oauth", "list"]),
      cli(["oauth", "list", "--json"]),
      cli(["list", "--json"]),
    ]);
    const tokens = allTokens();
    expect(tokens.length).toBeGreaterThan(6);
    for (const r of runs) {
      ok(r);
      for (const t of tokens) {
        expect(r.stdout.includes(t)).toBe(false);
        expect(r.stderr.includes(t)).toBe(false);
      }
    }
  });
});

describe("the shim", () => {
  test("vm-auth-shim login NAME (device grant) and refresh NAME, with the VM's token", async () => {
    const token = ok(await cli(["vm", "add", "web1"])).trim();
    const tokenFile = join(suite.work, "vm.token");
    await writeFile(tokenFile, `${token}\n`);
    await chmod(tokenFile, 0o600);
    const config = join(suite.work, "shim.json");
    await writeFile(config, "{}\n");
    ok(await cli(addArgs("vmcred", "--env", "VMCRED_TOKEN", "--scope", "vm:web1")));
    const shim = (...args: string[]) => [
      SHIM,
      ...args,
      "--server",
      suite.d.tcp,
      "--token-file",
      tokenFile,
      "--config",
      config,
    ];
    const run = await spawnWaiting(shim("login", "vmcred"), "stdout");
    await approveDevice(op.issuer, run.code);
    const r = await run.done;
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/enter code/);
    expect(r.stdout.trimEnd().split("\n").at(-1)).toBe(
      "done: the access token will arrive with the next env update",
    );
    expect(await credential("vmcred")).toMatchObject({ state: "ok", scope: "vm:web1" });
    const refreshed = await runNode(shim("refresh", "vmcred"));
    expect(refreshed.code, refreshed.stderr).toBe(0);
    // A token refreshed less than 10 s ago is answered as it is (the per-VM rate limit).
    expect(refreshed.stdout).toMatch(/^refreshed vmcred: version 1, expires at \S+Z; /);
    // A credential the VM does not see: one line, exit 1.
    const denied = await runNode(shim("refresh", "nope"));
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/^vm-auth-shim: .*\n$/);
    const usage = await runNode([SHIM, "login"]);
    expect([usage.code, usage.stderr]).toEqual([1, "vm-auth-shim: login: give NAME\n"]);
  });
});

// --- helpers ---

/** The device prompt's first line, with the user code. */
const DEVICE_PROMPT = /enter code (\S+)\n/;

interface Waiting {
  child: ReturnType<typeof spawn>;
  /** What `pattern` captured: the user code, or the URL to open. */
  code: string;
  done: Promise<CliResult>;
}

/** Spawns `node argv` and resolves once `pattern` shows on `stream`, while it waits. */
async function spawnWaiting(
  argv: string[],
  stream: "stdout" | "stderr",
  pattern: RegExp = DEVICE_PROMPT,
): Promise<Waiting> {
  const { child, out, done } = spawnNode(argv);
  const code = await new Promise<string>((res, rej) => {
    const timer = setTimeout(() => {
      child.kill();
      rej(new Error(`${pattern} not printed within 10 s: ${out.stderr}`));
    }, 10_000);
    child[stream].on("data", () => {
      const m = pattern.exec(out[stream]);
      if (m?.[1]) {
        clearTimeout(timer);
        res(m[1]);
      }
    });
    void done.then(() => {
      clearTimeout(timer);
      rej(new Error(`exited before printing ${pattern}: ${out.stderr}`));
    });
  });
  return { child, code, done };
}

function runNode(argv: string[]): Promise<CliResult> {
  return spawnNode(argv).done;
}

function spawnNode(argv: string[]) {
  const child = spawn(process.execPath, argv, {
    env: childEnv(),
    stdio: ["ignore", "pipe", "pipe"],
  });
  const out = { stdout: "", stderr: "" };
  child.stdout.on("data", (b: Buffer) => {
    out.stdout += b.toString();
  });
  child.stderr.on("data", (b: Buffer) => {
    out.stderr += b.toString();
  });
  const done = new Promise<CliResult>((res, rej) => {
    child.on("error", rej);
    child.on("close", (code) => {
      spawnedOutput.push(out.stdout, out.stderr);
      res({ ...out, code });
    });
  });
  return { child, out, done };
}

/** What runCli gives the CLI, bound to the suite's daemon. */
function childEnv(): Record<string, string> {
  return {
    PATH: process.env.PATH ?? "/usr/bin:/bin",
    HOME: join(tmpdir(), "secretsctl-test-home-without-daemon"),
    NO_COLOR: "1",
    VM_AUTH_HOME: suite.d.dataDir,
  };
}

function userCode(stderr: string): string {
  const m = DEVICE_PROMPT.exec(stderr);
  if (!m?.[1]) throw new Error(`no user code in: ${stderr}`);
  return m[1];
}

type CredentialJson = Record<string, unknown> & { name: string };

async function list(): Promise<CredentialJson[]> {
  return (
    JSON.parse(ok(await cli(["oauth", "list", "--json"]))) as { credentials: CredentialJson[] }
  ).credentials;
}

async function credential(name: string): Promise<CredentialJson> {
  const c = (await list()).find((x) => x.name === name);
  if (!c) throw new Error(`no oauth credential ${name}`);
  return c;
}

/** A refresh token got by a device login straight at `p` (not through secretsd). */
async function deviceLoginAt(p: OAuthProvider): Promise<string> {
  const endpoints = await discover(p.issuer);
  const client = {
    clientId: p.clientId,
    ...(p.clientSecret ? { clientSecret: p.clientSecret } : {}),
  };
  const d = await startDeviceAuthorization(endpoints, client, ["openid", "offline_access"]);
  await approveDevice(p.issuer, d.userCode);
  const tokens = await pollDeviceToken(endpoints, client, d.deviceCode, {
    intervalMs: 200,
    expiresAt: d.expiresAt,
  });
  if (!tokens.refreshToken) throw new Error("the provider issued no refresh token");
  return tokens.refreshToken;
}

function allTokens(): string[] {
  return [op, conf].flatMap((p) => [
    ...(p?.issued.refreshTokens ?? []),
    ...(p?.issued.accessTokens ?? []),
  ]);
}

async function until(check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 200));
  }
}
