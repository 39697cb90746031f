/**
 * Connection tests (issue #13) against real servers started here: a loopback node:http server
 * that checks the exact header the spec sends, a private PostgreSQL cluster from Debian's
 * `postgresql` (scram-sha-256 and md5 logins), and nodemailer's smtp-server with AUTH, with and
 * without STARTTLS. Each "no" is checked for its reason and for the secret being nowhere in the
 * result; silent servers (TCP accepted, never a byte back) check the timeout.
 */
import { appendFileSync } from "node:fs";
import { createServer as createHttpServer, type IncomingMessage, type Server } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isSecretsError } from "../server/errors.js";
import {
  type ConnectionTestResult,
  type HttpTestSpec,
  runConnectionTest,
} from "../server/secrets/conntest/run.js";
import {
  findPostgresBin,
  freePort,
  type PostgresCluster,
  startPostgres,
} from "./helpers/postgres.js";
import { selfSigned, startSmtpServer, type TestSmtpServer } from "./helpers/smtp.js";
import { secretValue, testRoot } from "./helpers/values.js";

const never = new AbortController().signal;

/**
 * runConnectionTest, each result also written under the suite root: the suite's teardown
 * (test/global-setup.ts) then fails the run if any registered password or token is in one.
 */
async function run(...args: Parameters<typeof runConnectionTest>): Promise<ConnectionTestResult> {
  const result = await runConnectionTest(...args);
  const root = testRoot();
  if (root) appendFileSync(join(root, "conntest-results.jsonl"), `${JSON.stringify(result)}\n`);
  return result;
}
const opts = (timeoutMs = 5000) => ({ timeoutMs, signal: never });

/** The result holds none of `secrets`, in any field. */
function expectNoSecret(result: ConnectionTestResult, ...secrets: string[]) {
  const text = JSON.stringify(result);
  for (const s of secrets) expect(text).not.toContain(s);
}

