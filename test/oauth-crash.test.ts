/**
 * kill -9 of secretsd around a refresh-token rotation (issue #10): the BUILT secretsd as a
 * child process, its fsync and fdatasync slowed by an LD_PRELOAD library (test/fixtures/
 * slow-fsync.c, built by test/helpers/slow-fsync.ts), against a real OpenID provider with
 * rotation on (test/helpers/oauth-provider.ts), and a VM watching the credential over TCP.
 *
 * Killed after the provider rotated and the commit's line reached the journal, while its
 * fdatasync still sleeps (each cycle; every other one waits a little first and reads):
 * - neither the VM nor a reader got the access token of that refresh (nothing is visible
 *   before it is durable);
 * - after a restart the stored refresh token is the one the provider rotated to: introspection
 *   says active, and a refresh with it works and reaches the VM.
 * Killed after the provider rotated but before its answer reached secretsd: the stored token
 * is the old one, the provider refuses it (reuse revokes the grant), and the credential ends in
 * "needs login" after exactly one request: no loop.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createClient, type VmAuthClient } from "../client/index.js";
import { OauthLoginMethod, OauthLoginState, OauthState } from "../proto/gen/vmauth/v1/oauth_pb.js";
import type { OAuthProvider, TokenResponseInfo } from "./helpers/oauth-provider.js";
import { credentialFor, startOAuthProvider } from "./helpers/oauth-provider.js";
import { approveDevice } from "./helpers/oauth-user.js";
import { type DaemonProcess, spawnDaemon } from "./helpers/process.js";
import { buildSlowFsync } from "./helpers/slow-fsync.js";
import { testRoot } from "./helpers/values.js";
import { openWatch, type TestWatch } from "./helpers/watch.js";

const CYCLES = 4;
/**
 * fdatasync (a journal append) sleeps this long first, so a commit stays in flight that long;
 * fsync (snapshot and header writes, at start) only a little, to keep restarts short.
 */
const SLOW = { SLOW_FSYNC_MS: "50", SLOW_FDATASYNC_MS: "400" };
/** How long into that sleep odd cycles wait before the kill. */
const LOOK_MS = 100;
/** Long enough that the scheduler never refreshes on its own during the test (~45 s at the earliest). */
const TTL = 60;
const NAME = "crashcred";
const ENV = "CRASH_TOKEN";
const VM = "vm-oauth-crash";

const slow = buildSlowFsync("oauth crash tests");
const { preload, why, dir: work } = slow;

afterAll(() => slow.remove());

