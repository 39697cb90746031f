/**
 * The OAuth client (server/oauth/protocol) against a real provider: oidc-provider behind the
 * front door of test/helpers/oauth-provider.ts, the user played by test/helpers/oauth-user.ts.
 * Every OAuthError seen is written to a file under the test root, so the suite's leak check
 * proves that no message carries a token.
 */
import { appendFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  buildAuthorizationUrl,
  type ClientCredentials,
  checkCallback,
  createPkce,
  discover,
  exchangeCode,
  introspect,
  isOAuthError,
  type OAuthError,
  type PollDeviceOptions,
  type ProviderEndpoints,
  pollDeviceToken,
  randomState,
  refreshGrant,
  resolveEndpoints,
  resolvePreset,
  revoke,
  startDeviceAuthorization,
  startLoopbackRedirect,
  type TokenSet,
} from "../server/oauth/protocol/index.js";
import {
  type OAuthProvider,
  type OAuthProviderOptions,
  startOAuthProvider,
  type TokenResponseInfo,
} from "./helpers/oauth-provider.js";
import { approveDevice, authorizeInBrowser, denyDevice } from "./helpers/oauth-user.js";
import { secretValue, testRoot } from "./helpers/values.js";

const SCOPES = ["openid", "offline_access"];
const running: OAuthProvider[] = [];
const cleanups: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((c) => c()));
  await Promise.all(running.splice(0).map((p) => p.stop()));
});

describe("discovery", () => {
  it("reads the OpenID document and maps every endpoint", async () => {
    const { op, endpoints } = await setUp();
    expect(endpoints).toMatchObject({
      issuer: op.issuer,
      token: `${op.issuer}/token`,
      authorization: `${op.issuer}/auth`,
      deviceAuthorization: `${op.issuer}/device/auth`,
      revocation: `${op.issuer}/token/revocation`,
      introspection: `${op.issuer}/token/introspection`,
      issParameterSupported: true,
    });
    expect(endpoints.tokenAuthMethods).toContain("client_secret_basic");
  });

  it("falls back to RFC 8414, with the well-known segment before the issuer's path", async () => {
    const { op, endpoints } = await setUp({ issuerPath: "/tenant-a", hideOidcDiscovery: true });
    expect(op.issuer).toMatch(/\/tenant-a$/);
    expect(endpoints.token).toBe(`${op.issuer}/token`);
    await expect(fetch(`${op.issuer}/.well-known/openid-configuration`)).resolves.toHaveProperty(
      "status",
      404,
    );
  });

  it("refuses a document naming another issuer", async () => {
    const op = await provider();
    const err = await failure(discover(`${op.issuer}/`));
    expect(err.kind).toBe("protocol");
    expect(err.message).toMatch(/must be identical/);
  });
});