describe("HTTP", () => {
  const token = secretValue("sk-http");
  const seen: IncomingMessage[] = [];
  const formBodies: string[] = [];
  let api: Server;
  let other: Server;
  let base: string;
  let otherBase: string;

  beforeAll(async () => {
    api = await listenHttp((req, res) => {
      seen.push(req);
      const url = new URL(req.url ?? "/", "http://x");
      if (url.pathname === "/v1/moved") {
        res.writeHead(302, { location: "/v1/models" }).end();
      } else if (url.pathname === "/v1/away") {
        res.writeHead(302, { location: `${otherBase}/v1/models` }).end();
      } else if (url.pathname === "/v1/echo") {
        // A hostile server: echoes what it got in a header the detail shows, and the body.
        res
          .writeHead(401, { server: `echo ${req.headers.authorization}` })
          .end(req.headers.authorization);
      } else if (url.pathname === "/v1/t/1/token") {
        let body = "";
        req.on("data", (c: Buffer) => {
          body += c.toString();
        });
        req.on("end", () => {
          formBodies.push(body);
          res.writeHead(req.headers["x-api-key"] === token ? 200 : 401).end();
        });
      } else if (url.pathname === "/v1/query") {
        res.writeHead(url.searchParams.get("key") === token ? 200 : 403).end();
      } else if (url.pathname === "/v1/basic") {
        const want = `Basic ${Buffer.from(`admin:${token}`).toString("base64")}`;
        res.writeHead(req.headers.authorization === want ? 204 : 401).end();
      } else {
        // The exact header the spec's template makes.
        res.writeHead(req.headers.authorization === `Bearer ${token}` ? 200 : 401).end("nope");
      }
    });
    other = await listenHttp((req, res) => {
      seen.push(req);
      res.writeHead(200).end();
    });
    base = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
    otherBase = `http://127.0.0.1:${(other.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await Promise.all([api, other].map((s) => new Promise((r) => s.close(r))));
  });

  const bearer = (path = "/v1/models"): HttpTestSpec => ({
    kind: "http",
    method: "GET",
    path,
    baseUrl: base,
    auth: { type: "header", name: "Authorization", template: "Bearer {token}" },
    okStatuses: [200],
  });

  it("the right token → ok with the status; the wrong one → authentication failed", async () => {
    const good = await run(bearer(), { token }, opts());
    expect(good).toMatchObject({ ok: true, detail: "HTTP 200" });
    expect(good.ms).toBeGreaterThanOrEqual(0);
    expect(Date.parse(good.checkedAt)).not.toBeNaN();
    const wrong = secretValue("sk-wrong");
    const bad = await run(bearer(), { token: wrong }, opts());
    expect(bad).toMatchObject({ ok: false, detail: "HTTP 401: authentication failed" });
    expectNoSecret(bad, wrong, token);
  });

  it("a server echoing the token back: the detail shows *** instead", async () => {
    const r = await run(bearer("/v1/echo"), { token }, opts());
    expect(r.ok).toBe(false);
    expect(r.detail).toBe("HTTP 401 (server: echo Bearer ***): authentication failed");
    expectNoSecret(r, token);
  });

  it("query and basic auth put the secret where the spec says", async () => {
    const q = await run(
      { ...bearer("/v1/query"), auth: { type: "query", name: "key", field: "api_key" } },
      { api_key: token },
      opts(),
    );
    expect(q).toMatchObject({ ok: true, detail: "HTTP 200" });
    const b = await run(
      {
        ...bearer("/v1/basic"),
        auth: { type: "basic", userField: "user", passwordField: "password" },
        okStatuses: [204],
      },
      { user: "admin", password: token },
      opts(),
    );
    expect(b).toMatchObject({ ok: true, detail: "HTTP 204" });
    const wrong = await run(
      { ...bearer("/v1/query"), auth: { type: "query", name: "key", field: "api_key" } },
      { api_key: `${token}x` },
      opts(),
    );
    expect(wrong).toMatchObject({ ok: false, detail: "HTTP 403: authentication failed" });
  });

  it("the base URL override replaces the template's", async () => {
    const spec = { ...bearer(), baseUrl: "https://api.invalid" };
    const r = await run(spec, { token }, { ...opts(), baseUrlOverride: base });
    expect(r).toMatchObject({ ok: true, detail: "HTTP 200" });
  });

  it("the catalogue's shape: auth value template, extra headers, form body, okStatus", async () => {
    const r = await run(
      {
        kind: "http",
        method: "POST",
        baseUrl: "{base_url}",
        path: "/v1/{tenant}/token",
        auth: { type: "none" },
        headers: { "x-api-key": "{api_key}", "anthropic-version": "2023-06-01" },
        form: { grant_type: "client_credentials", client_secret: "{secret}" },
        okStatus: [200],
      },
      { base_url: base, tenant: "t/1", api_key: token, secret: token },
      opts(),
    );
    expect(r).toMatchObject({ ok: true, detail: "HTTP 200" });
    const req = seen.at(-1);
    expect(req?.url).toBe("/v1/t/1/token");
    expect(req?.headers["x-api-key"]).toBe(token);
    expect(req?.headers["anthropic-version"]).toBe("2023-06-01");
    expect(formBodies.at(-1)).toBe(`grant_type=client_credentials&client_secret=${token}`);
  });

  it("https: a self-signed server fails unverified, works with its CA or the insecure field", async () => {
    const { cert, key } = selfSigned();
    const server = createHttpsServer({ cert, key }, (req, res) => {
      res.writeHead(req.headers.authorization === `Bearer ${token}` ? 200 : 401).end();
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const spec = { ...bearer(), baseUrl: `https://127.0.0.1:${port}`, insecureField: "insecure" };
      const unverified = await run(spec, { token }, opts());
      expect(unverified).toMatchObject({
        ok: false,
        detail: `TLS failed at 127.0.0.1:${port}: DEPTH_ZERO_SELF_SIGNED_CERT`,
      });
      expect(await run(spec, { token }, { ...opts(), ca: cert })).toMatchObject({ ok: true });
      expect(await run(spec, { token, insecure: "true" }, opts())).toMatchObject({ ok: true });
    } finally {
      await new Promise((r) => server.close(r));
    }
  });

  it("a same-origin redirect is followed with the secret; one to another origin is not", async () => {
    const same = await run(bearer("/v1/moved"), { token }, opts());
    expect(same).toMatchObject({ ok: true, detail: "HTTP 200" });
    const before = seen.length;
    const away = await run(bearer("/v1/away"), { token }, opts());
    expect(away.ok).toBe(false);
    expect(away.detail).toBe(
      `HTTP 302: redirect to ${otherBase} not followed (the credential goes only to ${base})`,
    );
    // Only the first request was made: the other origin never saw the token.
    expect(seen.length).toBe(before + 1);
  });

  it("plain http to a non-loopback host is refused before anything is sent", async () => {
    const err = await run(
      bearer(),
      { token },
      {
        ...opts(),
        baseUrlOverride: "http://api.example.com",
      },
    ).catch((e: unknown) => e);
    expect(isSecretsError(err) && err.code).toBe("invalid_argument");
    expect((err as Error).message).toBe(
      "baseUrlOverride: http://api.example.com is plain http; only https, or http to loopback",
    );
    const missing = await run(bearer(), {}, opts()).catch((e: unknown) => e);
    expect((missing as Error).message).toBe("credential.token: is required by test.auth.value");
  });

  it("refused and silent servers: connection refused, timed out within the timeout", async () => {
    const port = await freePort();
    const refused = await run(
      { ...bearer(), baseUrl: `http://127.0.0.1:${port}` },
      { token },
      opts(),
    );
    expect(refused).toMatchObject({ ok: false, detail: `connection refused at 127.0.0.1:${port}` });
    await withSilentServer(async (silentPort) => {
      const r = await run(
        { ...bearer(), baseUrl: `http://127.0.0.1:${silentPort}` },
        { token },
        opts(500),
      );
      expect(r).toMatchObject({ ok: false, detail: "timed out after 500 ms" });
      expect(r.ms).toBeGreaterThanOrEqual(450);
      expect(r.ms).toBeLessThan(2000);
    });
  });

  it("the caller's abort rejects with its reason (a cancelled RPC stays cancelled)", async () => {
    await withSilentServer(async (silentPort) => {
      const ac = new AbortController();
      const p = run(
        { ...bearer(), baseUrl: `http://127.0.0.1:${silentPort}` },
        { token },
        { timeoutMs: 5000, signal: ac.signal },
      );
      setTimeout(() => ac.abort(new Error("cancelled by the caller")), 100);
      await expect(p).rejects.toThrow("cancelled by the caller");
    });
  });
});

