/**
 * The daemon's configuration, resolved once from flags, then SECRETSD_* environment
 * variables, then an optional JSON config file, then defaults. The result is complete and
 * frozen; nothing else reads process.env.
 *
 * Under systemd (the unit `secretsd install` writes) the defaults come from the directories
 * systemd made for the service: $STATE_DIRECTORY is the data dir, $RUNTIME_DIRECTORY holds
 * the socket, and $CREDENTIALS_DIRECTORY holds the TLS pair passed with LoadCredential=.
 */
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { isAbsolute, join, resolve } from "node:path";
import { isLoopbackHost } from "../common/net.js";
import type { LogLevel } from "./logger.js";

export interface ServerOptions {
  /** @default $VM_AUTH_HOME, else $STATE_DIRECTORY (systemd), else ~/.local/share/vm-auth */
  dataDir?: string | undefined;
  /**
   * Unix socket path for local admin; "off" disables it.
   * @default $RUNTIME_DIRECTORY/secretsd.sock (systemd), else <dataDir>/secretsd.sock
   */
  socket?: string | undefined;
  /** TCP host:port for VMs and remote admin; "off" disables it. @default 127.0.0.1:3090 */
  listen?: string | undefined;
  /**
   * TLS certificate chain and key (PEM), given together.
   * @default $CREDENTIALS_DIRECTORY/tls-cert + tls-key, else <dataDir>/tls/server.pem +
   *   server.key, when both files of the pair exist; else plaintext
   */
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  /** Rotate audit.log once it reaches this many bytes (audit.log.1 … .K). @default off */
  auditMaxBytes?: number | undefined;
  /** How many rotated audit logs to keep. @default 5 */
  auditKeep?: number | undefined;
  /** Allow plaintext TCP on a non-loopback address. @default false */
  insecure?: boolean | undefined;
  /**
   * Start even though the store's files are damaged, accepting each loss explicitly: a
   * damaged journal line and all after it are dropped, a missing or foreign journal is set
   * aside, a snapshot whose checksum fails but whose JSON parses is accepted. Each loss is
   * logged at warn level. @default false
   */
  repair?: boolean | undefined;
  /** @default "info" */
  logLevel?: LogLevel | undefined;
  /** How long in-flight calls may run on shutdown. @default 10000 */
  shutdownGraceMs?: number | undefined;
  /** WatchEnv heartbeat interval. @default 15000 */
  heartbeatMs?: number | undefined;
  /** A TCP connection must finish its TLS and HTTP/2 handshake within this. Under load, or for a client that sent part of it, up to 4× this. @default 10000 */
  handshakeTimeoutMs?: number | undefined;
  /** A TCP connection with no call for this long is closed. @default 300000 */
  idleTimeoutMs?: number | undefined;
  /** Failed authentications a TCP peer may have in a burst before it is throttled. @default 20 */
  authFailureLimit?: number | undefined;
  /** How long a throttled peer's allowance takes to refill, and the audit summary interval. @default 60000 */
  authFailureWindowMs?: number | undefined;
  /** OAuth: refresh at this fraction of an access token's lifetime (0.5–0.95). @default 0.8 */
  oauthRefreshFraction?: number | string | undefined;
  /** OAuth: cap of the backoff between failed refreshes. @default 300000 */
  oauthMaxBackoffMs?: number | undefined;
  /** OAuth: per-request limit on calls to a provider. @default 15000 */
  oauthHttpTimeoutMs?: number | undefined;
  /** OAuth: what an RFC 8628 `slow_down` adds to the device-poll interval. @default 5000 */
  oauthSlowDownStepMs?: number | undefined;
  /** OAuth: how long a login waits for the user. @default 600000 */
  oauthLoginTimeoutMs?: number | undefined;
  /** OAuth: a VM may ask for a refresh at most this often. @default 10000 */
  oauthVmRefreshIntervalMs?: number | undefined;
  /** Warn (log and audit, `status`) this long before a secret's `expires_at`. @default 604800000 (7 days) */
  expiryWarningMs?: number | undefined;
  config?: string | undefined;
}

