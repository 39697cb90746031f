/**
 * OAuth refresh end to end (issue #10): "refresh end to end (provider answer → every watching
 * VM has the token) at 100 and 1,000 VMs, next to a plain rotation of the same size".
 *
 * A real OpenID provider (oidc-provider behind the tests' front door,
 * test/helpers/oauth-provider.ts) runs in this process; the built secretsd is the measured
 * child (bench/lib/secretsd.ts). Per N: a fresh secretsd holding one global oauth credential,
 * logged in with the device grant (the bench plays the user), and one global static secret
 * whose value has the access token's byte size; N VMs, each watching over TCP with its own
 * token from the fan-out part's watcher processes (bench/children/watch-client.ts). Rounds
 * alternate (ABBA) a RefreshOAuth and a RotateSecret over the admin socket against the same
 * daemon and the same streams; each waits until every watcher has the commit's revision.
 */
import { randomBytes } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { join } from "node:path";
import { createClient } from "../../client/index.js";
import { OauthLoginMethod, OauthLoginState } from "../../proto/gen/vmauth/v1/oauth_pb.js";
import type { OAuthProvider } from "../../test/helpers/oauth-provider.js";
import { credentialFor, startOAuthProvider } from "../../test/helpers/oauth-provider.js";
import { approveDevice } from "../../test/helpers/oauth-user.js";
import type { ExpectResult } from "../children/watch-client.js";
import type { Ctx, Section } from "../lib/context.js";
import { cpuMs } from "../lib/context.js";
import type { Peer } from "../lib/ipc.js";
import { stopChild } from "../lib/proc.js";
import type { Secretsd } from "../lib/secretsd.js";
import { fakeKey, pool, startSecretsd } from "../lib/secretsd.js";
import { fmt, median, ms, nowMs, percentile, sleep, table } from "../lib/stats.js";
import { spawnWorker } from "../lib/workers.js";

type Kind = "oauth" | "rotation";
const KINDS: Kind[] = ["oauth", "rotation"];
/** Watcher processes, as in the fan-out part. */
const CLIENTS = 4;
const OAUTH = "bench-oauth";
const OAUTH_ENV = "BENCH_OAUTH_ACCESS_TOKEN";
const STATIC = "bench-static";
/** Long enough that the scheduler never refreshes during a run (it would at 80%). */
const TOKEN_TTL_SEC = 3600;

/** One round; times are absolute CLOCK_MONOTONIC ms. */
interface Round {
  kind: Kind;
  ok: boolean;
  /** The trigger RPC (RefreshOAuth / RotateSecret) sent, its reply arrived. */
  send: number;
  reply: number;
  /** OAuth: the front door has sent the provider's token response (NaN for a rotation). */
  answer: number;
  /** First and last watcher arrival of the new revision. */
  first: number;
  last: number;
  /** utime+stime of secretsd from send to the last report (10 ms ticks). */
  cpu: number;
  /** CPU of this process (coordinator and, for OAuth, the provider) over the same window. */
  selfCpu: number;
}

interface NResult {
  n: number;
  tokenBytes: number;
  frameBytes: number;
  rounds: Round[];
  /** RefreshOAuth calls vs refresh_token requests the provider saw. */
  refreshCalls: number;
  refreshRequests: number;
  failures: string[];
}

const LABEL: Record<Kind, string> = {
  oauth: "OAuth refresh (RefreshOAuth)",
  rotation: "plain rotation (RotateSecret)",
};

export async function benchOAuthRefresh(ctx: Ctx, ns: number[]): Promise<Section> {
  const provider = await startOAuthProvider({
    accessTokenTtlSec: TOKEN_TTL_SEC,
    clientSecret: `cs-bench-${randomBytes(16).toString("hex")}`,
    deviceInterval: 1,
  });
  const results: NResult[] = [];
  try {
    for (const n of ns) results.push(await runN(ctx, provider, n));
  } finally {
    await provider.stop();
  }
  return { title: "OAuth refresh fan-out", body: report(ctx, results), targets: [] };
}

// --- one N ---