const pgBin = findPostgresBin();
// Without PostgreSQL the suite says why and skips, except under CI=true, where it fails.
describe.skipIf(pgBin === undefined && process.env.CI !== "true")(
  `PostgreSQL (${pgBin ?? "not installed: apt-get install -y postgresql"})`,
  () => {
    const scram = secretValue("pg-scram");
    const md5 = secretValue("pg-md5");
    let pg: PostgresCluster;
    beforeAll(async () => {
      pg = await startPostgres({ scram, md5 });
    }, 60_000);
    afterAll(() => pg?.stop());

    const fields = (user: string, password: string) => ({
      host: pg.host,
      port: String(pg.port),
      user,
      password,
    });

    it("SCRAM-SHA-256: the right password → ok (SELECT 1); a wrong one → authentication failed", async () => {
      const good = await run({ kind: "postgres" }, fields("scram_user", scram), opts());
      expect(good).toMatchObject({ ok: true, detail: "authenticated; SELECT 1 returned 1" });
      const wrong = secretValue("pg-wrong");
      const bad = await run({ kind: "postgres" }, fields("scram_user", wrong), opts());
      expect(bad.ok).toBe(false);
      expect(bad.detail).toBe(
        'authentication failed: password authentication failed for user "scram_user" (SQLSTATE 28P01)',
      );
      expectNoSecret(bad, wrong, scram);
      expect(pg.log()).toMatch(
        /connection authenticated: identity="scram_user" method=scram-sha-256/,
      );
    });

    it("md5: the right password → ok; a wrong one → authentication failed", async () => {
      const good = await run({ kind: "postgres" }, fields("md5_user", md5), opts());
      expect(good.ok).toBe(true);
      expect(pg.log()).toMatch(/connection authenticated: identity="md5_user" method=md5/);
      const bad = await run({ kind: "postgres" }, fields("md5_user", scram), opts());
      expect(bad.ok).toBe(false);
      expect(bad.detail).toMatch(/^authentication failed: /);
      expectNoSecret(bad, scram, md5);
    });

    it("one url field works the same; a wrong one never shows the url or password", async () => {
      const url = `postgres://scram_user:${scram}@127.0.0.1:${pg.port}/scram_user`;
      expect(await run({ kind: "postgres" }, { url }, opts())).toMatchObject({
        ok: true,
      });
      const wrong = secretValue("pg-wrong");
      const badUrl = `postgresql://scram_user:${wrong}@127.0.0.1:${pg.port}/scram_user`;
      const bad = await run({ kind: "postgres" }, { url: badUrl }, opts());
      expect(bad.detail).toMatch(/^authentication failed: /);
      expectNoSecret(bad, wrong, badUrl);
      const err = await run({ kind: "postgres" }, { url: `mysql://u:${wrong}@h/db` }, opts()).catch(
        (e: unknown) => e,
      );
      expect((err as Error).message).toBe(
        "credential.url: scheme 'mysql:' is not postgres: or postgresql:",
      );
    });

    it("the catalogue's fields map: roles read from differently named credential fields", async () => {
      const r = await run(
        {
          kind: "postgres",
          fields: { host: "db_host", port: "db_port", user: "db_user", password: "db_password" },
        },
        { db_host: pg.host, db_port: String(pg.port), db_user: "scram_user", db_password: scram },
        opts(),
      );
      expect(r).toMatchObject({ ok: true });
      // sslmode prefer (the catalogue's default) on loopback falls back to plaintext.
      const prefer = await run(
        { kind: "postgres" },
        { ...fields("scram_user", scram), sslmode: "prefer" },
        opts(),
      );
      expect(prefer).toMatchObject({ ok: true });
    });

    it("sslmode=require against a server without TLS fails saying so", async () => {
      const r = await run(
        { kind: "postgres" },
        { ...fields("scram_user", scram), sslmode: "require" },
        opts(),
      );
      expect(r.ok).toBe(false);
      expect(r.detail).toMatch(/does not support SSL/);
    });

    it("a wrong port → connection refused; a silent server → timed out within the timeout", async () => {
      const port = await freePort();
      const refused = await run(
        { kind: "postgres" },
        { ...fields("scram_user", scram), port: String(port) },
        opts(),
      );
      expect(refused).toMatchObject({
        ok: false,
        detail: `connection refused at 127.0.0.1:${port}`,
      });
      await withSilentServer(async (silentPort) => {
        const r = await run(
          { kind: "postgres" },
          { ...fields("scram_user", scram), port: String(silentPort) },
          opts(700),
        );
        expect(r).toMatchObject({ ok: false, detail: "timed out after 700 ms" });
        expect(r.ms).toBeLessThan(2000);
      });
    });
  },
);

