/**
 * A real OAuth 2.0 / OpenID provider for tests: `oidc-provider` (in-memory, dev login pages)
 * on 127.0.0.1:0, behind a small HTTP "front door" in the same process whose URL is the
 * issuer. The front door adds what the provider does not do (an `interval` in the device
 * authorization response, `slow_down`, 5xx before or after the provider saw a token request),
 * counts token requests, and registers every token it relays with `track()`, so the suite's
 * leak check (test/global-setup.ts) fails if one reaches a log or store file.
 * Facts behind the settings: /work/shared/notes/oauth-testing.md.
 */
import { randomBytes } from "node:crypto";
import { appendFileSync } from "node:fs";
import {
  createServer,
  type IncomingMessage,
  request,
  type Server,
  type ServerResponse,
} from "node:http";
import { join } from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import Provider, { type Adapter, type AdapterPayload, type Configuration } from "oidc-provider";
import { testRoot, track } from "./values.js";

/** The device_code grant type (RFC 8628 §3.4). */
export const DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code";

/** Options of {@link startOAuthProvider}. */
export interface OAuthProviderOptions {
  /** Access token lifetime. @default 5 */
  accessTokenTtlSec?: number;
  /** Device and user code lifetime. @default 600 */
  deviceCodeTtlSec?: number;
  /** A new refresh token on every refresh (the old one dies). @default true */
  refreshTokenRotation?: boolean;
  /** Makes the client confidential (client_secret_basic); registered with track(). */
  clientSecret?: string;
  /** `interval` (seconds) the front door adds to device authorization responses. @default 1 */
  deviceInterval?: number;
  /** Answer `slow_down` when a device code is polled faster than `deviceInterval`. @default false */
  slowDown?: boolean;
  /** A path after host:port in the issuer (RFC 8414 §3.1 tests), e.g. "/tenant-a". @default "" */
  issuerPath?: string;
  /** 404 the OpenID discovery document, leaving only RFC 8414's. @default false */
  hideOidcDiscovery?: boolean;
}

/** What a token response looked like, for {@link FrontDoor.onTokenResponse}. */
export interface TokenResponseInfo {
  grantType: string;
  status: number;
}

/** The front door's counters and fault switches. */
export interface FrontDoor {
  /** POSTs to the token endpoint so far, slow_down and injected failures included. */
  readonly tokenRequests: number;
  /** The same, by `grant_type`. */
  tokenRequestsFor(grantType: string): number;
  /**
   * The next `n` token requests answer `status`: "before" without reaching the provider (an
   * outage: the grant is untouched), "after" once the provider answered, its answer dropped
   * (a lost response: a refresh token was already rotated).
   */
  failToken(n: number, mode: "before" | "after", status?: number): void;
  /** Called once a token response has been sent (for kill -9 tests). */
  onTokenResponse?: ((info: TokenResponseInfo) => void) | undefined;
  /** Holds the next token response `ms` after the provider answered, before sending it. */
  holdToken(ms: number): void;
}

/** A running provider. */
export interface OAuthProvider {
  /** The front door's URL; discovery works from here. */
  issuer: string;
  clientId: string;
  clientSecret?: string;
  tokenEndpoint: string;
  frontDoor: FrontDoor;
  /** Tokens the front door relayed, oldest first. */
  issued: { refreshTokens: string[]; accessTokens: string[] };
  /** Provider events (grant.error, server_error) as lines; also in a file under the test root. */
  events: string[];
  /** Asks introspection about `token` without using it (a separate confidential client). */
  introspect(token: string): Promise<{ active: boolean }>;
  /** Revokes a refresh token (and with it its access tokens). */
  revokeRefreshToken(token: string): Promise<void>;
  stop(): Promise<void>;
}

/**
 * An AddOAuth request for a credential of `provider`'s client (preset oidc, discovery against
 * the front door, the client secret when the client is confidential), offline access asked for.
 */
export function credentialFor(
  provider: Pick<OAuthProvider, "issuer" | "clientId" | "clientSecret">,
  c: { name: string; env: string; scope: string; expiresEnv?: string },
) {
  return {
    ...c,
    preset: "oidc",
    issuer: provider.issuer,
    clientId: provider.clientId,
    clientSecret: provider.clientSecret ?? "",
    scopes: ["openid", "offline_access"],
  };
}

