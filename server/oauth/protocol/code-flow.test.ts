import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { buildAuthorizationUrl, checkCallback } from "./code-flow.js";
import { isOAuthError } from "./errors.js";
import { startLoopbackRedirect } from "./loopback.js";
import { createPkce, randomState } from "./pkce.js";

const endpoints = {
  token: "https://op.example/token",
  authorization: "https://op.example/auth?tenant=t",
};
const client = { clientId: "cli" };

describe("buildAuthorizationUrl", () => {
  it("asks for a code with S256 PKCE; extra params cannot override the protocol ones", () => {
    const url = new URL(
      buildAuthorizationUrl(endpoints, client, {
        redirectUri: "http://127.0.0.1:5000/callback",
        scopes: ["openid", "offline_access"],
        state: "st",
        challenge: "ch",
        extraParams: { prompt: "consent", response_type: "token", code_challenge_method: "plain" },
      }),
    );
    expect(url.origin + url.pathname).toBe("https://op.example/auth");
    expect(Object.fromEntries(url.searchParams)).toEqual({
      tenant: "t",
      prompt: "consent",
      response_type: "code",
      client_id: "cli",
      redirect_uri: "http://127.0.0.1:5000/callback",
      scope: "openid offline_access",
      state: "st",
      code_challenge: "ch",
      code_challenge_method: "S256",
    });
  });

  it("needs an authorization endpoint", () => {
    const build = () =>
      buildAuthorizationUrl({ token: "t" }, client, {
        redirectUri: "r",
        scopes: [],
        state: "s",
        challenge: "c",
      });
    expect(build).toThrow(expect.objectContaining({ kind: "config" }));
  });
});

describe("checkCallback", () => {
  const expected = { state: "state-1", issuer: "https://op.example", issRequired: true };

  it("returns the code when state and iss match", () => {
    const params = { code: "c", state: "state-1", iss: "https://op.example" };
    expect(checkCallback(params, expected)).toEqual({ code: "c", iss: "https://op.example" });
  });

  it("maps a provider error after state and iss were checked", () => {
    const params = {
      state: "state-1",
      iss: "https://op.example",
      error: "access_denied",
      errorDescription: "End-User aborted interaction",
    };
    expect(() => checkCallback(params, expected)).toThrow(
      expect.objectContaining({
        kind: "access_denied",
        message: "authorization refused: access_denied (End-User aborted interaction)",
      }),
    );
    // An attacker's error page is answered as a state mismatch, not as the user's refusal.
    expect(() => checkCallback({ ...params, state: "x" }, expected)).toThrow(
      /state does not match/,
    );
  });

  it("ignores iss when the issuer is unknown, and requires it only when told", () => {
    expect(
      checkCallback({ code: "c", state: "state-1", iss: "any" }, { state: "state-1" }),
    ).toEqual({
      code: "c",
      iss: "any",
    });
    expect(
      checkCallback({ code: "c", state: "state-1" }, { ...expected, issRequired: false }),
    ).toEqual({
      code: "c",
    });
  });

  it("refuses a response without a code and never echoes values", () => {
    const err = catching(() =>
      checkCallback({ state: "state-1", iss: "https://op.example" }, expected),
    );
    expect(err).toMatchObject({ kind: "protocol", message: "authorization response: no code" });
    const mismatch = catching(() =>
      checkCallback({ code: "secret-code", state: "guess" }, expected),
    );
    expect(String(mismatch)).not.toMatch(/secret-code|guess|state-1/);
  });
});

describe("pkce", () => {
  it("a 43-character verifier and its S256 challenge; fresh every time", () => {
    const pkce = createPkce();
    expect(pkce.verifier).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const expected = createHash("sha256").update(pkce.verifier).digest("base64url");
    expect(pkce).toEqual({ verifier: pkce.verifier, challenge: expected, method: "S256" });
    expect(createPkce().verifier).not.toBe(pkce.verifier);
    expect(randomState()).toMatch(/^[A-Za-z0-9_-]{22}$/);
  });
});

describe("startLoopbackRedirect", () => {
  it("listens on 127.0.0.1, takes the first answer only, and never shows the code", async () => {
    const loopback = await startLoopbackRedirect({ timeoutMs: 5000 });
    try {
      expect(loopback.redirectUri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/callback$/);
      const base = loopback.redirectUri;
      expect((await fetch(base.replace("/callback", "/favicon.ico"))).status).toBe(404);
      expect((await fetch(`${base}?code=c`, { method: "POST" })).status).toBe(405);
      expect((await fetch(`${base}?foo=1`)).status).toBe(400);
      expect((await fetch(`${base}?code=a&code=b&state=s`)).status).toBe(400);
      const res = await fetch(`${base}?code=code-123&state=s&iss=https%3A%2F%2Fop`);
      expect(res.status).toBe(200);
      expect(res.headers.get("cache-control")).toBe("no-store");
      const page = await res.text();
      expect(page).toMatch(/You may close this window/);
      expect(page).not.toContain("code-123");
      expect(await loopback.result).toEqual({ code: "code-123", state: "s", iss: "https://op" });
      // The listener closed behind the first answer.
      await expect(fetch(`${base}?code=again&state=s`)).rejects.toThrow();
    } finally {
      await loopback.close();
    }
  });

  it("passes a provider error through for checkCallback", async () => {
    const loopback = await startLoopbackRedirect();
    await fetch(`${loopback.redirectUri}?error=access_denied&error_description=no&state=s`);
    expect(await loopback.result).toEqual({
      error: "access_denied",
      errorDescription: "no",
      state: "s",
    });
    await loopback.close();
  });

  it("rejects expired_token after the timeout, and with AbortError when closed first", async () => {
    const slow = await startLoopbackRedirect({ timeoutMs: 50 });
    const err: unknown = await slow.result.catch((e: unknown) => e);
    expect(isOAuthError(err, "expired_token")).toBe(true);
    const closed = await startLoopbackRedirect({ path: "/cb" });
    expect(closed.redirectUri).toMatch(/\/cb$/);
    await closed.close();
    await closed.close();
    await expect(closed.result).rejects.toHaveProperty("name", "AbortError");
  });

  it("closes and rejects with the reason when the signal aborts", async () => {
    const abort = new AbortController();
    const loopback = await startLoopbackRedirect({ signal: abort.signal });
    abort.abort(new Error("daemon stopping"));
    await expect(loopback.result).rejects.toThrow("daemon stopping");
    await expect(fetch(loopback.redirectUri)).rejects.toThrow();
  });
});

function catching(f: () => unknown): unknown {
  try {
    f();
  } catch (err) {
    return err;
  }
  throw new Error("expected a throw");
}