export interface ServerConfig {
  readonly dataDir: string;
  readonly socket: string | null;
  readonly listen: { host: string; port: number } | null;
  readonly tls: TlsFiles | null;
  /** Size-based rotation of audit.log; null: the file grows until rotated outside (SIGHUP). */
  readonly audit: { readonly maxBytes: number | null; readonly keep: number };
  readonly logLevel: LogLevel;
  readonly shutdownGraceMs: number;
  readonly heartbeatMs: number;
  /** Accept named losses in the store's files instead of refusing to start. */
  readonly repair: boolean;
  readonly handshakeTimeoutMs: number;
  readonly idleTimeoutMs: number;
  readonly authFailureLimit: number;
  readonly authFailureWindowMs: number;
  readonly oauth: OAuthConfig;
  /** Warn this long before a secret's value expires (secrets/expiry.ts). */
  readonly expiryWarningMs: number;
}

/** The TLS pair and where it was found (logged at start, paths only). */
export interface TlsFiles {
  readonly cert: string;
  readonly key: string;
  /** flags (or SECRETSD_* / config file), systemd credentials, or the data dir's tls/. */
  readonly source: "config" | "credentials" | "data-dir";
}

/** Tuning of the broker; every field has a default (config.ts resolves them). */
export interface OAuthConfig {
  /** Per-request limit on calls to a provider. @default 15000 */
  readonly httpTimeoutMs: number;
  /** Refresh at this fraction of a token's lifetime. @default 0.8 */
  readonly refreshFraction: number;
  /** Refresh even a long-lived or expiry-less token at least this often. @default 86400000 */
  readonly idleRefreshMs: number;
  /** Backoff cap after failed refreshes (network, 5xx). @default 300000 */
  readonly maxBackoffMs: number;
  /** What RFC 8628 `slow_down` adds to the polling interval. @default 5000 */
  readonly slowDownStepMs: number;
  /** How long a login waits for the user. @default 600000 */
  readonly loginTimeoutMs: number;
  /** A VM may ask for a refresh at most this often. @default 10000 */
  readonly vmRefreshIntervalMs: number;
  /**
   * Allow plain-http provider URLs that are not loopback (never in production: tokens and
   * client secrets would cross the network in clear). @default false
   */
  readonly allowInsecureProviders: boolean;
}

export const OAUTH_DEFAULTS: OAuthConfig = {
  httpTimeoutMs: 15_000,
  refreshFraction: 0.8,
  idleRefreshMs: 24 * 60 * 60 * 1000,
  maxBackoffMs: 5 * 60 * 1000,
  slowDownStepMs: 5000,
  loginTimeoutMs: 10 * 60 * 1000,
  vmRefreshIntervalMs: 10_000,
  allowInsecureProviders: false,
};

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const ENV: Record<string, keyof ServerOptions> = {
  SECRETSD_DATA_DIR: "dataDir",
  SECRETSD_SOCKET: "socket",
  SECRETSD_LISTEN: "listen",
  SECRETSD_TLS_CERT: "tlsCert",
  SECRETSD_TLS_KEY: "tlsKey",
  SECRETSD_INSECURE: "insecure",
  SECRETSD_AUDIT_MAX_BYTES: "auditMaxBytes",
  SECRETSD_AUDIT_KEEP: "auditKeep",
  SECRETSD_REPAIR: "repair",
  SECRETSD_LOG_LEVEL: "logLevel",
  SECRETSD_SHUTDOWN_GRACE_MS: "shutdownGraceMs",
  SECRETSD_HEARTBEAT_MS: "heartbeatMs",
  SECRETSD_HANDSHAKE_TIMEOUT_MS: "handshakeTimeoutMs",
  SECRETSD_IDLE_TIMEOUT_MS: "idleTimeoutMs",
  SECRETSD_AUTH_FAILURE_LIMIT: "authFailureLimit",
  SECRETSD_AUTH_FAILURE_WINDOW_MS: "authFailureWindowMs",
  SECRETSD_OAUTH_REFRESH_FRACTION: "oauthRefreshFraction",
  SECRETSD_OAUTH_MAX_BACKOFF_MS: "oauthMaxBackoffMs",
  SECRETSD_OAUTH_HTTP_TIMEOUT_MS: "oauthHttpTimeoutMs",
  SECRETSD_OAUTH_SLOW_DOWN_STEP_MS: "oauthSlowDownStepMs",
  SECRETSD_OAUTH_LOGIN_TIMEOUT_MS: "oauthLoginTimeoutMs",
  SECRETSD_OAUTH_VM_REFRESH_INTERVAL_MS: "oauthVmRefreshIntervalMs",
  SECRETSD_EXPIRY_WARNING_MS: "expiryWarningMs",
  SECRETSD_CONFIG: "config",
};
const FILE_KEYS = new Set<string>(Object.values(ENV).filter((k) => k !== "config"));
const LEVELS = new Set(["debug", "info", "warn", "error", "silent"]);