describe.skipIf(!preload && !slow.required)(
  "kill -9 of secretsd around a refresh-token rotation",
  () => {
    let p: OAuthProvider;
    let host: Host;
    let vmToken = "";
    /** Every access token the VM was ever sent, over every stream it had. */
    const vmSaw = new Set<string>();

    beforeAll(async () => {
      if (!preload) throw new Error(`no fault-injection library: ${why}`);
      p = await startOAuthProvider({
        accessTokenTtlSec: TTL,
        deviceInterval: 1,
        clientSecret: "cs-test-oauth-crash-0123456789abcdef",
      });
      host = createHost();
      await host.start();
      vmToken = (await host.client.access.createVm({ name: VM })).token;
      await host.client.oauth.addOAuth(
        credentialFor(p, { name: NAME, env: ENV, scope: `vm:${VM}` }),
      );
      const start = await host.client.oauth.startOAuthLogin({
        name: NAME,
        method: OauthLoginMethod.DEVICE,
      });
      await approveDevice(p.issuer, start.userCode);
      const done = await host.client.oauth.waitOAuthLogin(
        { loginId: start.loginId, waitMs: 10_000 },
        { deadlineMs: 15_000 },
      );
      expect(done.state, done.error).toBe(OauthLoginState.DONE);
      host.watch();
      await host.vmShows(last(p.issued.accessTokens));
    }, 30_000);

    afterAll(async () => {
      await host?.stop();
      await p?.stop();
    });

    test("killed once the commit reached the journal, its fdatasync still sleeping: the rotated token is stored and works", async () => {
      const timings: string[] = [];
      for (let cycle = 0; cycle < CYCLES; cycle++) {
        const t0 = Date.now();
        const what = (s: string) => `cycle ${cycle}: ${s}`;
        const rotatedBefore = p.issued.refreshTokens.length;
        const durable = last(p.issued.accessTokens);
        const journal = host.journal();
        const answered = nextTokenResponse(p);
        const refresh = settle(host.client.oauth.refreshOAuth({ name: NAME }));
        const info = await answered;
        const tAnswer = Date.now();
        expect(info.status, what("the provider answered the refresh")).toBe(200);
        expect(p.issued.refreshTokens.length, what("the provider rotated")).toBe(rotatedBefore + 1);
        // The write has reached the file; its fdatasync sleeps. Even cycles kill at once; odd
        // ones first give a token published too early the time to reach the VM, and read it.
        await journal.grown(3000);
        const tWrite = Date.now();
        let peek: Promise<string | undefined> | undefined;
        if (cycle % 2 === 1) {
          peek = host.client.secrets.getSecretValue({ name: NAME }).then(
            (v) => v.value,
            () => undefined,
          );
          await sleep(LOOK_MS);
        }
        await host.kill9();
        const tKill = Date.now();
        expect((await refresh).ok, what("the refresh was answered before the kill")).toBe(false);
        const killedAccess = last(p.issued.accessTokens);
        const rotated = last(p.issued.refreshTokens);
        expect(vmSaw.has(killedAccess), what("the VM got a token that was not yet durable")).toBe(
          false,
        );
        // A reader meanwhile got the durable token (or no answer): never the one in flight.
        if (peek)
          expect([undefined, durable], what("a reader got a token not yet durable")).toContain(
            await peek,
          );

        await host.start();
        const tUp = Date.now();
        const stored = await host.client.secrets.getSecretValue({
          name: NAME,
          includeHostOnly: true,
        });
        expect(stored.refreshToken, what("the stored refresh token is the rotated one")).toBe(
          rotated,
        );
        // The commit was whole on disk: the access token it held is the current one.
        expect(stored.value).toBe(killedAccess);
        expect((await p.introspect(rotated)).active, what("the stored token is active")).toBe(true);
        host.watch();
        const before = p.frontDoor.tokenRequestsFor("refresh_token");
        await host.client.oauth.refreshOAuth({ name: NAME });
        expect(p.frontDoor.tokenRequestsFor("refresh_token") - before).toBe(1);
        const fresh = last(p.issued.accessTokens);
        expect(fresh).not.toBe(killedAccess);
        await host.vmShows(fresh);
        const c = await credential(host.client);
        expect(c.state).toBe(OauthState.OK);
        expect(c.lastError).toBe("");
        timings.push(
          `cycle ${cycle}: answer ${tAnswer - t0} ms, line in the journal +${tWrite - tAnswer} ms, ` +
            `killed +${tKill - tWrite} ms${peek ? ` (${LOOK_MS} ms later)` : ""}, up again +${tUp - tKill} ms, verified +${Date.now() - tUp} ms`,
        );
      }
      console.info(`oauth crash test:\n  ${timings.join("\n  ")}`);
    }, 30_000);

    test("killed after the provider rotated, before its answer reached secretsd: needs login after one refusal, no loop", async () => {
      const old = (await host.client.secrets.getSecretValue({ name: NAME, includeHostOnly: true }))
        .refreshToken;
      expect(old).toBe(last(p.issued.refreshTokens));
      const rotatedBefore = p.issued.refreshTokens.length;
      const responses: TokenResponseInfo[] = [];
      p.frontDoor.onTokenResponse = (info) => void responses.push(info);
      // The provider answers at once; the front door sits on the answer.
      p.frontDoor.holdToken(3000);
      const refresh = settle(host.client.oauth.refreshOAuth({ name: NAME }));
      await until(
        () => p.issued.refreshTokens.length > rotatedBefore,
        "the provider rotated",
        3000,
      );
      await host.kill9();
      expect(responses, "the answer was sent before the kill").toEqual([]);
      expect((await refresh).ok).toBe(false);
      const rotated = last(p.issued.refreshTokens);
      const lostAccess = last(p.issued.accessTokens);
      expect(vmSaw.has(lostAccess)).toBe(false);

      await host.start();
      const stored = await host.client.secrets.getSecretValue({
        name: NAME,
        includeHostOnly: true,
      });
      expect(stored.refreshToken, "the old token is still the stored one").toBe(old);
      const before = p.frontDoor.tokenRequestsFor("refresh_token");
      await expect(host.client.oauth.refreshOAuth({ name: NAME })).rejects.toMatchObject({
        code: "failed_precondition",
        message: expect.stringMatching(
          new RegExp(`needs login: the provider refused the refresh token.*oauth login ${NAME}`),
        ),
      });
      const c = await credential(host.client);
      expect(c.state).toBe(OauthState.NEEDS_LOGIN);
      expect(c.lastError).toMatch(/^the provider refused the refresh token/);
      // The reuse revoked the grant at the provider: the token it rotated to is dead too.
      expect((await p.introspect(rotated)).active).toBe(false);
      // Asked again, and left alone for a while: nothing more reaches the provider.
      await expect(host.client.oauth.refreshOAuth({ name: NAME })).rejects.toMatchObject({
        code: "failed_precondition",
      });
      await sleep(1500);
      expect(p.frontDoor.tokenRequestsFor("refresh_token") - before).toBe(1);
      expect(vmSaw.has(lostAccess)).toBe(false);
      p.frontDoor.onTokenResponse = undefined;
    }, 20_000);

    // --- the host ---

    interface Host {
      client: VmAuthClient;
      start(): Promise<void>;
      /** Opens the VM's stream (over TCP, with its VM token); what it is sent goes to `vmSaw`. */
      watch(): void;
      vmShows(token: string): Promise<void>;
      /** The journal as it is now, to wait for a line about the credential to be added. */
      journal(): { grown(ms: number): Promise<void> };
      kill9(): Promise<void>;
      stop(): Promise<void>;
    }

    function createHost(): Host {
      const dataDir = mkdtempSync(join(testRoot() ?? work, "oauth-crash-host-"));
      const wal = join(dataDir, "store.json.wal");
      let proc: DaemonProcess | undefined;
      let vm: VmAuthClient | undefined;
      let w: TestWatch | undefined;
      const collect = () => {
        for (const s of w?.snapshots() ?? []) {
          if (!s || !("vars" in s)) continue;
          for (const v of s.vars) if (v.name === ENV) vmSaw.add(v.value);
        }
      };
      const host: Host = {
        client: undefined as unknown as VmAuthClient,
        async start() {
          proc = await spawnDaemon(dataDir, ["--listen", "127.0.0.1:0"], {
            env: { ...process.env, LD_PRELOAD: preload, ...SLOW },
          });
          host.client = createClient({ socket: proc.socket ?? "", deadlineMs: 10_000 });
        },
        watch() {
          vm = createClient({ server: proc?.tcp ?? "", token: vmToken });
          w = openWatch(vm, {});
        },
        async vmShows(token) {
          await until(
            () => {
              collect();
              return vmSaw.has(token);
            },
            "the VM shows the new access token",
            5000,
          );
        },
        journal() {
          const seen = new Set(lines(wal));
          // The journal line of a commit that puts the credential (journal.ts encodes each).
          const mark = `"set":{"secrets":{"${NAME}":`;
          return {
            async grown(ms) {
              const end = Date.now() + ms;
              while (!lines(wal).some((l) => !seen.has(l) && l.includes(mark))) {
                if (Date.now() > end) throw new Error("timed out: the refresh's journal line");
                await sleep(1);
              }
            },
          };
        },
        async kill9() {
          proc?.child.kill("SIGKILL");
          await proc?.exited;
          proc = undefined;
          host.client.close();
          // Every frame sent before the kill has been read once the stream has ended.
          await w?.done;
          collect();
          vm?.close();
        },
        async stop() {
          w?.cancel();
          vm?.close();
          if (!proc) return;
          proc.child.kill("SIGTERM");
          await proc.exited;
          host.client.close();
        },
      };
      return host;
    }
  },
);