async function runN(ctx: Ctx, provider: OAuthProvider, n: number): Promise<NResult> {
  const pairs = ctx.quick ? 5 : 15;
  const warmup = 2;
  const base = join(ctx.tmp, `oauth-refresh-${n}`);
  await mkdir(base, { recursive: true, mode: 0o700 });
  const res: NResult = {
    n,
    tokenBytes: 0,
    frameBytes: 0,
    rounds: [],
    refreshCalls: 0,
    refreshRequests: 0,
    failures: [],
  };
  const door = provider.frontDoor;
  let sd: Secretsd | undefined;
  const clients: Peer[] = [];
  try {
    ctx.log(`oauth-refresh N=${n}: secretsd, oauth credential (device login), ${n} VMs`);
    sd = await startSecretsd({
      dataDir: join(base, "secretsd"),
      logDir: ctx.logDir,
      tag: `oauth-refresh-${n}`,
    });
    const { admin, pid } = sd;
    await admin.oauth.addOAuth(
      credentialFor(provider, { name: OAUTH, env: OAUTH_ENV, scope: "global" }),
    );
    const start = await admin.oauth.startOAuthLogin({
      name: OAUTH,
      method: OauthLoginMethod.DEVICE,
    });
    await approveDevice(provider.issuer, start.userCode);
    const done = await admin.oauth.waitOAuthLogin(
      { loginId: start.loginId, waitMs: 20_000 },
      { deadlineMs: 30_000 },
    );
    if (done.state !== OauthLoginState.DONE) throw new Error(`device login: ${done.error}`);
    res.tokenBytes = Buffer.byteLength(provider.issued.accessTokens.at(-1) ?? "");
    if (res.tokenBytes === 0) throw new Error("the provider issued no access token");
    await admin.secrets.createSecret({
      name: STATIC,
      value: fakeKey(res.tokenBytes),
      scope: "global",
    });
    const names = Array.from({ length: n }, (_, i) => `vm-${String(i).padStart(5, "0")}`);
    const tokens = await pool(
      names,
      32,
      async (name) => (await admin.access.createVm({ name })).token,
    );

    for (let i = 0; i < CLIENTS; i++)
      clients.push(spawnWorker("watch-client", ctx.logDir, `oauth-${n}-${i}`));
    ctx.log(`oauth-refresh N=${n}: opening ${n} WatchEnv streams`);
    const replies = await Promise.all(
      clients.map((c, i) =>
        c.request<{ count: number; frameBytes: number }>(
          {
            type: "connect",
            system: "secretsd",
            target: (sd as Secretsd).tcp,
            streams: names
              .map((name, k) => ({ name, token: tokens[k], index: k }))
              .filter((_, k) => k % CLIENTS === i),
          },
          300_000,
        ),
      ),
    );
    res.frameBytes = Math.max(...replies.map((r) => r.frameBytes));

    let answer = Number.NaN;
    door.onTokenResponse = (info) => {
      if (info.grantType === "refresh_token" && info.status === 200) answer = nowMs();
    };
    const refreshes0 = door.tokenRequestsFor("refresh_token");
    const trigger: Record<Kind, () => Promise<bigint>> = {
      oauth: async () => {
        res.refreshCalls++;
        return (await admin.oauth.refreshOAuth({ name: OAUTH })).revision;
      },
      rotation: async () =>
        (await admin.secrets.rotateSecret({ name: STATIC, value: fakeKey(res.tokenBytes) }))
          .revision,
    };
    const round = async (kind: Kind): Promise<Round> => {
      answer = Number.NaN;
      const cpu0 = cpuMs(pid);
      const self0 = process.cpuUsage();
      const send = nowMs();
      let seq: number;
      try {
        seq = Number(await trigger[kind]());
      } catch (err) {
        res.failures.push(`${kind}: ${(err as Error).message}`);
        const t = nowMs();
        const nan = Number.NaN;
        return {
          kind,
          ok: false,
          send,
          reply: t,
          answer,
          first: nan,
          last: nan,
          cpu: 0,
          selfCpu: 0,
        };
      }
      const reply = nowMs();
      const got = await Promise.all(
        clients.map((c) =>
          c.request<ExpectResult>(
            { type: "expect", system: "secretsd", seq, mode: "recv", timeoutMs: 30_000 },
            60_000,
          ),
        ),
      );
      const self = process.cpuUsage(self0);
      const ok = got.every((r) => !r.timedOut && r.reached === r.count);
      if (kind === "oauth" && !Number.isFinite(answer)) {
        res.failures.push("oauth round: the front door saw no successful refresh_token response");
      }
      if (!ok) {
        const reached = got.reduce((a, r) => a + r.reached, 0);
        const why = got.find((r) => r.firstError)?.firstError ?? "timeout";
        res.failures.push(`${kind} round: ${reached}/${n} watchers got revision ${seq} (${why})`);
      }
      return {
        kind,
        ok: ok && (kind === "rotation" || Number.isFinite(answer)),
        send,
        reply,
        answer,
        first: Math.min(...got.map((r) => r.minT)),
        last: Math.max(...got.map((r) => r.maxT)),
        cpu: cpuMs(pid) - cpu0,
        selfCpu: (self.user + self.system) / 1000,
      };
    };
    const gap = () => sleep(120 + Math.random() * 80);

    ctx.log(`oauth-refresh N=${n}: ${warmup} warm-up + ${pairs} rounds × 2 kinds`);
    for (let i = 0; i < warmup; i++) {
      for (const kind of KINDS) {
        await round(kind);
        await gap();
      }
    }
    res.failures.length = 0;
    for (let i = 0; i < pairs; i++) {
      // ABBA: each kind goes first in half the pairs.
      const order: Kind[] = i % 2 === 0 ? ["oauth", "rotation"] : ["rotation", "oauth"];
      for (const kind of order) {
        res.rounds.push(await round(kind));
        await gap();
      }
      if (i === 0) await checkDelivered(sd, tokens[0] as string, provider, res);
    }
    res.refreshRequests = door.tokenRequestsFor("refresh_token") - refreshes0;
    const show = (k: Kind) =>
      `${k} p50 ${ms(median(res.rounds.filter((r) => r.kind === k && r.ok).map(e2e)))}`;
    ctx.log(`oauth-refresh N=${n}: ${KINDS.map(show).join(", ")}`);
    return res;
  } finally {
    door.onTokenResponse = undefined;
    for (const c of clients) {
      await c.request({ type: "close", system: "secretsd" }, 10_000).catch(() => {});
      await stopChild(c.child, 5000);
    }
    if (sd) await sd.stop();
    await rm(base, { recursive: true, force: true });
  }
}