describe("refresh", () => {
  it("rotates: a new refresh token, and the old one is no longer active", async () => {
    const { op, endpoints, client } = await setUp();
    const first = await deviceLogin(op, endpoints, client);
    const old = required(first.refreshToken);
    const next = await refreshGrant(endpoints, client, old);
    expect(next).toMatchObject({ tokenType: "Bearer", expiresIn: 5 });
    expect(next.refreshToken).toBeDefined();
    expect(next.refreshToken).not.toBe(old);
    expect(next.accessToken).not.toBe(first.accessToken);
    expect(await op.introspect(old)).toEqual({ active: false });
    expect(await op.introspect(required(next.refreshToken))).toEqual({ active: true });
    expect(op.frontDoor.tokenRequestsFor("refresh_token")).toBe(1);
  });

  it("reusing a rotated refresh token is invalid_grant and kills the whole grant", async () => {
    const { op, endpoints, client } = await setUp();
    const old = required((await deviceLogin(op, endpoints, client)).refreshToken);
    const next = required((await refreshGrant(endpoints, client, old)).refreshToken);
    const err = await failure(refreshGrant(endpoints, client, old));
    expect(err).toMatchObject({ kind: "invalid_grant", status: 400, oauthError: "invalid_grant" });
    expect(await op.introspect(next)).toEqual({ active: false });
    expect(op.events.join("\n")).toMatch(/grant.error/);
  });

  it("without rotation the same refresh token keeps working", async () => {
    const { op, endpoints, client } = await setUp({ refreshTokenRotation: false });
    const rt = required((await deviceLogin(op, endpoints, client)).refreshToken);
    const next = await refreshGrant(endpoints, client, rt);
    expect(next.refreshToken ?? rt).toBe(rt);
    expect(await op.introspect(rt)).toEqual({ active: true });
  });

  it("an outage before the provider (503) is transient and the token stays valid", async () => {
    const { op, endpoints, client } = await setUp();
    const rt = required((await deviceLogin(op, endpoints, client)).refreshToken);
    op.frontDoor.failToken(1, "before");
    const err = await failure(refreshGrant(endpoints, client, rt));
    expect(err).toMatchObject({ kind: "transient", status: 503 });
    expect(await op.introspect(rt)).toEqual({ active: true });
    await expect(refreshGrant(endpoints, client, rt)).resolves.toHaveProperty("tokenType");
  });

  it("a response lost after the provider rotated is transient, and the retry is invalid_grant", async () => {
    const { op, endpoints, client } = await setUp();
    const rt = required((await deviceLogin(op, endpoints, client)).refreshToken);
    op.frontDoor.failToken(1, "after", 502);
    expect(await failure(refreshGrant(endpoints, client, rt))).toMatchObject({
      kind: "transient",
      status: 502,
    });
    expect(await op.introspect(rt)).toEqual({ active: false });
    expect(await op.introspect(required(op.issued.refreshTokens.at(-1)))).toEqual({ active: true });
    expect((await failure(refreshGrant(endpoints, client, rt))).kind).toBe("invalid_grant");
  });
});

describe("front door hooks", () => {
  it("onTokenResponse reports each token response once it was sent", async () => {
    const { op, endpoints, client } = await setUp();
    const rt = required((await deviceLogin(op, endpoints, client)).refreshToken);
    const seen: TokenResponseInfo[] = [];
    op.frontDoor.onTokenResponse = (info) => seen.push(info);
    await refreshGrant(endpoints, client, rt);
    op.frontDoor.failToken(1, "before");
    await failure(refreshGrant(endpoints, client, rt));
    expect(seen).toEqual([
      { grantType: "refresh_token", status: 200 },
      { grantType: "refresh_token", status: 503 },
    ]);
    expect(op.frontDoor.tokenRequests).toBe(3);
  });

  it("a held response times out as transient, after the provider already rotated", async () => {
    const { op, endpoints, client } = await setUp();
    const rt = required((await deviceLogin(op, endpoints, client)).refreshToken);
    op.frontDoor.holdToken(500);
    const err = await failure(refreshGrant(endpoints, client, rt, { timeoutMs: 150 }));
    expect(err).toMatchObject({
      kind: "transient",
      message: "refresh request: no answer within 150 ms",
    });
    expect(await op.introspect(rt)).toEqual({ active: false });
  });
});

describe("confidential client", () => {
  it("authenticates with client_secret_basic, and a wrong secret is invalid_client", async () => {
    // RFC 6749 §2.3.1: a secret with ':' '+' '/' survives only if form-encoded before base64.
    const secret = `${secretValue("cs")}:+/=%`;
    const { op, endpoints, client } = await setUp({ clientSecret: secret });
    expect(client.clientSecret).toBe(secret);
    const rt = required((await deviceLogin(op, endpoints, client)).refreshToken);
    const next = required((await refreshGrant(endpoints, client, rt)).refreshToken);
    const wrong = { clientId: client.clientId, clientSecret: secretValue("wrong") };
    const err = await failure(refreshGrant(endpoints, wrong, next));
    expect(err).toMatchObject({ kind: "invalid_client", status: 401 });
    expect(await op.introspect(next)).toEqual({ active: true });
    await op.revokeRefreshToken(next);
    expect(await op.introspect(next)).toEqual({ active: false });
  });
});