// --- internal ---

async function credential(client: VmAuthClient) {
  const c = (await client.oauth.listOAuth({})).credentials.find((x) => x.name === NAME);
  if (!c) throw new Error(`no credential ${NAME}`);
  return c;
}

/** The next refresh_token answer the front door sends. */
function nextTokenResponse(p: OAuthProvider): Promise<TokenResponseInfo> {
  return new Promise((res) => {
    p.frontDoor.onTokenResponse = (info) => {
      if (info.grantType !== "refresh_token") return;
      p.frontDoor.onTokenResponse = undefined;
      res(info);
    };
  });
}

/** A call's outcome without an unhandled rejection while the test waits elsewhere. */
function settle<T>(call: Promise<T>): Promise<{ ok: boolean }> {
  return call.then(
    () => ({ ok: true }),
    () => ({ ok: false }),
  );
}

/** The whole lines of `file` (a line still being written is not one yet). */
function lines(file: string): string[] {
  try {
    return readFileSync(file, "utf8").split("\n").slice(0, -1);
  } catch {
    return [];
  }
}

function last(xs: string[]): string {
  const x = xs[xs.length - 1];
  if (x === undefined) throw new Error("none yet");
  return x;
}

async function until(pred: () => boolean, what: string, ms: number) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out: ${what}`);
    await sleep(5);
  }
}

function sleep(ms: number) {
  return new Promise((r) => setTimeout(r, ms));
}
