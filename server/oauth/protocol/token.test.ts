import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { retryAfterMs } from "./http.js";
import { oauthFailure, reply, type ScriptedServer, startScriptedServer } from "./test-server.js";
import { exchangeCode, introspect, refreshGrant, revoke } from "./token.js";
import type { ProviderEndpoints } from "./types.js";

let server: ScriptedServer;
let endpoints: ProviderEndpoints;
const client = { clientId: "cli" };
const RT = "rt-0123456789abcdefghijklmnopqrstuvwxyz";

beforeAll(async () => {
  server = await startScriptedServer();
  endpoints = {
    token: `${server.url}/token`,
    revocation: `${server.url}/revoke`,
    introspection: `${server.url}/introspect`,
  };
});
afterAll(() => server.close());
beforeEach(() => {
  server.requests.length = 0;
});

describe("token responses", () => {
  it("parses GitHub's form-encoded answer and its lower-case bearer", async () => {
    server.answer((_req, res) =>
      reply(res, 200, "access_token=gho_abc&token_type=bearer&scope=repo%2Cgist", {
        "content-type": "application/x-www-form-urlencoded; charset=utf-8",
      }),
    );
    const tokens = await refreshGrant(endpoints, client, RT);
    expect(tokens).toEqual({ accessToken: "gho_abc", tokenType: "Bearer", scope: "repo,gist" });
  });

  it("accepts expires_in as a numeric string and drops an empty refresh_token", async () => {
    server.answer((_req, res) =>
      reply(res, 200, {
        access_token: "a",
        token_type: "Bearer",
        expires_in: "3600",
        refresh_token: "",
      }),
    );
    expect(await refreshGrant(endpoints, client, RT)).toEqual({
      accessToken: "a",
      tokenType: "Bearer",
      expiresIn: 3600,
    });
  });

  it.each([
    [{ token_type: "Bearer" }, /access_token/],
    [{ access_token: "a", token_type: "mac" }, /token_type/],
    [{ access_token: "a" }, /token_type/],
    [{ access_token: "a", token_type: "Bearer", expires_in: "soon" }, /expires_in/],
    [{ access_token: "a", token_type: "Bearer", refresh_token: 5 }, /refresh_token/],
  ])("refuses an invalid success %j", async (body, field) => {
    server.answer((_req, res) => reply(res, 200, body));
    const err = await oauthFailure(refreshGrant(endpoints, client, RT));
    expect(err.kind).toBe("protocol");
    expect(err.message).toMatch(field);
  });

  it("treats a 200 with an error field as that error (GitHub)", async () => {
    server.answer((_req, res) =>
      reply(res, 200, {
        error: "bad_refresh_token",
        error_description: "The refresh token passed is incorrect or expired.",
      }),
    );
    const err = await oauthFailure(refreshGrant(endpoints, client, RT));
    expect(err).toMatchObject({
      kind: "invalid_grant",
      status: 200,
      oauthError: "bad_refresh_token",
    });
    expect(err.message).toBe(
      "refresh request failed: bad_refresh_token (The refresh token passed is incorrect or expired.)",
    );
  });

  it.each([
    [400, { error: "invalid_grant" }, "invalid_grant"],
    [400, { error: "unauthorized_client" }, "invalid_client"],
    [401, { error: "invalid_client" }, "invalid_client"],
    [401, "", "invalid_client"],
    [400, { error: "made_up" }, "protocol"],
    [400, { error: "constructor" }, "protocol"],
    [403, "<html>forbidden</html>", "protocol"],
    [500, { error: "invalid_grant" }, "transient"],
    [502, "<html>bad gateway</html>", "transient"],
    [429, "", "transient"],
  ])("classifies HTTP %i %j as %s", async (status, body, kind) => {
    server.answer((_req, res) => reply(res, status, body));
    expect((await oauthFailure(refreshGrant(endpoints, client, RT))).kind).toBe(kind);
  });

  it("never puts tokens or the body in the message, even when the provider echoes them", async () => {
    server.answer((req, res) =>
      reply(res, 400, {
        error: "invalid_grant",
        error_description: `token ${new URLSearchParams(req.body).get("refresh_token")} is revoked\u0000`,
        raw: "body-only-value",
      }),
    );
    const err = await oauthFailure(refreshGrant(endpoints, client, RT));
    expect(err.message).toBe("refresh request failed: invalid_grant (token [redacted] is revoked)");
    expect(JSON.stringify(err)).not.toContain(RT);
    expect(String(err)).not.toContain("body-only-value");
  });

  it("caps the body at 64 KiB, with and without content-length", async () => {
    const big = { access_token: "a", token_type: "Bearer", pad: "x".repeat(70_000) };
    server.answer((_req, res) => reply(res, 200, big));
    expect((await oauthFailure(refreshGrant(endpoints, client, RT))).message).toMatch(
      /larger than 65536/,
    );
    server.answer((_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write(JSON.stringify(big).slice(0, 40_000));
      res.end(JSON.stringify(big).slice(40_000));
    });
    expect((await oauthFailure(refreshGrant(endpoints, client, RT))).kind).toBe("protocol");
  });

  it("refuses to follow a redirect from the token endpoint", async () => {
    server.answer((req, res) =>
      req.path === "/token"
        ? reply(res, 307, "", { location: `${server.url}/elsewhere` })
        : reply(res, 200, { access_token: "a", token_type: "Bearer" }),
    );
    const err = await oauthFailure(refreshGrant(endpoints, client, RT));
    expect(err).toMatchObject({ kind: "protocol", status: 307 });
    expect(server.requests.map((r) => r.path)).toEqual(["/token"]);
  });

  it("reads Retry-After as seconds or an HTTP date", async () => {
    server.answer((_req, res) => reply(res, 503, "", { "retry-after": "7" }));
    expect(await oauthFailure(refreshGrant(endpoints, client, RT))).toMatchObject({
      kind: "transient",
      retryAfterMs: 7000,
    });
    const now = Date.parse("2030-01-01T00:00:00Z");
    expect(retryAfterMs("Tue, 01 Jan 2030 00:00:30 GMT", now)).toBe(30_000);
    expect(retryAfterMs("Tue, 01 Jan 2000 00:00:30 GMT", now)).toBe(0);
    expect(retryAfterMs("whenever", now)).toBeUndefined();
  });

  it("times out as transient, and an abort rejects with the caller's reason", async () => {
    server.answer(() => {});
    const err = await oauthFailure(refreshGrant(endpoints, client, RT, { timeoutMs: 100 }));
    expect(err).toMatchObject({
      kind: "transient",
      message: "refresh request: no answer within 100 ms",
    });
    const abort = new AbortController();
    const pending = refreshGrant(endpoints, client, RT, { signal: abort.signal });
    abort.abort(new Error("shutting down"));
    await expect(pending).rejects.toThrow("shutting down");
  });

  it("a refused connection is transient", async () => {
    const gone = await startScriptedServer();
    await gone.close();
    const err = await oauthFailure(refreshGrant({ token: `${gone.url}/token` }, client, RT));
    expect(err).toMatchObject({ kind: "transient", message: "refresh request: network error" });
  });
});