/** Starts the front door, then the provider behind it with the front door's URL as issuer. */
export async function startOAuthProvider(
  options: OAuthProviderOptions = {},
): Promise<OAuthProvider> {
  const prefix = options.issuerPath ?? "";
  const clientId = "vm-auth-test";
  const clientSecret = options.clientSecret === undefined ? undefined : track(options.clientSecret);
  const inspector = { id: "test-introspector", secret: track(randomBytes(24).toString("hex")) };
  const state = newState();
  const events: string[] = [];
  // The relay needs the provider's port, the provider needs the front door's: start this first.
  let relay: Relay = async (_req, res) => void res.writeHead(503).end();
  const front = createServer((req, res) => {
    relay(req, res).catch((err: unknown) => {
      events.push(`front door: ${(err as Error).message}`);
      if (!res.headersSent) res.writeHead(502).end();
      else res.destroy();
    });
  });
  const frontPort = await listen(front);
  const issuer = `http://127.0.0.1:${frontPort}${prefix}`;
  const provider = new Provider(issuer, config(options, clientId, clientSecret, inspector));
  const log = join(testRoot() ?? "/nonexistent", `oauth-provider-${frontPort}.log`);
  const note = (line: string) => {
    events.push(line);
    if (testRoot()) appendFileSync(log, `${line}\n`);
  };
  provider.on("grant.error", (_ctx, err) => note(`grant.error ${describe(err)}`));
  provider.on("server_error", (_ctx, err) => note(`server_error ${describe(err)}`));
  const callback = provider.callback();
  const back = createServer((req, res) => {
    // Mounted under the issuer's path: oidc-provider finds its mount path from originalUrl.
    const url = req.url ?? "/";
    if (prefix !== "" && !url.startsWith(`${prefix}/`)) return void res.writeHead(404).end();
    Object.assign(req, { originalUrl: url });
    req.url = url.slice(prefix.length);
    void callback(req, res);
  });
  const backPort = await listen(back);
  relay = frontDoorRelay(options, prefix, backPort, state);

  const form = (url: string, body: Record<string, string>, auth?: string) =>
    fetch(url, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        ...(auth ? { authorization: auth } : {}),
      },
      body: new URLSearchParams(body),
    });
  return {
    issuer,
    clientId,
    ...(clientSecret === undefined ? {} : { clientSecret }),
    tokenEndpoint: `${issuer}/token`,
    frontDoor: state.door,
    issued: state.issued,
    events,
    async introspect(token) {
      const auth = basicAuth(inspector.id, inspector.secret);
      const res = await form(`${issuer}/token/introspection`, { token }, auth);
      if (res.status !== 200) throw new Error(`introspection answered ${res.status}`);
      return { active: ((await res.json()) as { active: unknown }).active === true };
    },
    async revokeRefreshToken(token) {
      const body = { token, token_type_hint: "refresh_token" };
      const res = clientSecret
        ? await form(`${issuer}/token/revocation`, body, basicAuth(clientId, clientSecret))
        : await form(`${issuer}/token/revocation`, { ...body, client_id: clientId });
      if (res.status !== 200) throw new Error(`revocation answered ${res.status}`);
    },
    async stop() {
      await Promise.all([close(front), close(back)]);
    },
  };
}

// --- internal ---

type Relay = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

interface DoorState {
  door: FrontDoor;
  issued: { refreshTokens: string[]; accessTokens: string[] };
  byGrant: Map<string, number>;
  failures: { mode: "before" | "after"; status: number }[];
  holds: number[];
  lastPoll: Map<string, number>;
}

function newState(): DoorState {
  const s: DoorState = {
    issued: { refreshTokens: [], accessTokens: [] },
    byGrant: new Map(),
    failures: [],
    holds: [],
    lastPoll: new Map(),
    door: {
      get tokenRequests() {
        return [...s.byGrant.values()].reduce((a, b) => a + b, 0);
      },
      tokenRequestsFor: (grant) => s.byGrant.get(grant) ?? 0,
      failToken(n, mode, status = 503) {
        for (let i = 0; i < n; i++) s.failures.push({ mode, status });
      },
      holdToken: (ms) => void s.holds.push(ms),
    },
  };
  return s;
}