describe("device flow", () => {
  it("polls through authorization_pending until the user approves", async () => {
    const { op, endpoints, client } = await setUp({ deviceInterval: 1 });
    const d = await startDeviceAuthorization(endpoints, client, SCOPES);
    expect(d).toMatchObject({ intervalMs: 1000, expiresIn: 600 });
    expect(d.verificationUri).toBe(`${op.issuer}/device`);
    expect(d.verificationUriComplete).toContain(encodeURIComponent(d.userCode));
    let approving: Promise<void> | undefined;
    const outcomes: string[] = [];
    const tokens = await pollDeviceToken(endpoints, client, d.deviceCode, {
      intervalMs: d.intervalMs,
      expiresAt: d.expiresAt,
      onPoll: (e) => {
        outcomes.push(e.outcome);
        approving ??= approveDevice(op.issuer, d.userCode);
      },
    });
    await approving;
    // One pending poll, or more if approving took longer than an interval on a busy machine.
    expect(outcomes.length).toBeGreaterThan(0);
    expect(new Set(outcomes)).toEqual(new Set(["authorization_pending"]));
    expect(tokens.refreshToken).toBeDefined();
    expect(await op.introspect(tokens.accessToken)).toEqual({ active: true });
  });

  it("slow_down adds the step to the interval for the rest of the flow", async () => {
    const { op, endpoints, client } = await setUp({ deviceInterval: 1, slowDown: true });
    const d = await startDeviceAuthorization(endpoints, client, SCOPES);
    const events: { outcome: string; nextPollMs: number }[] = [];
    let approving: Promise<void> | undefined;
    // Polling every 600 ms against a 1 s interval: the second poll is too fast; after one
    // slow_down the interval is 1000 ms and the front door is satisfied.
    const tokens = await pollDeviceToken(endpoints, client, d.deviceCode, {
      intervalMs: 600,
      expiresAt: d.expiresAt,
      slowDownStepMs: 400,
      onPoll: ({ outcome, nextPollMs }) => {
        events.push({ outcome, nextPollMs });
        if (outcome === "slow_down") approving ??= approveDevice(op.issuer, d.userCode);
      },
    });
    await approving;
    expect(events.slice(0, 2)).toEqual([
      { outcome: "authorization_pending", nextPollMs: 600 },
      { outcome: "slow_down", nextPollMs: 1000 },
    ]);
    // The longer interval stays: any later poll (a slow approval) waits 1000 ms too.
    expect(events.slice(2).every((e) => e.nextPollMs === 1000)).toBe(true);
    expect(tokens.accessToken).toBeTruthy();
    expect(op.frontDoor.tokenRequests).toBe(events.length + 1);
  });

  it("access_denied when the user aborts", async () => {
    const { op, endpoints, client } = await setUp();
    const d = await startDeviceAuthorization(endpoints, client, SCOPES);
    await denyDevice(op.issuer, d.userCode);
    const err = await failure(pollDeviceToken(endpoints, client, d.deviceCode, fast(d.expiresAt)));
    expect(err).toMatchObject({ kind: "access_denied", oauthError: "access_denied" });
  });

  it("expired_token from the provider once the device code has expired", async () => {
    const { endpoints, client } = await setUp({ deviceCodeTtlSec: 1 });
    const d = await startDeviceAuthorization(endpoints, client, SCOPES);
    // Our own deadline is later, so the provider's answer is what ends the flow.
    const opts = { ...fast(Date.now() + 60_000), intervalMs: 1100 };
    const err = await failure(pollDeviceToken(endpoints, client, d.deviceCode, opts));
    expect(err).toMatchObject({ kind: "expired_token", oauthError: "expired_token" });
  });

  it("expired_token from our own deadline, without polling past it", async () => {
    const { op, endpoints, client } = await setUp();
    const d = await startDeviceAuthorization(endpoints, client, SCOPES);
    const deadline = Date.now() + 500;
    const opts = { ...fast(deadline), intervalMs: 200 };
    const err = await failure(pollDeviceToken(endpoints, client, d.deviceCode, opts));
    expect(err.kind).toBe("expired_token");
    expect(err.oauthError).toBeUndefined();
    expect(Date.now()).toBeGreaterThanOrEqual(deadline);
    // At most 500 / 200 polls: the last wait is cut short at the deadline, with no poll after.
    expect(op.frontDoor.tokenRequests).toBeGreaterThan(0);
    expect(op.frontDoor.tokenRequests).toBeLessThanOrEqual(2);
  });

  it("stops when aborted", async () => {
    const { endpoints, client } = await setUp();
    const d = await startDeviceAuthorization(endpoints, client, SCOPES);
    const signal = AbortSignal.timeout(100);
    const poll = pollDeviceToken(endpoints, client, d.deviceCode, { ...fast(d.expiresAt), signal });
    await expect(poll).rejects.toHaveProperty("name", "TimeoutError");
  });
});

