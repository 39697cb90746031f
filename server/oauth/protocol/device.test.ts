import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  DEVICE_CODE_GRANT,
  type PollDeviceOptions,
  pollDeviceToken,
  startDeviceAuthorization,
} from "./device.js";
import {
  oauthFailure,
  reply,
  type ScriptedHandler,
  type ScriptedServer,
  startScriptedServer,
} from "./test-server.js";
import type { ProviderEndpoints } from "./types.js";

let server: ScriptedServer;
let endpoints: ProviderEndpoints;
const client = { clientId: "cli" };
const TOKENS = { access_token: "at", token_type: "bearer", refresh_token: "rt" };

beforeAll(async () => {
  server = await startScriptedServer();
  endpoints = { token: `${server.url}/token`, deviceAuthorization: `${server.url}/device` };
});
afterAll(() => server.close());
beforeEach(() => {
  server.requests.length = 0;
});

describe("startDeviceAuthorization", () => {
  it("reads Google's verification_url and defaults the interval to 5 s", async () => {
    server.answer((_req, res) =>
      reply(res, 200, {
        device_code: "dc",
        user_code: "ABCD-EFGH",
        verification_url: "https://www.google.com/device",
        expires_in: "1800",
      }),
    );
    const d = await startDeviceAuthorization(endpoints, client, ["a", "b"], { now: () => 1000 });
    expect(d).toEqual({
      deviceCode: "dc",
      userCode: "ABCD-EFGH",
      verificationUri: "https://www.google.com/device",
      expiresIn: 1800,
      expiresAt: 1000 + 1_800_000,
      intervalMs: 5000,
    });
    expect(Object.fromEntries(new URLSearchParams(server.requests[0]?.body))).toEqual({
      scope: "a b",
      client_id: "cli",
    });
  });

  it("refuses an answer without a device code, and a provider without the endpoint", async () => {
    server.answer((_req, res) =>
      reply(res, 200, { user_code: "u", verification_uri: "x", expires_in: 5 }),
    );
    expect((await oauthFailure(startDeviceAuthorization(endpoints, client, []))).message).toMatch(
      /device_code/,
    );
    const none = { token: endpoints.token };
    expect((await oauthFailure(startDeviceAuthorization(none, client, []))).kind).toBe("config");
  });
});

describe("pollDeviceToken", () => {
  it("sends the device_code grant and waits the interval before every poll", async () => {
    const clock = fakeClock();
    script(
      (_r, res) => reply(res, 400, { error: "authorization_pending" }),
      (_r, res) => reply(res, 200, TOKENS),
    );
    const tokens = await pollDeviceToken(endpoints, client, "dc", clock.opts(1000, 60_000));
    expect(tokens).toEqual({ accessToken: "at", tokenType: "Bearer", refreshToken: "rt" });
    expect(clock.waits).toEqual([1000, 1000]);
    expect(Object.fromEntries(new URLSearchParams(server.requests[0]?.body))).toEqual({
      grant_type: DEVICE_CODE_GRANT,
      device_code: "dc",
      client_id: "cli",
    });
  });

  it("slow_down: the step for good, or GitHub's new interval sent with HTTP 200", async () => {
    const clock = fakeClock();
    script(
      (_r, res) => reply(res, 400, { error: "slow_down" }),
      (_r, res) => reply(res, 400, { error: "authorization_pending" }),
      (_r, res) => reply(res, 200, { error: "slow_down", interval: 10 }),
      (_r, res) => reply(res, 200, TOKENS),
    );
    const opts = { ...clock.opts(1000, 60_000), slowDownStepMs: 500 };
    await pollDeviceToken(endpoints, client, "dc", opts);
    expect(clock.waits).toEqual([1000, 1500, 1500, 10_000]);
  });

  it("retries transient errors no faster than the interval, longer when Retry-After says", async () => {
    const clock = fakeClock();
    script(
      (_r, res) => reply(res, 503, "", { "retry-after": "3" }),
      (_r, res) => reply(res, 502, "<html>"),
      (_r, res) => reply(res, 200, TOKENS),
    );
    await pollDeviceToken(endpoints, client, "dc", clock.opts(1000, 60_000));
    expect(clock.waits).toEqual([1000, 3000, 1000]);
  });

  it("ends with access_denied, expired_token or invalid_grant from the provider", async () => {
    for (const error of ["access_denied", "expired_token", "invalid_grant"]) {
      server.answer((_r, res) => reply(res, 400, { error }));
      const err = await oauthFailure(
        pollDeviceToken(endpoints, client, "dc", fakeClock().opts(10, 60_000)),
      );
      expect(err.kind).toBe(error);
    }
  });

  it("stops at expiresAt without a poll past it, the last wait cut short", async () => {
    const clock = fakeClock();
    server.answer((_r, res) => reply(res, 400, { error: "authorization_pending" }));
    const err = await oauthFailure(
      pollDeviceToken(endpoints, client, "dc", clock.opts(1000, 2500)),
    );
    expect(err).toMatchObject({ kind: "expired_token" });
    expect(clock.waits).toEqual([1000, 1000, 500]);
    expect(server.requests).toHaveLength(2);
  });

  it("rejects with the signal's reason when aborted while waiting", async () => {
    const abort = new AbortController();
    server.answer((_r, res) => reply(res, 400, { error: "authorization_pending" }));
    const poll = pollDeviceToken(endpoints, client, "dc", {
      intervalMs: 60_000,
      expiresAt: Date.now() + 120_000,
      signal: abort.signal,
    });
    abort.abort(new Error("cancelled by the user"));
    await expect(poll).rejects.toThrow("cancelled by the user");
  });
});

/** Answers the next requests with `handlers` in turn, the last one repeating. */
function script(...handlers: ScriptedHandler[]): void {
  let i = 0;
  server.answer((req, res) => {
    const h = handlers[Math.min(i++, handlers.length - 1)];
    h?.(req, res);
  });
}

/** A clock that advances only when the poller sleeps, recording each wait. */
function fakeClock() {
  let now = 0;
  const waits: number[] = [];
  return {
    waits,
    opts(intervalMs: number, expiresAt: number): PollDeviceOptions {
      return {
        intervalMs,
        expiresAt,
        now: () => now,
        sleep: async (ms) => {
          waits.push(ms);
          now += ms;
        },
      };
    },
  };
}