function frontDoorRelay(
  opts: OAuthProviderOptions,
  prefix: string,
  port: number,
  s: DoorState,
): Relay {
  const intervalSec = opts.deviceInterval ?? 1;
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const body = await readAll(req);
    const url = new URL(req.url ?? "/", "http://front.door");
    let path = url.pathname + url.search;
    if (url.pathname === `${prefix}/.well-known/openid-configuration` && opts.hideOidcDiscovery) {
      return void res.writeHead(404).end();
    }
    // RFC 8414 §3.1: the well-known segment between host and the issuer's path.
    if (url.pathname === `/.well-known/oauth-authorization-server${prefix}`) {
      path = `${prefix}/.well-known/openid-configuration`;
    }
    if (req.method === "POST" && url.pathname === `${prefix}/token`) {
      return tokenRoute(req, res, body, path);
    }
    const answer = await forward(port, req, path, body);
    if (
      req.method === "POST" &&
      url.pathname === `${prefix}/device/auth` &&
      answer.status === 200
    ) {
      const json = JSON.parse(answer.body.toString()) as Record<string, unknown>;
      if (typeof json.device_code === "string") track(json.device_code);
      answer.body = Buffer.from(JSON.stringify({ ...json, interval: intervalSec }));
    }
    const code = locationCode(answer.headers.location);
    if (code) track(code);
    send(res, answer);
  };

  async function tokenRoute(req: IncomingMessage, res: ServerResponse, body: Buffer, path: string) {
    const params = new URLSearchParams(body.toString());
    const grantType = params.get("grant_type") ?? "";
    s.byGrant.set(grantType, (s.byGrant.get(grantType) ?? 0) + 1);
    res.on("finish", () => s.door.onTokenResponse?.({ grantType, status: res.statusCode }));
    const deviceCode = params.get("device_code");
    if (opts.slowDown && grantType === DEVICE_GRANT && deviceCode) {
      const now = Date.now();
      const last = s.lastPoll.get(deviceCode);
      s.lastPoll.set(deviceCode, now);
      // 50 ms of slack: timers may fire a little early against Date.now.
      if (last !== undefined && now - last < intervalSec * 1000 - 50) {
        return void json(res, 400, { error: "slow_down" });
      }
    }
    const failure = s.failures.shift();
    if (failure?.mode === "before") return void outage(res, failure.status);
    const answer = await forward(port, req, path, body);
    trackTokens(answer.body, s);
    if (failure?.mode === "after") return void outage(res, failure.status);
    const hold = s.holds.shift();
    if (hold) await delay(hold);
    send(res, answer);
  }
}

interface Answer {
  status: number;
  headers: IncomingMessage["headers"];
  body: Buffer;
}

function forward(port: number, req: IncomingMessage, path: string, body: Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const headers = { ...req.headers, "content-length": String(body.length) };
    delete headers["transfer-encoding"];
    const up = request(
      { host: "127.0.0.1", port, method: req.method, path, headers, agent: false },
      (r) => {
        readAll(r).then(
          (b) => resolve({ status: r.statusCode ?? 502, headers: r.headers, body: b }),
          reject,
        );
      },
    );
    up.on("error", reject);
    up.end(body);
  });
}

function send(res: ServerResponse, answer: Answer): void {
  const headers = { ...answer.headers, "content-length": String(answer.body.length) };
  delete headers["transfer-encoding"];
  delete headers.connection;
  res.writeHead(answer.status, headers).end(answer.body);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body));
}

/** What a load balancer answers during an outage: HTML, not JSON. */
function outage(res: ServerResponse, status: number): void {
  res.writeHead(status, { "content-type": "text/html" }).end(`<html><body>${status}</body></html>`);
}

function trackTokens(body: Buffer, s: DoorState): void {
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(body.toString()) as Record<string, unknown>;
  } catch {
    return;
  }
  if (typeof parsed.id_token === "string") track(parsed.id_token);
  if (typeof parsed.access_token === "string")
    s.issued.accessTokens.push(track(parsed.access_token));
  if (typeof parsed.refresh_token === "string") {
    s.issued.refreshTokens.push(track(parsed.refresh_token));
  }
}

function locationCode(location: string | undefined): string | undefined {
  if (!location) return undefined;
  return new URL(location, "http://x").searchParams.get("code") ?? undefined;
}