/** A VM's GetEnv holds the access token the provider issued last (the rounds measure revisions). */
async function checkDelivered(sd: Secretsd, vmToken: string, p: OAuthProvider, res: NResult) {
  const vm = createClient({ server: sd.tcp, token: vmToken });
  try {
    const { snapshot } = await vm.env.getEnv({});
    const got = snapshot?.vars.find((v) => v.name === OAUTH_ENV)?.value;
    if (got !== p.issued.accessTokens.at(-1)) {
      res.failures.push("a VM's GetEnv does not hold the access token the provider issued last");
    }
  } finally {
    vm.close();
  }
}

// --- report ---

const e2e = (r: Round) => r.last - r.send;

function report(ctx: Ctx, results: NResult[]): string {
  const rows: string[][] = [];
  const verdict: string[] = [];
  const spread = (v: number[]) =>
    `**${ms(median(v))}** / ${ms(percentile(v, 0.9))} / ${ms(Math.min(...v))}–${ms(Math.max(...v))}`;
  for (const r of results) {
    const of = (k: Kind) => r.rounds.filter((x) => x.kind === k && x.ok);
    const med = (k: Kind, f: (x: Round) => number) => median(of(k).map(f));
    for (const k of KINDS) {
      const rs = of(k);
      rows.push([
        fmt(r.n),
        LABEL[k],
        spread(rs.map(e2e)),
        k === "oauth" ? spread(rs.map((x) => x.last - x.answer)) : "—",
        k === "oauth" ? ms(med(k, (x) => x.answer - x.send)) : "—",
        ms(med(k, (x) => x.reply - x.send)),
        ms(med(k, (x) => x.last - x.first)),
        ms(med(k, (x) => x.cpu)),
        ms(med(k, (x) => x.selfCpu)),
        `${rs.length}`,
      ]);
    }
    const rot = med("rotation", e2e);
    verdict.push(
      `N=${fmt(r.n)}: OAuth ÷ rotation, medians of *sent → last VM*: **${(med("oauth", e2e) / rot).toFixed(2)}×**; ` +
        `OAuth *provider answer → last VM* ÷ rotation *sent → last VM*: **${(med("oauth", (x) => x.last - x.answer) / rot).toFixed(2)}×**. ` +
        `The provider saw ${r.refreshRequests} refresh requests for ${r.refreshCalls} RefreshOAuth calls ` +
        `(warm-up included; equal means no scheduled refresh ran during the rounds).`,
    );
  }
  const failures = results.flatMap((r) => r.failures.map((f) => `N=${fmt(r.n)}: ${f}`));
  return [
    "Refresh end to end (issue #10: *provider answer → every watching VM has the token*) next to a " +
      "plain rotation of the same size, in the same run, against the same secretsd and the same watching VMs. " +
      "Per N: a fresh built secretsd (as in the fan-out part) holding one global oauth credential (preset " +
      "`oidc`, confidential client, refresh-token rotation on, no expiry env var) logged in with the device grant, " +
      `and one global static secret whose value has the access token's byte size (${results.map((r) => `${r.tokenBytes} B`)[0] ?? "?"}); ` +
      `so both kinds of change replace one value of the same size in the same ${results.map((r) => `${r.frameBytes} B`)[0] ?? "?"} snapshot frame. ` +
      `N VMs created through the API, each watching over TCP with its own token on its own connection, spread over ${CLIENTS} ` +
      "watcher processes (bench/children/watch-client.ts). The provider is oidc-provider behind the tests' front door " +
      "(test/helpers/oauth-provider.ts, in-memory, on loopback) in the bench's coordinator process, not in secretsd's; " +
      `access tokens live ${TOKEN_TTL_SEC / 60} min so that the scheduler does not refresh during the rounds. ` +
      `Rounds alternate the two kinds (ABBA: each goes first in half the pairs), ${results[0]?.rounds.filter((x) => x.kind === "oauth").length ?? "?"} of each after 2 warm-up pairs, ` +
      "120–200 ms apart; each waits until every watcher has the revision of the change's commit (the revision RefreshOAuth / " +
      "RotateSecret answers with). After the first pair one VM's GetEnv is checked to hold the access token the provider issued last.",
    "",
    "Figures (CLOCK_MONOTONIC, shared by all processes): *sent → last VM*: the trigger RPC (RefreshOAuth or RotateSecret, " +
      "admin socket) leaves the coordinator → the last watcher received the snapshot carrying the change — the fair " +
      "pairing, what `secretsctl oauth refresh` vs `secretsctl rotate` cost to reach all VMs. For OAuth it includes the " +
      "round trip to the provider (secretsd → token endpoint → answer; *sent → provider answer*). " +
      "*Provider answer → last VM*: the front door has sent the provider's token response (`onTokenResponse`, the " +
      "response handed to the socket) → the last watcher received the new access token: the issue's figure, the broker's own " +
      "work (read the answer, seal the access and refresh tokens and commit them in one durable write, fan out). Each is given as " +
      "**median** / p90 / min–max over the rounds. *Sent → reply*: the trigger RPC's latency. *First → last VM*: the " +
      "spread of the deliveries. *secretsd CPU*: utime+stime of secretsd (10 ms ticks) from sent to the last watcher " +
      "report, median. *Coordinator CPU*: this process over the same window — for OAuth it includes the provider's work " +
      "for the refresh (oidc-provider and the front door), which shares the machine's cores with secretsd as a local " +
      "provider would, and is absent from rotations.",
    "",
    table(
      [
        "N",
        "change",
        "sent → last VM: median / p90 / min–max",
        "provider answer → last VM: median / p90 / min–max",
        "sent → provider answer",
        "sent → reply",
        "first → last VM",
        "secretsd CPU",
        "coordinator CPU",
        "rounds",
      ],
      rows,
    ),
    "",
    ...verdict.map((v) => `- ${v}`),
    ctx.quick ? "\n(--quick: few rounds.)" : "",
    failures.length ? `\nProblems: ${failures.join("; ")}` : "",
  ].join("\n");
}
