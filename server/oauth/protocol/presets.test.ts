import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { discover, wellKnownUrls } from "./discovery.js";
import { PRESET_NAMES, presetQuirks, resolveEndpoints, resolvePreset } from "./presets.js";
import { oauthFailure, reply, type ScriptedServer, startScriptedServer } from "./test-server.js";

describe("resolvePreset", () => {
  it("github: static endpoints, no discovery, no revocation, secret in the body", () => {
    const p = resolvePreset("github");
    expect(p).toMatchObject({
      discovery: false,
      defaultEnv: "GITHUB_TOKEN",
      endpoints: {
        authorization: "https://github.com/login/oauth/authorize",
        token: "https://github.com/login/oauth/access_token",
        deviceAuthorization: "https://github.com/login/device/code",
      },
      quirks: { tokenAuthMethod: "client_secret_post" },
    });
    expect(p.endpoints?.revocation).toBeUndefined();
    expect(resolvePreset("github", { baseUrl: "https://ghe.corp/" }).endpoints?.token).toBe(
      "https://ghe.corp/login/oauth/access_token",
    );
  });

  it("google: discovery and the parameters that get a refresh token", () => {
    expect(resolvePreset("google")).toMatchObject({
      issuer: "https://accounts.google.com",
      discovery: true,
      defaultEnv: "GOOGLE_ACCESS_TOKEN",
      quirks: { authParams: { access_type: "offline", prompt: "consent" } },
    });
  });

  it("microsoft: a tenant (common by default), origin-only issuer check, scope on refresh", () => {
    expect(resolvePreset("microsoft")).toMatchObject({
      issuer: "https://login.microsoftonline.com/common/v2.0",
      tenant: "common",
      defaultEnv: "MS_ACCESS_TOKEN",
      quirks: { skipIssuerCheck: true, refreshScopeParam: true },
    });
    expect(resolvePreset("microsoft", { tenant: "contoso.onmicrosoft.com" }).issuer).toBe(
      "https://login.microsoftonline.com/contoso.onmicrosoft.com/v2.0",
    );
    expect(() => resolvePreset("microsoft", { tenant: "../evil" })).toThrow(/tenant/);
  });

  it("gitlab: gitlab.com or a self-hosted base, with device and revoke fallbacks", () => {
    expect(resolvePreset("gitlab")).toMatchObject({
      issuer: "https://gitlab.com",
      endpoints: { revocation: "https://gitlab.com/oauth/revoke" },
      defaultEnv: "GITLAB_TOKEN",
    });
    expect(resolvePreset("gitlab", { baseUrl: "https://git.corp/gitlab/" }).issuer).toBe(
      "https://git.corp/gitlab",
    );
  });

  it("oidc: needs an https issuer (http only on loopback)", () => {
    expect(resolvePreset("oidc", { issuer: "https://id.corp" })).toMatchObject({
      issuer: "https://id.corp",
      defaultScopes: ["openid", "offline_access"],
      defaultEnv: "OAUTH_ACCESS_TOKEN",
      quirks: { authParams: { prompt: "consent" } },
    });
    expect(resolvePreset("oidc", { issuer: "http://127.0.0.1:8080" }).issuer).toBe(
      "http://127.0.0.1:8080",
    );
    expect(() => resolvePreset("oidc")).toThrow("the oidc preset needs an issuer URL");
    expect(() => resolvePreset("oidc", { issuer: "http://id.corp" })).toThrow(/not https/);
    expect(() => resolvePreset("oidc", { issuer: "not a url" })).toThrow(/not a URL/);
  });

  it("refuses unknown presets and options a preset does not take", () => {
    expect(() => resolvePreset("okta")).toThrow(
      expect.objectContaining({
        kind: "config",
        message: expect.stringMatching(/unknown OAuth preset "okta"/),
      }),
    );
    expect(() => resolvePreset("google", { tenant: "x" })).toThrow(
      "the google preset does not take a tenant",
    );
    expect(() => resolvePreset("github", { issuer: "https://x" })).toThrow(
      /does not take a issuer/,
    );
  });

  it("presetQuirks matches resolvePreset, and unknown names get none", () => {
    for (const name of PRESET_NAMES) {
      const opts = name === "oidc" ? { issuer: "https://id.corp" } : {};
      expect(presetQuirks(name)).toEqual(resolvePreset(name, opts).quirks);
    }
    expect(presetQuirks("custom")).toEqual({
      authParams: {},
      skipIssuerCheck: false,
      refreshScopeParam: false,
    });
  });

  it("resolveEndpoints without discovery needs no network", async () => {
    const endpoints = await resolveEndpoints(resolvePreset("github"), {
      fetch: () => Promise.reject(new Error("no")),
    });
    expect(endpoints.token).toBe("https://github.com/login/oauth/access_token");
  });
});