function config(
  o: OAuthProviderOptions,
  clientId: string,
  secret: string | undefined,
  inspector: { id: string; secret: string },
): Configuration {
  const store = new Map<string, Stored>();
  return {
    adapter: (model: string) => memoryAdapter(model, store),
    clients: [
      {
        client_id: clientId,
        ...(secret === undefined
          ? { token_endpoint_auth_method: "none" }
          : { client_secret: secret, token_endpoint_auth_method: "client_secret_basic" }),
        application_type: "native",
        redirect_uris: ["http://127.0.0.1/callback"],
        grant_types: ["authorization_code", "refresh_token", DEVICE_GRANT],
        response_types: ["code"],
      },
      {
        client_id: inspector.id,
        client_secret: inspector.secret,
        grant_types: [],
        response_types: [],
        redirect_uris: [],
      },
    ],
    clockTolerance: 0,
    cookies: { keys: [randomBytes(32).toString("hex")] },
    features: {
      deviceFlow: { enabled: true },
      revocation: { enabled: true },
      introspection: { enabled: true },
      devInteractions: { enabled: true },
    },
    pkce: { required: () => true },
    scopes: ["openid", "offline_access"],
    rotateRefreshToken: o.refreshTokenRotation ?? true,
    ttl: {
      AccessToken: o.accessTokenTtlSec ?? 5,
      DeviceCode: o.deviceCodeTtlSec ?? 600,
      RefreshToken: 24 * 60 * 60,
      IdToken: 60 * 60,
      Interaction: 60 * 60,
      Session: 60 * 60,
      Grant: 24 * 60 * 60,
    },
    findAccount: (_ctx, id) => ({ accountId: id, claims: () => ({ sub: id }) }),
  };
}

interface Stored {
  payload: AdapterPayload;
  /** Records outlive their expiry by a minute, as in a real database, so that the provider
   * itself answers expired_token for an expired device code instead of "not found". */
  until: number;
}

function memoryAdapter(model: string, store: Map<string, Stored>): Adapter {
  const key = (id: string) => `${model}:${id}`;
  const find = async (id: string | undefined) => {
    const item = id === undefined ? undefined : store.get(key(id));
    if (item && item.until < Date.now()) store.delete(key(id as string));
    return item && item.until >= Date.now() ? item.payload : undefined;
  };
  const index = (name: string, value: string) =>
    store.get(`${name}:${value}`)?.payload.id as string | undefined;
  const put = (k: string, payload: AdapterPayload, until: number) =>
    store.set(k, { payload, until });
  return {
    async upsert(id, payload, expiresIn) {
      const until =
        expiresIn === undefined ? Number.POSITIVE_INFINITY : Date.now() + (expiresIn + 60) * 1000;
      put(key(id), payload, until);
      if (model === "Session" && payload.uid) put(`uid:${payload.uid}`, { id }, until);
      if (model === "DeviceCode" && payload.userCode) {
        put(`userCode:${payload.userCode}`, { id }, until);
      }
      if (payload.grantId) {
        const members = store.get(`grant:${payload.grantId}`)?.payload.members as
          | string[]
          | undefined;
        put(
          `grant:${payload.grantId}`,
          { members: [...(members ?? []), key(id)] },
          Number.POSITIVE_INFINITY,
        );
      }
    },
    find,
    findByUid: (uid) => find(index("uid", uid)),
    findByUserCode: (code) => find(index("userCode", code)),
    async consume(id) {
      const item = store.get(key(id));
      if (item) item.payload.consumed = Math.floor(Date.now() / 1000);
    },
    async destroy(id) {
      store.delete(key(id));
    },
    async revokeByGrantId(grantId) {
      const members = store.get(`grant:${grantId}`)?.payload.members as string[] | undefined;
      for (const member of members ?? []) store.delete(member);
      store.delete(`grant:${grantId}`);
    },
  };
}

/** RFC 6749 §2.3.1: id and secret are form-encoded before base64. */
function basicAuth(id: string, secret: string): string {
  const enc = (v: string) => new URLSearchParams([["", v]]).toString().slice(1);
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString("base64")}`;
}

function describe(err: Error & { error_detail?: unknown }): string {
  return `${err.name}: ${err.message}${err.error_detail ? ` (${String(err.error_detail)})` : ""}`;
}

function readAll(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on("data", (c: Buffer) => chunks.push(c));
    stream.on("end", () => resolve(Buffer.concat(chunks)));
    stream.on("error", reject);
  });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (address === null || typeof address === "string") reject(new Error("no port"));
      else resolve(address.port);
    });
  });
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}
