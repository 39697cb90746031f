/**
 * The OAuth broker end to end (issue #10): a real secretsd (in-process, real gRPC) against a
 * real OpenID provider (oidc-provider behind a front door, test/helpers/oauth-provider.ts)
 * with access tokens of a few seconds and refresh-token rotation on; the test plays the user
 * on the provider's own pages. Every token the provider issues, and the client secret, is
 * registered for the suite's leak scan of every log, audit and store file; stream frames,
 * GetEnv answers and listings are scanned here.
 */
import { spawn } from "node:child_process";
import {
  appendFileSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { isClientError } from "../client/index.js";
import { OauthLoginMethod, OauthLoginState, OauthState } from "../proto/gen/vmauth/v1/oauth_pb.js";
import type { TestDaemon } from "./helpers/daemon.js";
import { startDaemon } from "./helpers/daemon.js";
import type { OAuthProvider } from "./helpers/oauth-provider.js";
import { credentialFor, startOAuthProvider } from "./helpers/oauth-provider.js";
import { approveDevice, authorizeInBrowser } from "./helpers/oauth-user.js";
import { testRoot } from "./helpers/values.js";
import { openWatch } from "./helpers/watch.js";

const SHIM = resolve(import.meta.dirname, "../dist/shim.cjs");

const TTL = 3;
let p: OAuthProvider;
let d: TestDaemon;

beforeAll(async () => {
  p = await startOAuthProvider({
    accessTokenTtlSec: TTL,
    deviceInterval: 1,
    clientSecret: "cs-test-broker-0123456789abcdef",
  });
  d = await startDaemon({
    heartbeatMs: 500,
    server: { oauthVmRefreshIntervalMs: 1000, oauthSlowDownStepMs: 200 },
  });
});

afterAll(async () => {
  await d?.dispose();
  await p?.stop();
});

/** Adds a credential against the test provider, confidential client, with an expiry var. */
async function addCredential(
  name: string,
  scope = "global",
  env = name.toUpperCase().replace(/-/g, "_"),
  provider = p,
) {
  const p = provider;
  await d.client.oauth.addOAuth(
    credentialFor(p, { name, env, expiresEnv: `${env}_EXPIRES_AT`, scope }),
  );
}

/** A device login from the host, the test approving it as the user. */
async function deviceLogin(name: string, provider = p) {
  const p = provider;
  const start = await d.client.oauth.startOAuthLogin({ name, method: OauthLoginMethod.DEVICE });
  expect(start.userCode).not.toBe("");
  await approveDevice(p.issuer, start.userCode);
  const done = await d.client.oauth.waitOAuthLogin(
    { loginId: start.loginId, waitMs: 10_000 },
    { deadlineMs: 15_000 },
  );
  expect(done.state, done.error).toBe(OauthLoginState.DONE);
  return done;
}

async function credential(name: string) {
  const { credentials } = await d.client.oauth.listOAuth({});
  const c = credentials.find((x) => x.name === name);
  if (!c) throw new Error(`no credential ${name}`);
  return c;
}

async function hostOnly(name: string) {
  return d.client.secrets.getSecretValue({ name, includeHostOnly: true });
}

async function until(pred: () => boolean | Promise<boolean>, what: string, ms = 8000) {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function json(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (typeof x === "bigint" ? String(x) : x));
}

/** No refresh token or client secret in `bytes`. */
function expectNoHostSecrets(bytes: string) {
  for (const t of p.issued.refreshTokens)
    expect(bytes.includes(t), "refresh token leaked").toBe(false);
  if (p.clientSecret) expect(bytes.includes(p.clientSecret), "client secret leaked").toBe(false);
}

/** A provider of its own, so that what the test counts and breaks is this credential's alone. */
async function ownProvider(ttl = TTL) {
  const own = await startOAuthProvider({
    accessTokenTtlSec: ttl,
    deviceInterval: 1,
    clientSecret: "cs-test-broker-own-0123456789",
  });
  providers.push(own);
  return own;
}
const providers: OAuthProvider[] = [];
afterAll(async () => {
  await Promise.all(providers.map((x) => x.stop()));
});

describe("device login on the host, then refreshes ahead of expiry", () => {
  test("a watching VM always holds an unexpired access token over several refresh cycles", async () => {
    const { token } = await d.client.access.createVm({ name: "vm-cycles" });
    await addCredential("cycles");
    expect((await credential("cycles")).state).toBe(OauthState.NEEDS_LOGIN);
    await deviceLogin("cycles");
    const vmClient = d.tcpClient(token);
    const w = openWatch(vmClient, {});
    const seen = new Map<string, number>(); // access token → its expiry
    let violations = 0;
    const t0 = Date.now();
    // Sample the VM's latest view every 50 ms for three lifetimes and a bit.
    while (Date.now() - t0 < TTL * 3000 + 1500) {
      const snaps = w.snapshots();
      const last = snaps[snaps.length - 1];
      if (last && "vars" in last) {
        const vars = new Map(last.vars.map((v) => [v.name, v.value]));
        const at = vars.get("CYCLES");
        const exp = Date.parse(vars.get("CYCLES_EXPIRES_AT") ?? "");
        if (at) seen.set(at, exp);
        if (!at || !(exp > Date.now())) violations++;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    w.cancel();
    expect(violations).toBe(0);
    // A login and at least three scheduled refreshes, each a new token the VM received.
    expect(seen.size).toBeGreaterThanOrEqual(4);
    const frames = w.frames.map((f) => json(f)).join("\n");
    expectNoHostSecrets(frames);
    // The token the VM holds now works at the provider.
    const current = [...seen.keys()].pop() as string;
    expect((await p.introspect(current)).active).toBe(true);
    const c = await credential("cycles");
    expect(c.state).toBe(OauthState.OK);
    expect(c.lastError).toBe("");
    expect(c.nextRefreshAt).toBeDefined();
    expectNoHostSecrets(json(c));
  }, 30_000);
});

describe("login with the authorization code grant and PKCE over a loopback redirect", () => {
  test("the user consents in the browser; the redirect lands on secretsd; the token is stored", async () => {
    await addCredential("pkce");
    const start = await d.client.oauth.startOAuthLogin({
      name: "pkce",
      method: OauthLoginMethod.CODE,
    });
    const url = new URL(start.authorizationUrl);
    expect(url.searchParams.get("code_challenge_method")).toBe("S256");
    expect(url.searchParams.get("redirect_uri")).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
    expect(url.searchParams.get("state")?.length).toBeGreaterThanOrEqual(20);
    expect(start.userCode).toBe("");
    expect(await authorizeInBrowser(start.authorizationUrl)).toBe(200);
    const done = await d.client.oauth.waitOAuthLogin(
      { loginId: start.loginId, waitMs: 10_000 },
      { deadlineMs: 15_000 },
    );
    expect(done.state, done.error).toBe(OauthLoginState.DONE);
    const v = await d.client.secrets.getSecretValue({ name: "pkce" });
    expect((await p.introspect(v.value)).active).toBe(true);
  });

  test("a redirect with the wrong state is refused and the login fails, storing nothing", async () => {
    await addCredential("pkce-bad");
    const start = await d.client.oauth.startOAuthLogin({
      name: "pkce-bad",
      method: OauthLoginMethod.CODE,
    });
    const url = new URL(start.authorizationUrl);
    const redirect = new URL(url.searchParams.get("redirect_uri") as string);
    redirect.searchParams.set("code", "forged-code");
    redirect.searchParams.set("state", "not-the-state");
    redirect.searchParams.set("iss", p.issuer);
    await fetch(redirect);
    const done = await d.client.oauth.waitOAuthLogin({ loginId: start.loginId, waitMs: 5000 });
    expect(done.state).toBe(OauthLoginState.FAILED);
    expect(done.error).toMatch(/state does not match/);
    expect((await credential("pkce-bad")).state).toBe(OauthState.NEEDS_LOGIN);
  });
});

describe("a device login started from a VM", () => {
  test("the VM sees only the URL and code; the host polls and stores; the VM gets the token", async () => {
    const { token } = await d.client.access.createVm({ name: "vm-login" });
    const { token: otherToken } = await d.client.access.createVm({ name: "vm-nosy" });
    await addCredential("bound", "vm:vm-login");
    const vm = d.tcpClient(token);
    const nosy = d.tcpClient(otherToken);
    // Another VM cannot start it, the code grant is not for VMs, and a global one is not bound.
    await expect(nosy.oauth.startOAuthLogin({ name: "bound" })).rejects.toMatchObject({
      code: "permission_denied",
    });
    await expect(
      vm.oauth.startOAuthLogin({ name: "bound", method: OauthLoginMethod.CODE }),
    ).rejects.toMatchObject({
      code: "permission_denied",
    });
    await expect(vm.oauth.startOAuthLogin({ name: "cycles" })).rejects.toMatchObject({
      code: "permission_denied",
    });
    const w = openWatch(vm, {});
    const start = await vm.oauth.startOAuthLogin({ name: "bound" });
    expect(start.method).toBe(OauthLoginMethod.DEVICE);
    expect(start.verificationUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/device$/);
    expect(start.authorizationUrl).toBe("");
    // Another VM learns nothing of this login.
    await expect(nosy.oauth.waitOAuthLogin({ loginId: start.loginId })).rejects.toMatchObject({
      code: "not_found",
    });
    await approveDevice(p.issuer, start.userCode);
    const done = await vm.oauth.waitOAuthLogin(
      { loginId: start.loginId, waitMs: 10_000 },
      { deadlineMs: 15_000 },
    );
    expect(done.state, done.error).toBe(OauthLoginState.DONE);
    await w.until(() =>
      w.snapshots().some((s) => s && "vars" in s && s.vars.some((v) => v.name === "BOUND")),
    );
    w.cancel();
    expectNoHostSecrets(w.frames.map(json).join("\n"));
    // The other VM may not refresh it; the bound VM may.
    await expect(nosy.oauth.refreshOAuth({ name: "bound" })).rejects.toMatchObject({
      code: "permission_denied",
    });
    await new Promise((r) => setTimeout(r, 1100));
    const r = await vm.oauth.refreshOAuth({ name: "bound" });
    expect(r.version).toBeGreaterThan(done.version);
    // Right after, a second ask within the VM's interval is answered with that same token.
    expect((await vm.oauth.refreshOAuth({ name: "bound" })).version).toBe(r.version);
  }, 20_000);
});

describe("one refresh coordinator", () => {
  test("concurrent refreshes of one credential share one call to the provider", async () => {
    // Its own provider, and tokens that the scheduler will not refresh during the test: the
    // count is of these eight calls alone.
    const p = await ownProvider(60);
    await addCredential("single", "global", undefined, p);
    await deviceLogin("single", p);
    const before = p.frontDoor.tokenRequestsFor("refresh_token");
    p.frontDoor.holdToken(300);
    const all = await Promise.all(
      Array.from({ length: 8 }, () => d.client.oauth.refreshOAuth({ name: "single" })),
    );
    expect(new Set(all.map((r) => r.version)).size).toBe(1);
    expect(p.frontDoor.tokenRequestsFor("refresh_token") - before).toBe(1);
  });
});

describe("failures", () => {
  test("5xx on the token endpoint: backoff, the token is kept, then recovery", async () => {
    const p = await ownProvider();
    await addCredential("flaky", "global", undefined, p);
    await deviceLogin("flaky", p);
    const v0 = (await credential("flaky")).version;
    const before = p.frontDoor.tokenRequestsFor("refresh_token");
    p.frontDoor.failToken(2, "before", 503);
    await expect(d.client.oauth.refreshOAuth({ name: "flaky" })).rejects.toMatchObject({
      code: "unavailable",
    });
    const failing = await credential("flaky");
    expect(failing.state).toBe(OauthState.ERROR);
    expect(failing.lastError).toMatch(/503/);
    expect(failing.version).toBe(v0); // the access token is kept
    // The scheduler retries with backoff and recovers once the provider answers again.
    await until(
      async () => (await credential("flaky")).state === OauthState.OK,
      "recovered",
      10_000,
    );
    const ok = await credential("flaky");
    expect(ok.version).toBeGreaterThan(v0);
    expect(ok.lastError).toBe("");
    // Two refused (one by hand, one by the scheduler's first retry) and one that worked: no storm.
    expect(p.frontDoor.tokenRequestsFor("refresh_token") - before).toBeLessThanOrEqual(4);
  }, 20_000);

  test("a refresh token revoked at the provider: needs login at once, no retry storm", async () => {
    const p = await ownProvider();
    await addCredential("revoked", "global", undefined, p);
    await deviceLogin("revoked", p);
    const rt = (await hostOnly("revoked")).refreshToken;
    await p.revokeRefreshToken(rt);
    const before = p.frontDoor.tokenRequestsFor("refresh_token");
    await expect(d.client.oauth.refreshOAuth({ name: "revoked" })).rejects.toMatchObject({
      code: "failed_precondition",
      message: expect.stringMatching(/needs login.*oauth login revoked/),
    });
    const c = await credential("revoked");
    expect(c.state).toBe(OauthState.NEEDS_LOGIN);
    // Past when the scheduler would have refreshed it twice over: nothing more was sent.
    await new Promise((r) => setTimeout(r, TTL * 1000));
    await expect(d.client.oauth.refreshOAuth({ name: "revoked" })).rejects.toMatchObject({
      code: "failed_precondition",
    });
    expect(p.frontDoor.tokenRequestsFor("refresh_token") - before).toBe(1);
    const status = await d.client.system.getStatus({});
    expect(status.oauthAttention.join("\n")).toMatch(
      /^revoked: needs login: the provider refused the refresh token/m,
    );
    const audit = await d.client.system.listAuditEvents({ secret: "revoked" });
    expect(
      audit.events.some((e) => e.action === "oauth.refresh" && e.result === "failed_precondition"),
    ).toBe(true);
  }, 20_000);

  test("a response lost after the provider rotated: needs login, said plainly, never a loop", async () => {
    const p = await ownProvider();
    await addCredential("lost", "global", undefined, p);
    await deviceLogin("lost", p);
    const before = p.frontDoor.tokenRequestsFor("refresh_token");
    p.frontDoor.failToken(1, "after", 502);
    await expect(d.client.oauth.refreshOAuth({ name: "lost" })).rejects.toMatchObject({
      code: "unavailable",
    });
    // The scheduler's retry presents the old token: the provider sees a reuse and says no.
    await until(
      async () => (await credential("lost")).state === OauthState.NEEDS_LOGIN,
      "needs login",
      10_000,
    );
    const c = await credential("lost");
    expect(c.lastError).toMatch(/no answer.*rotated/);
    await new Promise((r) => setTimeout(r, 1500));
    expect(p.frontDoor.tokenRequestsFor("refresh_token") - before).toBe(2);
  }, 20_000);
});

describe("the host-only half", () => {
  test("refresh token and client secret: only with the explicit flag, and that read is audited", async () => {
    await addCredential("hostonly");
    await deviceLogin("hostonly");
    const plain = await d.client.secrets.getSecretValue({ name: "hostonly" });
    expect(plain.refreshToken).toBe("");
    expect(plain.clientSecret).toBe("");
    const host = await hostOnly("hostonly");
    expect(p.issued.refreshTokens).toContain(host.refreshToken);
    expect(host.clientSecret).toBe(p.clientSecret);
    const audit = readFileSync(join(d.dataDir, "audit.log"), "utf8").split("\n");
    const read = audit.filter((l) => l.includes('"secret.read"') && l.includes('"hostonly"'));
    expect(read.some((l) => l.includes("host-only: refreshToken,clientSecret"))).toBe(true);
    // Listings and every VM-facing answer never hold them.
    expectNoHostSecrets(json(await d.client.secrets.listSecrets({})));
    expectNoHostSecrets(json(await d.client.oauth.listOAuth({})));
    expectNoHostSecrets(json(await d.client.env.getEnv({ vm: "vm-cycles" })));
  });

  test("logout revokes at the provider, then forgets: the VMs lose the token", async () => {
    await addCredential("bye");
    await deviceLogin("bye");
    const rt = (await hostOnly("bye")).refreshToken;
    const r = await d.client.oauth.logoutOAuth({ name: "bye" });
    expect(r.revoked).toBe(true);
    expect((await p.introspect(rt)).active).toBe(false);
    const c = await credential("bye");
    expect(c).toMatchObject({ state: OauthState.NEEDS_LOGIN, hasRefreshToken: false, version: 0 });
    const env = await d.client.env.getEnv({ vm: "vm-cycles" });
    expect(env.snapshot?.vars.some((v) => v.name === "BYE")).toBe(false);
  });
});

describe("bad input is refused naming the field, and stores nothing", () => {
  test.each([
    [{ name: "Bad Name", preset: "oidc" }, "invalid_argument", /^name:/],
    [{ name: "x1", preset: "nope", clientId: "c" }, "invalid_argument", /^preset:/],
    [{ name: "x2", preset: "oidc", clientId: "c" }, "invalid_argument", /^issuer:/],
    [{ name: "x3", preset: "github" }, "invalid_argument", /^client_id:/],
    [{ name: "x4", preset: "github", clientId: "c", env: "PATH" }, "invalid_argument", /^env:/],
    [
      { name: "x5", preset: "github", clientId: "c", expiresEnv: "lower" },
      "invalid_argument",
      /^expires_env:/,
    ],
    [{ name: "x6", preset: "github", clientId: "c", scope: "vm:nope" }, "not_found", /scope/],
    [
      {
        name: "x7",
        preset: "oidc",
        clientId: "c",
        endpoints: { token: "http://example.com/token" },
      },
      "invalid_argument",
      /^endpoints\.token:/,
    ],
  ] as const)("%o", async (req, code, message) => {
    const before = (await d.client.secrets.listSecrets({})).revision;
    const err = await d.client.oauth.addOAuth(req).catch((e: unknown) => e);
    expect(isClientError(err), String(err)).toBe(true);
    expect(err).toMatchObject({ code, message: expect.stringMatching(message) });
    expect((await d.client.secrets.listSecrets({})).revision).toBe(before);
  });

  test("the github preset needs no discovery: its endpoints and quirks are known", async () => {
    const r = await d.client.oauth.addOAuth({
      name: "gh-preset",
      preset: "github",
      clientId: "Iv1.0123456789abcdef",
      expiresEnv: "GITHUB_TOKEN_EXPIRES_AT",
    });
    expect(r.credential).toMatchObject({
      preset: "github",
      env: "GITHUB_TOKEN",
      state: OauthState.NEEDS_LOGIN,
      deviceLoginSupported: true,
      codeLoginSupported: true,
      revocationSupported: false,
      confidential: false,
      endpoints: { token: "https://github.com/login/oauth/access_token" },
    });
    await d.client.secrets.deleteSecret({ name: "gh-preset" });
  });

  test("every OAuthService call names the field it refuses", async () => {
    const c = d.client.oauth;
    const cases: [() => Promise<unknown>, string, RegExp][] = [
      [() => c.startOAuthLogin({ name: "" }), "invalid_argument", /^name: is required/],
      [
        () => c.startOAuthLogin({ name: "cycles", method: 9 as OauthLoginMethod }),
        "invalid_argument",
        /^method:/,
      ],
      [() => c.startOAuthLogin({ name: "nope" }), "not_found", /^name: secret 'nope' not found/],
      [() => c.waitOAuthLogin({ loginId: "" }), "invalid_argument", /^login_id: is required/],
      [() => c.waitOAuthLogin({ loginId: "x", waitMs: 70_000 }), "invalid_argument", /^wait_ms:/],
      [() => c.waitOAuthLogin({ loginId: "unknown" }), "not_found", /^login_id:/],
      [() => c.cancelOAuthLogin({ loginId: "unknown" }), "not_found", /^login_id:/],
      [() => c.refreshOAuth({ name: "BAD" }), "invalid_argument", /^name:/],
      [() => c.refreshOAuth({ name: "nope" }), "not_found", /^name:/],
      [() => c.logoutOAuth({ name: "nope" }), "not_found", /^name:/],
    ];
    await d.client.secrets.createSecret({ name: "plain-one", value: "v-0123456789abcdef" });
    cases.push([
      () => c.refreshOAuth({ name: "plain-one" }),
      "failed_precondition",
      /not an oauth credential/,
    ]);
    for (const [call, code, message] of cases) {
      const err = await call().then(
        () => new Error("no error"),
        (e: unknown) => e,
      );
      expect(err, String(err)).toMatchObject({ code, message: expect.stringMatching(message) });
    }
  });

  test("an imported refresh token the provider refuses: INVALID_ARGUMENT, nothing stored", async () => {
    const err = await d.client.oauth
      .addOAuth({
        name: "badimport",
        preset: "oidc",
        issuer: p.issuer,
        clientId: p.clientId,
        clientSecret: p.clientSecret ?? "",
        refreshToken: "not-a-real-refresh-token",
      })
      .catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: "invalid_argument",
      message: expect.stringMatching(/^refresh_token: the provider refused it/),
    });
    await expect(d.client.secrets.getSecretValue({ name: "badimport" })).rejects.toMatchObject({
      code: "not_found",
    });
  });

  test("an imported refresh token that works: proven by one refresh, stored, delivered", async () => {
    const p = await ownProvider(60);
    await addCredential("donor", "global", undefined, p);
    await deviceLogin("donor", p);
    const rt = (await hostOnly("donor")).refreshToken;
    // The donor goes without revoking: its refresh token is still good.
    await d.client.secrets.deleteSecret({ name: "donor" });
    const before = p.frontDoor.tokenRequestsFor("refresh_token");
    const r = await d.client.oauth.addOAuth({
      name: "imported",
      preset: "oidc",
      issuer: p.issuer,
      clientId: p.clientId,
      clientSecret: p.clientSecret ?? "",
      refreshToken: rt,
      scope: "vm:vm-cycles",
    });
    expect(p.frontDoor.tokenRequestsFor("refresh_token") - before).toBe(1);
    expect(r.credential).toMatchObject({
      state: OauthState.OK,
      version: 1,
      env: "OAUTH_ACCESS_TOKEN",
    });
    // The provider rotated it on that refresh: the new one is what is stored.
    const stored = (await hostOnly("imported")).refreshToken;
    expect(stored).not.toBe(rt);
    expect((await p.introspect(stored)).active).toBe(true);
    const env = await d.client.env.getEnv({ vm: "vm-cycles" });
    expect(env.snapshot?.vars.find((v) => v.name === "OAUTH_ACCESS_TOKEN")?.secret).toBe(
      "imported",
    );
  });
});

describe("in the guest", () => {
  test("the built shim's env files hold each fresh access token, never a refresh token or the client secret", async () => {
    const { token } = await d.client.access.createVm({ name: "vm-shim" });
    await addCredential("shimmed", "vm:vm-shim", "SHIM_TOKEN");
    await deviceLogin("shimmed");
    // Env files hold values: outside the suite root (its leak scan would flag the access token).
    const out = mkdtempSync(join(tmpdir(), "vm-auth-oauth-shim-"));
    const kept = join(testRoot() ?? out, "shim-oauth");
    mkdirSync(kept, { recursive: true });
    const sysctl = join(out, "systemctl");
    writeFileSync(sysctl, `#!/bin/sh\necho "$*" >> '${join(out, "systemctl.log")}'\n`, {
      mode: 0o755,
    });
    writeFileSync(join(out, "token"), `${token}\n`, { mode: 0o600 });
    const unitEnv = join(out, "run/env");
    writeFileSync(
      join(out, "shim.json"),
      JSON.stringify({
        server: d.tcp,
        tokenFile: join(out, "token"),
        environmentDFile: join(out, "etc/vm-auth.conf"),
        unitEnvFile: unitEnv,
        lastKnownGoodFile: join(out, "lib/lkg.env"),
        stateFile: join(kept, "state.json"),
        statusFile: join(kept, "status.json"),
        units: [{ name: "agent.service", keys: ["SHIM_TOKEN"] }],
        debounceMs: 20,
        systemctl: sysctl,
      }),
    );
    const shim = spawn(process.execPath, [SHIM, "run", "--config", join(out, "shim.json")], {
      stdio: ["ignore", "ignore", "pipe"],
    });
    shim.stderr?.on("data", (b: Buffer) => appendFileSync(join(kept, "shim.log"), b));
    try {
      const tokensSeen = new Set<string>();
      const t0 = Date.now();
      while (Date.now() - t0 < TTL * 2000 + 1000) {
        const text = existsSync(unitEnv) ? readFileSync(unitEnv, "utf8") : "";
        const m = /^SHIM_TOKEN=(.*)$/m.exec(text);
        if (m?.[1]) tokensSeen.add(m[1].replace(/^'|'$/g, ""));
        await new Promise((r) => setTimeout(r, 50));
      }
      // The login's token and at least one refreshed one reached the unit env file.
      expect(tokensSeen.size).toBeGreaterThanOrEqual(2);
      const restarts = readFileSync(join(out, "systemctl.log"), "utf8").trim().split("\n");
      expect(restarts.every((l) => l === "try-restart agent.service")).toBe(true);
      for (const f of [unitEnv, join(out, "etc/vm-auth.conf"), join(out, "lib/lkg.env")]) {
        expectNoHostSecrets(readFileSync(f, "utf8"));
      }
    } finally {
      shim.kill("SIGTERM");
      rmSync(out, { recursive: true, force: true });
    }
  }, 20_000);
});