/** Resolves and validates the configuration; throws ConfigError naming the bad setting. */
export function resolveServerConfig(
  flags: ServerOptions,
  env: NodeJS.ProcessEnv = process.env,
): ServerConfig {
  const fromEnv: Record<string, unknown> = {};
  for (const [name, key] of Object.entries(ENV)) {
    if (env[name] !== undefined && env[name] !== "") fromEnv[key] = env[name];
  }
  const configPath = flags.config ?? (fromEnv.config as string | undefined);
  const fromFile = configPath ? readConfigFile(configPath) : {};
  const o = { ...fromFile, ...fromEnv, ...stripUndefined(flags) } as Record<string, unknown>;

  const dataDir = resolve(
    str(o, "dataDir") ??
      nonEmpty(env.VM_AUTH_HOME) ??
      firstDir(env.STATE_DIRECTORY) ??
      join(homedir(), ".local", "share", "vm-auth"),
  );
  const socketOpt = str(o, "socket");
  const runtimeDir = firstDir(env.RUNTIME_DIRECTORY);
  const socket =
    socketOpt === "off"
      ? null
      : socketOpt
        ? resolve(socketOpt)
        : join(runtimeDir ?? dataDir, "secretsd.sock");
  const listenOpt = str(o, "listen") ?? "127.0.0.1:3090";
  const listen = listenOpt === "off" ? null : parseHostPort(listenOpt);
  const cert = str(o, "tlsCert");
  const key = str(o, "tlsKey");
  if (Boolean(cert) !== Boolean(key)) {
    throw new ConfigError("tls: --tls-cert and --tls-key must be given together");
  }
  const tls: TlsFiles | null =
    cert && key
      ? { cert: abs(cert), key: abs(key), source: "config" }
      : findTls(firstDir(env.CREDENTIALS_DIRECTORY), dataDir);
  const insecure = bool(o, "insecure");
  if (listen && !tls && !isLoopback(listen.host) && !insecure) {
    throw new ConfigError(
      `listen: ${listen.host} is not a loopback address; give --tls-cert/--tls-key, or --insecure to serve tokens in plaintext`,
    );
  }
  const logLevel = (str(o, "logLevel") ?? "info") as LogLevel;
  if (!LEVELS.has(logLevel)) throw new ConfigError(`log-level: '${logLevel}' is not a level`);
  return Object.freeze({
    dataDir,
    socket,
    listen,
    tls,
    audit: Object.freeze({
      maxBytes: o.auditMaxBytes === undefined ? null : int(o, "auditMaxBytes", 0),
      keep: int(o, "auditKeep", 5),
    }),
    logLevel,
    shutdownGraceMs: int(o, "shutdownGraceMs", 10_000),
    heartbeatMs: int(o, "heartbeatMs", 15_000),
    repair: bool(o, "repair"),
    handshakeTimeoutMs: int(o, "handshakeTimeoutMs", 10_000),
    idleTimeoutMs: int(o, "idleTimeoutMs", 300_000),
    authFailureLimit: int(o, "authFailureLimit", 20),
    authFailureWindowMs: int(o, "authFailureWindowMs", 60_000),
    oauth: Object.freeze({
      ...OAUTH_DEFAULTS,
      refreshFraction: fraction(o, "oauthRefreshFraction", OAUTH_DEFAULTS.refreshFraction),
      maxBackoffMs: int(o, "oauthMaxBackoffMs", OAUTH_DEFAULTS.maxBackoffMs),
      httpTimeoutMs: int(o, "oauthHttpTimeoutMs", OAUTH_DEFAULTS.httpTimeoutMs),
      slowDownStepMs: int(o, "oauthSlowDownStepMs", OAUTH_DEFAULTS.slowDownStepMs),
      loginTimeoutMs: int(o, "oauthLoginTimeoutMs", OAUTH_DEFAULTS.loginTimeoutMs),
      vmRefreshIntervalMs: int(o, "oauthVmRefreshIntervalMs", OAUTH_DEFAULTS.vmRefreshIntervalMs),
    }),
    expiryWarningMs: int(o, "expiryWarningMs", 7 * 24 * 60 * 60 * 1000),
  });
}