describe("SMTP (nodemailer's smtp-server)", () => {
  const user = "mailer@example.test";
  const password = secretValue("smtp-pw");
  const servers: TestSmtpServer[] = [];
  const start = async (
    security: "starttls" | "tls" | "none",
    authMethods?: string[],
  ): Promise<TestSmtpServer> => {
    const s = await startSmtpServer({
      security,
      user,
      password,
      ...(authMethods ? { authMethods } : {}),
    });
    servers.push(s);
    return s;
  };
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
  });
  const cred = (s: TestSmtpServer, security: string, pw = password) => ({
    host: s.host,
    port: String(s.port),
    security,
    user,
    password: pw,
  });

  it("STARTTLS: the right password → ok over TLS; a wrong one → authentication failed", async () => {
    const s = await start("starttls");
    const good = await run({ kind: "smtp" }, cred(s, "starttls"), {
      ...opts(),
      ca: s.cert,
    });
    expect(good.ok).toBe(true);
    expect(good.detail).toMatch(
      /^authenticated with AUTH PLAIN \(235\); banner: smtp\.test ESMTP vm-auth test SMTP$/,
    );
    expect(s.attempts).toEqual([{ method: "PLAIN", user, accepted: true, secure: true }]);
    const wrong = secretValue("smtp-wrong");
    const bad = await run({ kind: "smtp" }, cred(s, "starttls", wrong), {
      ...opts(),
      ca: s.cert,
    });
    expect(bad.ok).toBe(false);
    expect(bad.detail).toMatch(/^authentication failed \(535 /);
    expectNoSecret(bad, wrong, password, Buffer.from(`\0${user}\0${wrong}`).toString("base64"));
  });

  it("an unverified certificate fails before AUTH: the password never leaves", async () => {
    const s = await start("starttls");
    const r = await run({ kind: "smtp" }, cred(s, "starttls"), opts());
    expect(r).toMatchObject({
      ok: false,
      detail: `TLS failed at 127.0.0.1:${s.port}: DEPTH_ZERO_SELF_SIGNED_CERT`,
    });
    expect(s.attempts).toEqual([]);
  });

  it("implicit TLS, AUTH LOGIN when it is the only one, and none on loopback", async () => {
    const tls = await start("tls", ["LOGIN"]);
    const good = await run({ kind: "smtp" }, cred(tls, "tls"), {
      ...opts(),
      ca: tls.cert,
    });
    expect(good.detail).toMatch(/^authenticated with AUTH LOGIN \(235\)/);
    expect(tls.attempts).toEqual([{ method: "LOGIN", user, accepted: true, secure: true }]);
    const bad = await run({ kind: "smtp" }, cred(tls, "tls", "not-it"), {
      ...opts(),
      ca: tls.cert,
    });
    expect(bad.detail).toMatch(/^authentication failed \(535 /);
    const plain = await start("none");
    const r = await run({ kind: "smtp" }, cred(plain, "none"), opts());
    expect(r.detail).toMatch(/^authenticated with AUTH PLAIN \(235\)/);
    expect(plain.attempts).toEqual([{ method: "PLAIN", user, accepted: true, secure: false }]);
  });

  it("STARTTLS asked of a server without it fails and sends no password in the clear", async () => {
    const plain = await start("none");
    const r = await run({ kind: "smtp" }, cred(plain, "starttls"), opts());
    expect(r).toMatchObject({ ok: false });
    expect(r.detail).toMatch(/^server does not offer STARTTLS/);
    expect(plain.attempts).toEqual([]);
  });

  it("security none to a remote host is refused naming the field; silent → timed out", async () => {
    const err = await run(
      { kind: "smtp" },
      { host: "mail.example.com", security: "none", user, password },
      opts(),
    ).catch((e: unknown) => e);
    expect(isSecretsError(err) && err.field).toBe("credential.security");
    await withSilentServer(async (silentPort) => {
      const r = await run(
        { kind: "smtp" },
        { host: "127.0.0.1", port: String(silentPort), security: "starttls", user, password },
        opts(600),
      );
      expect(r).toMatchObject({ ok: false, detail: "timed out after 600 ms" });
      expect(r.ms).toBeLessThan(2000);
    });
  });
});

// --- internal ---

async function listenHttp(handler: Parameters<typeof createHttpServer>[1]): Promise<Server> {
  const server = createHttpServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return server;
}

/** A server that accepts TCP and never answers, for `fn`'s duration. */
async function withSilentServer(fn: (port: number) => Promise<void>): Promise<void> {
  const sockets: Socket[] = [];
  const server = createTcpServer((s) => sockets.push(s));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  try {
    await fn((server.address() as AddressInfo).port);
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  }
}