describe("requests", () => {
  const ok = { access_token: "a", token_type: "Bearer" };

  it("form-POSTs with Accept: application/json; a public client sends client_id in the body", async () => {
    server.answer((_req, res) => reply(res, 200, ok));
    await refreshGrant(endpoints, client, RT, { scope: "a b" });
    const [req] = server.requests;
    expect(req?.method).toBe("POST");
    expect(req?.headers.accept).toBe("application/json");
    expect(req?.headers["content-type"]).toMatch(/^application\/x-www-form-urlencoded/);
    expect(req?.headers.authorization).toBeUndefined();
    expect(Object.fromEntries(new URLSearchParams(req?.body))).toEqual({
      grant_type: "refresh_token",
      refresh_token: RT,
      scope: "a b",
      client_id: "cli",
    });
  });

  it("client_secret_basic form-encodes id and secret before base64 (RFC 6749 §2.3.1)", async () => {
    server.answer((_req, res) => reply(res, 200, ok));
    const confidential = { clientId: "id:1", clientSecret: "s p+c/=%" };
    await exchangeCode(endpoints, confidential, {
      code: "c",
      redirectUri: "http://x/cb",
      verifier: "v",
    });
    const auth = String(server.requests[0]?.headers.authorization);
    expect(Buffer.from(auth.replace(/^Basic /, ""), "base64").toString()).toBe(
      "id%3A1:s+p%2Bc%2F%3D%25",
    );
    expect(new URLSearchParams(server.requests[0]?.body).has("client_id")).toBe(false);
  });

  it("puts the secret in the body when the quirk or discovery says so", async () => {
    server.answer((_req, res) => reply(res, 200, ok));
    const confidential = { clientId: "id", clientSecret: "sec" };
    await refreshGrant(endpoints, confidential, RT, {
      quirks: { tokenAuthMethod: "client_secret_post" },
    });
    await refreshGrant(
      { ...endpoints, tokenAuthMethods: ["client_secret_post"] },
      confidential,
      RT,
    );
    for (const req of server.requests) {
      expect(req.headers.authorization).toBeUndefined();
      expect(new URLSearchParams(req.body).get("client_secret")).toBe("sec");
    }
  });
});

describe("revoke and introspect", () => {
  it("revoke: 200 is true, no endpoint is false, 503 is transient", async () => {
    server.answer((_req, res) => reply(res, 200, ""));
    expect(await revoke(endpoints, client, RT, "refresh_token")).toBe(true);
    expect(new URLSearchParams(server.requests[0]?.body).get("token_type_hint")).toBe(
      "refresh_token",
    );
    expect(await revoke({ token: endpoints.token }, client, RT, "refresh_token")).toBe(false);
    server.answer((_req, res) => reply(res, 503, ""));
    expect((await oauthFailure(revoke(endpoints, client, RT, "access_token"))).kind).toBe(
      "transient",
    );
    server.answer((_req, res) => reply(res, 400, { error: "unsupported_token_type" }));
    expect((await oauthFailure(revoke(endpoints, client, RT, "access_token"))).kind).toBe(
      "protocol",
    );
  });

  it("introspect maps the answer and needs an endpoint", async () => {
    server.answer((_req, res) => reply(res, 200, { active: true, client_id: "cli", exp: 5 }));
    expect(await introspect(endpoints, client, RT)).toEqual({
      active: true,
      clientId: "cli",
      exp: 5,
    });
    server.answer((_req, res) => reply(res, 200, { active: "yes" }));
    expect((await oauthFailure(introspect(endpoints, client, RT))).kind).toBe("protocol");
    const none = { token: endpoints.token };
    expect((await oauthFailure(introspect(none, client, RT))).kind).toBe("config");
  });
});
