/**
 * The PostgreSQL connection test: connect, authenticate, `SELECT 1`. It uses the `pg` package
 * (pure JS, no install scripts): SCRAM-SHA-256 with channel binding, md5, cleartext and the
 * SSLRequest dance are what a hand-written client would have to get right, and a credential
 * test is the place for the client people's apps use. Plaintext is the project's rule: only to
 * loopback unless the credential says `sslmode=disable` (or `allow`); with no sslmode a remote
 * server is reached over verified TLS (`verify-full`), and `prefer` falls back to plaintext
 * only on loopback: libpq's fallback would hand an md5 or cleartext password to whoever answers.
 */
import type { ConnectionOptions } from "node:tls";
import pg from "pg";
import { isLoopbackHost } from "../../../common/net.js";
import { invalidArgument } from "../../errors.js";
import {
  abortPromise,
  fieldView,
  hostPort,
  oneLine,
  type PreparedTest,
  TestFailure,
} from "./outcome.js";
import type { ConnectionTestOptions, Credential, PostgresTestSpec } from "./types.js";

const SSLMODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] as const;
type SslMode = (typeof SSLMODES)[number];

interface PgTarget {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  sslmode: SslMode | undefined;
}

/** Checks the credential's fields (or `url`); throws SecretsError invalid_argument naming one. */
export function preparePostgresTest(
  spec: PostgresTestSpec,
  credential: Credential,
  opts: Pick<ConnectionTestOptions, "ca">,
): PreparedTest {
  const f = fieldView(credential, spec.fields);
  const url = f.get("url");
  const t = url !== "" ? fromUrl(url, f.key("url")) : fromFields(f);
  const secrets = [t.password];
  if (url !== "") secrets.push(url);
  return {
    target: hostPort(t.host, t.port),
    secrets,
    run: (signal) => selectOne(t, ssl(t, opts.ca), signal),
  };
}

// --- internal ---

async function selectOne(t: PgTarget, ssl: false | ConnectionOptions, signal: AbortSignal) {
  const client = new pg.Client({
    host: t.host,
    port: t.port,
    user: t.user,
    password: t.password,
    database: t.database,
    ssl,
    // Set so PGSSLNEGOTIATION in secretsd's environment cannot change it.
    sslnegotiation: "postgres",
    application_name: "vm-auth connection test",
    // The caller's signal bounds the test; pg's own timers stay off.
    connectionTimeoutMillis: 0,
    query_timeout: 0,
  });
  // After a failure pg may emit 'error' again (a late socket close): nothing is listening then.
  client.on("error", () => {});
  const aborted = abortPromise(signal);
  try {
    await Promise.race([client.connect(), aborted.promise]);
    const res = await Promise.race([client.query("SELECT 1"), aborted.promise]);
    const row = res.rows[0];
    if (row === undefined || Object.values(row)[0] !== 1) {
      throw new TestFailure("SELECT 1 did not return 1");
    }
    return "authenticated; SELECT 1 returned 1";
  } catch (err) {
    throw pgFailure(err);
  } finally {
    aborted.dispose();
    client.connection.stream.destroy();
    await client.end().catch(() => {});
  }
}

/** A server's ErrorResponse (it has a SQLSTATE) becomes a TestFailure; others pass through. */
function pgFailure(err: unknown): unknown {
  const code = (err as { code?: unknown }).code;
  const severity = (err as { severity?: unknown }).severity;
  if (!(err instanceof Error) || typeof code !== "string" || typeof severity !== "string") {
    return err;
  }
  const message = oneLine(err.message, 160);
  // 28P01 invalid_password, 28000 invalid_authorization_specification (pg_hba.conf reject).
  if (code === "28P01" || code === "28000") {
    return new TestFailure(`authentication failed: ${message} (SQLSTATE ${code})`);
  }
  return new TestFailure(`${message} (SQLSTATE ${code})`);
}

function ssl(t: PgTarget, ca: string | undefined): false | ConnectionOptions {
  const loopback = isLoopbackHost(t.host);
  const mode = t.sslmode ?? (loopback ? "disable" : "verify-full");
  const verify: ConnectionOptions = ca === undefined ? {} : { ca };
  switch (mode) {
    case "disable":
    case "allow":
      return false;
    // libpq's prefer tries TLS and falls back to plaintext; here the fallback is loopback only.
    case "prefer":
      return loopback ? false : { rejectUnauthorized: false };
    case "require":
      return { rejectUnauthorized: false };
    case "verify-ca":
      return { ...verify, rejectUnauthorized: true, checkServerIdentity: () => undefined };
    case "verify-full":
      return { ...verify, rejectUnauthorized: true };
  }
}

type View = ReturnType<typeof fieldView>;

function fromFields(f: View): PgTarget {
  const host = required(f, "host");
  const user = required(f, "user");
  return {
    host,
    port: port(f.get("port"), f.key("port")),
    user,
    password: required(f, "password"),
    database: f.get("database") || user,
    sslmode: sslmode(f.get("sslmode"), f.key("sslmode")),
  };
}

function fromUrl(raw: string, key: string): PgTarget {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    // Never quote it: the URL holds the password.
    throw invalidArgument(key, "is not a postgres:// URL");
  }
  if (url.protocol !== "postgres:" && url.protocol !== "postgresql:") {
    throw invalidArgument(key, `scheme '${url.protocol}' is not postgres: or postgresql:`);
  }
  const user = decodeURIComponent(url.username);
  const password = decodeURIComponent(url.password);
  if (url.hostname === "") throw invalidArgument(key, "has no host");
  if (user === "") throw invalidArgument(key, "has no user");
  if (password === "") throw invalidArgument(key, "has no password");
  const database = decodeURIComponent(url.pathname.replace(/^\//, ""));
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: port(url.port, key),
    user,
    password,
    database: database || user,
    sslmode: sslmode(url.searchParams.get("sslmode") ?? undefined, key),
  };
}

function required(f: View, role: string): string {
  const v = f.get(role);
  if (v === "") throw invalidArgument(f.key(role), "is required");
  return v;
}

function port(raw: string, key: string): number {
  if (raw === "") return 5432;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || n < 1 || n > 65535) {
    throw invalidArgument(key, `port '${raw}' is not 1-65535`);
  }
  return n;
}

function sslmode(raw: string | undefined, key: string): SslMode | undefined {
  if (raw === undefined || raw === "") return undefined;
  if (!(SSLMODES as readonly string[]).includes(raw)) {
    throw invalidArgument(key, `sslmode '${raw}' is not one of ${SSLMODES.join(", ")}`);
  }
  return raw as SslMode;
}
