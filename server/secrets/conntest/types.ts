/**
 * What a template says about testing a credential, and what a test reports (issue #13,
 * "Connection tests"). The spec shapes are the template catalogue's; the credential is the
 * field values of one stored credential. A result never holds a value, token or password:
 * `detail` is a status, a banner or an error class, scrubbed of every secret the test sent.
 */

/**
 * Where an HTTP test puts the secret. Strings are templates: `{key}` is that credential
 * field, `{{` and `}}` are literal braces (the template catalogue's syntax). `header` takes
 * `value` (the catalogue's name) or `template`; `query` takes `value` or one `field`.
 * `none`: the secret travels in `form` (an OAuth token request) or not at all.
 */
export type HttpAuth =
  | { type: "header"; name: string; value?: string; template?: string }
  | { type: "query"; name: string; value?: string; field?: string }
  | { type: "basic"; userField: string; passwordField: string }
  | { type: "none" };

/**
 * One HTTP request; "works" means the answer's status is in `okStatus` (or `okStatuses`).
 * Shaped like the catalogue's HttpTest (server/secrets/templates/schema.ts), which it accepts
 * as is: fields it does not use (`when`) are ignored.
 */
export interface HttpTestSpec {
  kind: "http";
  method: string;
  /** https (plain http only to loopback); `{key}` inserted as is (a url field is a base URL). */
  baseUrl?: string;
  /** Appended to the base URL; `{key}` percent-encoded (slashes kept); may carry a query. */
  path: string;
  auth: HttpAuth;
  /** Extra headers (templates). */
  headers?: Readonly<Record<string, string>>;
  /** An `application/x-www-form-urlencoded` body (templates). */
  form?: Readonly<Record<string, string>>;
  okStatus?: readonly number[];
  okStatuses?: readonly number[];
  /** A credential field whose value "true" turns off TLS certificate checks (self-signed). */
  insecureField?: string;
}

/**
 * Connect, authenticate and `SELECT 1`. The credential holds `host`, `port` (default 5432),
 * `database` (default: the user), `user`, `password`, `sslmode`; or one `url`
 * (postgres://user:password@host:port/database?sslmode=…). `fields` maps each of these to
 * the credential field holding it when the names differ.
 */
export interface PostgresTestSpec {
  kind: "postgres";
  fields?: Readonly<
    Partial<Record<"url" | "host" | "port" | "database" | "user" | "password" | "sslmode", string>>
  >;
}

/**
 * Connect, EHLO, STARTTLS when `security` is `starttls`, AUTH PLAIN or LOGIN, QUIT. The
 * credential holds `host`, `port` (default 587, 465 for tls, 25 for none), `security`
 * (`starttls` default, `tls`, `none`), `user` and `password` (no AUTH without a password);
 * `fields` maps them to differently named credential fields.
 */
export interface SmtpTestSpec {
  kind: "smtp";
  fields?: Readonly<Partial<Record<"host" | "port" | "user" | "password" | "security", string>>>;
}

export type ConnectionTestSpec = HttpTestSpec | PostgresTestSpec | SmtpTestSpec;

/** A credential's field values by field name. */
export type Credential = Readonly<Record<string, string>>;

export interface ConnectionTestOptions {
  /** The whole test, connect to answer, is bounded by this. */
  timeoutMs: number;
  /** Replaces the spec's base URL (HTTP only): a proxy or a self-hosted endpoint. */
  baseUrlOverride?: string;
  /** Aborting it (a cancelled RPC, shutdown) stops the test and rejects with its reason. */
  signal: AbortSignal;
  /** PEM CA certificates trusted for TLS (a private CA). @default the system's CAs */
  ca?: string;
}

export interface ConnectionTestResult {
  ok: boolean;
  /** Wall time of the test in whole milliseconds. */
  ms: number;
  /** One line: status code, banner or why it failed. Never a value, token or password. */
  detail: string;
  /** When the test started, ISO 8601 UTC. */
  checkedAt: string;
}