// --- internal ---

/**
 * The TLS pair found without flags: systemd credentials (LoadCredential=tls-cert:…,
 * tls-key:…), then `<dataDir>/tls/server.pem` + `server.key` (what `secretsctl tls init`
 * writes). Half a pair is an error naming both paths, never a silent plaintext start.
 */
function findTls(credentialsDir: string | undefined, dataDir: string): TlsFiles | null {
  const pairs: [string, string, TlsFiles["source"]][] = [];
  if (credentialsDir) {
    pairs.push([join(credentialsDir, "tls-cert"), join(credentialsDir, "tls-key"), "credentials"]);
  }
  pairs.push([join(dataDir, "tls", "server.pem"), join(dataDir, "tls", "server.key"), "data-dir"]);
  for (const [cert, key, source] of pairs) {
    const has = [existsSync(cert), existsSync(key)];
    if (has[0] && has[1]) return { cert, key, source };
    if (has[0] || has[1]) {
      throw new ConfigError(
        `tls: found ${has[0] ? cert : key} but not ${has[0] ? key : cert}; provide both or neither`,
      );
    }
  }
  return null;
}

/** systemd passes one path per directory setting, colon-separated; the first is ours. */
function firstDir(v: string | undefined): string | undefined {
  return nonEmpty(v?.split(":")[0]);
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === "" ? undefined : s;
}

function readConfigFile(path: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, "utf8"));
  } catch (err) {
    throw new ConfigError(`config: cannot read ${path}: ${(err as Error).message}`);
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`config: ${path} must hold a JSON object`);
  }
  for (const k of Object.keys(parsed)) {
    if (!FILE_KEYS.has(k)) throw new ConfigError(`config: unknown key '${k}' in ${path}`);
  }
  return parsed as Record<string, unknown>;
}

function stripUndefined(o: object): Record<string, unknown> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
}

function str(o: Record<string, unknown>, k: string): string | undefined {
  const v = o[k];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new ConfigError(`${k}: must be a string`);
  return v;
}

function bool(o: Record<string, unknown>, k: string): boolean {
  const v = o[k];
  if (v === undefined) return false;
  if (typeof v === "boolean") return v;
  if (v === "1" || v === "true") return true;
  if (v === "0" || v === "false") return false;
  throw new ConfigError(`${k}: must be true or false`);
}

function int(o: Record<string, unknown>, k: string, dflt: number): number {
  const v = o[k];
  if (v === undefined) return dflt;
  const n = typeof v === "number" ? v : Number(v);
  if (!Number.isInteger(n) || n < 1) throw new ConfigError(`${k}: must be a positive integer`);
  return n;
}

function fraction(o: Record<string, unknown>, k: string, dflt: number): number {
  const v = o[k];
  if (v === undefined) return dflt;
  const n = typeof v === "number" ? v : Number(v);
  if (!(n >= 0.5 && n <= 0.95)) throw new ConfigError(`${k}: must be between 0.5 and 0.95`);
  return n;
}

function parseHostPort(s: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(s);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new ConfigError(`listen: '${s}' must be host:port`);
  return { host: (m[1] ?? m[2]) as string, port };
}

/** Whether `host` names this machine's loopback interface only (common/net.ts). */
export const isLoopback = isLoopbackHost;

function abs(p: string): string {
  return isAbsolute(p) ? p : resolve(p);
}