describe("authorization code flow with PKCE", () => {
  it("runs end to end through the loopback redirect", async () => {
    const { op, endpoints, client, quirks } = await setUp();
    const { tokens, loopback } = await codeFlow(op, endpoints, client, quirks.authParams);
    expect(tokens.refreshToken).toBeDefined();
    expect(await op.introspect(tokens.accessToken)).toEqual({ active: true });
    // The listener served one answer and closed.
    await expect(fetch(loopback)).rejects.toThrow();
  });

  it("refuses a state mismatch and an iss from another issuer", async () => {
    const { op, endpoints, client, quirks } = await setUp();
    const pkce = createPkce();
    const state = randomState();
    const loopback = await startLoopbackRedirect({ timeoutMs: 10_000 });
    cleanups.push(loopback.close);
    const url = buildAuthorizationUrl(endpoints, client, {
      redirectUri: loopback.redirectUri,
      scopes: SCOPES,
      state,
      challenge: pkce.challenge,
      extraParams: quirks.authParams,
    });
    expect(await authorizeInBrowser(url, { account: "bob" })).toBe(200);
    const params = await loopback.result;
    expect(params.iss).toBe(op.issuer);
    const issRequired = endpoints.issParameterSupported === true;
    const expectations = { state, issuer: op.issuer, issRequired };
    const other = await provider();
    const errors = [
      () => checkCallback(params, { ...expectations, state: randomState() }),
      () => checkCallback({ ...params, state: undefined as unknown as string }, expectations),
      () => checkCallback(params, { ...expectations, issuer: other.issuer }),
      () => checkCallback({ code: params.code ?? "", state }, expectations),
    ].map((f) => caught(f));
    expect(errors.map((e) => e.kind)).toEqual(["protocol", "protocol", "protocol", "protocol"]);
    expect(errors[2]?.message).toMatch(/iss/);
    expect(errors[3]?.message).toMatch(/RFC 9207/);
    // The checks passed with the right values: the code is good, and single use.
    const { code } = checkCallback(params, expectations);
    const exchange = { code, redirectUri: loopback.redirectUri, verifier: pkce.verifier };
    await expect(exchangeCode(endpoints, client, exchange)).resolves.toHaveProperty("accessToken");
    expect((await failure(exchangeCode(endpoints, client, exchange))).kind).toBe("invalid_grant");
  });

  it("a wrong PKCE verifier is invalid_grant", async () => {
    const { op, endpoints, client, quirks } = await setUp();
    const wrong = createPkce().verifier;
    const err = await failure(codeFlow(op, endpoints, client, quirks.authParams, wrong));
    expect(err.kind).toBe("invalid_grant");
  });
});