describe("discover", () => {
  let server: ScriptedServer;
  beforeAll(async () => {
    server = await startScriptedServer();
  });
  afterAll(() => server.close());

  const doc = (issuer: string, extra: object = {}) => ({
    issuer,
    token_endpoint: `${issuer}/token`,
    authorization_endpoint: `${issuer}/auth`,
    revocation_endpoint: `${issuer}/revoke`,
    token_endpoint_auth_methods_supported: ["client_secret_post"],
    ...extra,
  });

  it("orders the well-known URLs: OIDC, RFC 8414 inserted, RFC 8414 appended", () => {
    expect(wellKnownUrls("https://op.example")).toEqual([
      "https://op.example/.well-known/openid-configuration",
      "https://op.example/.well-known/oauth-authorization-server",
    ]);
    expect(wellKnownUrls("https://op.example/t/1/")).toEqual([
      "https://op.example/t/1/.well-known/openid-configuration",
      "https://op.example/.well-known/oauth-authorization-server/t/1",
      "https://op.example/t/1/.well-known/oauth-authorization-server",
    ]);
  });

  it("falls through 404s to the OIDC-style RFC 8414 name and maps the document", async () => {
    const issuer = `${server.url}/t`;
    server.answer((req, res) =>
      req.path === "/t/.well-known/oauth-authorization-server"
        ? reply(res, 200, doc(issuer))
        : reply(res, 404, ""),
    );
    server.requests.length = 0;
    expect(await discover(issuer)).toEqual({
      issuer,
      token: `${issuer}/token`,
      authorization: `${issuer}/auth`,
      revocation: `${issuer}/revoke`,
      issParameterSupported: false,
      tokenAuthMethods: ["client_secret_post"],
    });
    expect(server.requests.map((r) => r.path)).toEqual([
      "/t/.well-known/openid-configuration",
      "/.well-known/oauth-authorization-server/t",
      "/t/.well-known/oauth-authorization-server",
    ]);
  });

  it("refuses documents: no token endpoint, another issuer, an insecure endpoint", async () => {
    const issuer = server.url;
    for (const [body, problem] of [
      [{ issuer }, /no token_endpoint/],
      [doc("https://other.example"), /names issuer https:\/\/other.example/],
      [
        doc(issuer, { revocation_endpoint: "http://evil.example/revoke" }),
        /insecure revocation_endpoint/,
      ],
      [[1, 2], /neither JSON nor form data/],
      [{ token_endpoint: `${issuer}/token` }, /has no issuer/],
    ] as const) {
      server.answer((_req, res) => reply(res, 200, body));
      expect((await oauthFailure(discover(issuer))).message).toMatch(problem);
    }
  });

  it("skipIssuerCheck compares only the origin and then reports no issuer", async () => {
    server.answer((_req, res) => reply(res, 200, doc(`${server.url}/{tenantid}/v2.0`)));
    const endpoints = await discover(`${server.url}/common/v2.0`, { skipIssuerCheck: true });
    expect(endpoints.issuer).toBeUndefined();
    server.answer((_req, res) => reply(res, 200, doc("https://elsewhere.example/{tenantid}")));
    const err = await oauthFailure(
      discover(`${server.url}/common/v2.0`, { skipIssuerCheck: true }),
    );
    expect(err.message).toMatch(/another origin/);
  });

  it("config for an http issuer or no document, transient for a 5xx", async () => {
    expect((await oauthFailure(discover("http://op.example"))).kind).toBe("config");
    server.answer((_req, res) => reply(res, 404, ""));
    expect((await oauthFailure(discover(server.url))).message).toMatch(
      /no metadata document found/,
    );
    server.answer((_req, res) => reply(res, 500, ""));
    expect((await oauthFailure(discover(server.url))).kind).toBe("transient");
  });
});