describe("introspection and revocation", () => {
  it("revoking the refresh token ends the grant; no endpoint means false", async () => {
    const { op, endpoints, client } = await setUp();
    const tokens = await deviceLogin(op, endpoints, client);
    const rt = required(tokens.refreshToken);
    expect(await introspect(endpoints, client, tokens.accessToken)).toMatchObject({
      active: true,
      clientId: client.clientId,
    });
    expect(await revoke(endpoints, client, rt, "refresh_token")).toBe(true);
    expect(await op.introspect(rt)).toEqual({ active: false });
    expect(await op.introspect(tokens.accessToken)).toEqual({ active: false });
    expect((await failure(refreshGrant(endpoints, client, rt))).kind).toBe("invalid_grant");
    const { revocation: _, ...without } = endpoints;
    expect(await revoke(without, client, rt, "refresh_token")).toBe(false);
  });

  it("a revocation during an outage is transient", async () => {
    const { op, endpoints, client } = await setUp();
    const rt = required((await deviceLogin(op, endpoints, client)).refreshToken);
    await op.stop();
    running.splice(running.indexOf(op), 1);
    const err = await failure(revoke(endpoints, client, rt, "refresh_token"));
    expect(err.kind).toBe("transient");
  });
});

// --- internal ---

async function provider(opts: OAuthProviderOptions = {}): Promise<OAuthProvider> {
  const op = await startOAuthProvider(opts);
  running.push(op);
  return op;
}

/** A provider, its endpoints found through the oidc preset (discovery), and its client. */
async function setUp(opts: OAuthProviderOptions = {}) {
  const op = await provider(opts);
  const preset = resolvePreset("oidc", { issuer: op.issuer });
  const endpoints = await resolveEndpoints(preset);
  const client: ClientCredentials = {
    clientId: op.clientId,
    ...(op.clientSecret === undefined ? {} : { clientSecret: op.clientSecret }),
  };
  return { op, endpoints, client, quirks: preset.quirks };
}

/** Device login with the user approving before the first poll: one token request. */
async function deviceLogin(
  op: OAuthProvider,
  endpoints: ProviderEndpoints,
  client: ClientCredentials,
): Promise<TokenSet> {
  const d = await startDeviceAuthorization(endpoints, client, SCOPES);
  await approveDevice(op.issuer, d.userCode);
  return pollDeviceToken(endpoints, client, d.deviceCode, fast(d.expiresAt));
}

async function codeFlow(
  op: OAuthProvider,
  endpoints: ProviderEndpoints,
  client: ClientCredentials,
  authParams: Readonly<Record<string, string>>,
  verifier?: string,
): Promise<{ tokens: TokenSet; loopback: string }> {
  const pkce = createPkce();
  const state = randomState();
  const loopback = await startLoopbackRedirect({ timeoutMs: 10_000 });
  cleanups.push(loopback.close);
  const url = buildAuthorizationUrl(endpoints, client, {
    redirectUri: loopback.redirectUri,
    scopes: SCOPES,
    state,
    challenge: pkce.challenge,
    extraParams: authParams,
  });
  expect(await authorizeInBrowser(url)).toBe(200);
  const { code } = checkCallback(await loopback.result, {
    state,
    issuer: op.issuer,
    issRequired: endpoints.issParameterSupported === true,
  });
  const exchange = { code, redirectUri: loopback.redirectUri, verifier: verifier ?? pkce.verifier };
  return {
    tokens: await exchangeCode(endpoints, client, exchange),
    loopback: loopback.redirectUri,
  };
}

function fast(expiresAt: number): PollDeviceOptions {
  return { intervalMs: 20, expiresAt };
}

function required<T>(value: T | undefined): T {
  if (value === undefined) throw new Error("expected a value");
  return value;
}

/** The OAuthError `p` rejects with, recorded for the leak check. */
async function failure(p: Promise<unknown>): Promise<OAuthError> {
  const err: unknown = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  return record(err);
}

function caught(f: () => unknown): OAuthError {
  try {
    f();
  } catch (err) {
    return record(err);
  }
  throw new Error("expected a throw");
}

function record(err: unknown): OAuthError {
  const root = testRoot();
  if (root)
    appendFileSync(
      join(root, "oauth-protocol-errors.log"),
      `${String(err)} ${JSON.stringify(err)}\n`,
    );
  if (!isOAuthError(err)) throw new Error(`expected an OAuthError, got ${String(err)}`);
  return err;
}
