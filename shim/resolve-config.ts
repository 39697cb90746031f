/**
 * Resolves the shim's configuration: a JSON file (default /etc/vm-auth/shim.json, written by
 * `vm-auth-shim install`) overlaid by flags; flags win. Resolved once at start, validated
 * field by field, frozen. An unknown key is an error, so a typo never silently falls back to a
 * default. Paths must already be absolute (flags.ts makes the command line's so); a relative
 * path in the file is refused, since nothing says what it would be relative to.
 */
import { readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { LOG_LEVELS } from "../common/logger.js";
import { isLoopbackHost } from "../common/net.js";
import {
  DEFAULTS,
  type ShimConfig,
  ShimConfigError,
  type ShimOptions,
  type ShimPaths,
  type UnitSpec,
} from "./config.js";

/**
 * Reads a config file. A missing file is `{}` when `optional` (the default path need not
 * exist when flags say everything).
 * @throws ShimConfigError for an unreadable file, bad JSON or an unknown key
 */
export function readShimConfigFile(path: string, optional = false): ShimOptions {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    if (optional && (err as NodeJS.ErrnoException).code === "ENOENT") return {};
    throw new ShimConfigError(`config: cannot read ${path}: ${(err as Error).message}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new ShimConfigError(`config: ${path} is not JSON: ${(err as Error).message}`);
  }
  if (!isObject(parsed)) throw new ShimConfigError(`config: ${path} must hold a JSON object`);
  checkKeys(parsed, TOP_KEYS, `config ${path}`);
  return parsed as ShimOptions;
}

/**
 * Resolves file options overlaid by flags (flags win, field by field) into a frozen config.
 * @throws ShimConfigError naming the first bad setting
 */
export function resolveShimConfig(file: ShimOptions, flags: ShimOptions = {}): ShimConfig {
  const o = { ...file, ...stripUndefined(flags) } as ShimOptions;
  const server = o.server;
  if (server === undefined || server === "") {
    throw new ShimConfigError(`server: not set (give --server or "server" in the config file)`);
  }
  checkServer(server);
  const tokenFile = path(o.tokenFile, "tokenFile");
  if (tokenFile === undefined) {
    throw new ShimConfigError(`tokenFile: not set (give --token-file or "tokenFile")`);
  }
  const ca = path(o.ca, "ca");
  const tls = ca ? { ca } : bool(o.tls, "tls", false);
  const insecure = bool(o.insecure, "insecure", false);
  if (insecure && tls !== false) {
    throw new ShimConfigError("insecure: cannot be combined with ca or tls (TLS is on)");
  }
  // The token is the VM's identity: it crosses a network in plaintext only when asked to
  // (issue #12; secretsd refuses the same for its own listener, server/config.ts).
  if (tls === false && !insecure && !isLoopback(serverHost(server))) {
    throw new ShimConfigError(
      `server: ${server} is not a loopback address; give --ca FILE or --tls for TLS, or --insecure to send the token in plaintext`,
    );
  }
  const backoff = obj(o.backoff, "backoff", ["initialMs", "maxMs"]);
  const initialMs = int(backoff.initialMs, "backoff.initialMs", 500, 1);
  const maxMs = int(backoff.maxMs, "backoff.maxMs", 30_000, initialMs);
  const keepalive = obj(o.keepalive, "keepalive", ["timeMs", "timeoutMs"]);
  const systemctl = o.systemctl ?? "systemctl";
  if (typeof systemctl !== "string" || systemctl === "") {
    throw new ShimConfigError("systemctl: must be a command name or path");
  }
  return deepFreeze({
    server,
    tokenFile,
    tls,
    insecure,
    ...paths(o),
    units: units(o.units),
    debounceMs: int(o.debounceMs, "debounceMs", 500, 0),
    backoff: { initialMs, maxMs },
    keepalive: {
      timeMs: int(keepalive.timeMs, "keepalive.timeMs", 30_000, 1),
      timeoutMs: int(keepalive.timeoutMs, "keepalive.timeoutMs", 10_000, 1),
    },
    heartbeatMs: int(o.heartbeatMs, "heartbeatMs", 15_000, 1),
    systemctl,
  });
}

/**
 * Resolves only the file paths and log level: what `status` and `restore` need, without a
 * server or token.
 * @throws ShimConfigError
 */
export function resolveShimPaths(file: ShimOptions, flags: ShimOptions = {}): ShimPaths {
  return Object.freeze(paths({ ...file, ...stripUndefined(flags) }));
}

/**
 * Validates one dependent unit `{name, keys?, action?}` and fills its defaults: a name without
 * a type suffix gets `.service`, keys default to `*` (which absorbs any other key), the action
 * to restart. Shared by the config file's `units` and `--unit` (unit-flag.ts).
 * @param where names the setting in the error, e.g. `units[0]` or `--unit app:x`
 * @throws ShimConfigError
 */
export function resolveUnitSpec(u: unknown, where: string): UnitSpec {
  if (!isObject(u)) throw new ShimConfigError(`${where}: must be an object {name, keys, action}`);
  checkKeys(u, ["name", "keys", "action"], where);
  if (typeof u.name !== "string" || !UNIT_NAME.test(u.name) || u.name.startsWith("-")) {
    throw new ShimConfigError(`${where}: name must be a systemd unit name`);
  }
  let name: string = u.name;
  if (!/\.[a-z]+$/.test(name)) name = `${name}.service`;
  const keys = u.keys ?? ["*"];
  if (!Array.isArray(keys) || keys.length === 0) {
    throw new ShimConfigError(`${where}: keys must be a non-empty array of env var names or "*"`);
  }
  for (const k of keys) {
    if (k !== "*" && (typeof k !== "string" || !ENV_NAME.test(k))) {
      throw new ShimConfigError(`${where}: key ${JSON.stringify(k)} is not an env var name or "*"`);
    }
  }
  const action = u.action ?? "restart";
  if (action !== "restart" && action !== "reload") {
    throw new ShimConfigError(`${where}: action must be "restart" or "reload"`);
  }
  return { name, keys: keys.includes("*") ? ["*"] : [...new Set(keys as string[])], action };
}

// --- internal ---

const TOP_KEYS = [
  "server",
  "tokenFile",
  "ca",
  "tls",
  "insecure",
  "environmentDFile",
  "unitEnvFile",
  "lastKnownGoodFile",
  "stateFile",
  "statusFile",
  "units",
  "debounceMs",
  "backoff",
  "keepalive",
  "heartbeatMs",
  "systemctl",
  "logLevel",
] as const satisfies readonly (keyof ShimOptions)[];

const ENV_NAME = /^[A-Z_][A-Z0-9_]*$/;
// What secretsd accepts in AckEnv.restarted_units (server/secrets/watch.ts UNIT_NAME).
const UNIT_NAME = /^[A-Za-z0-9:_.@\\-]{1,255}$/;

function paths(o: ShimOptions): ShimPaths {
  const logLevel = o.logLevel ?? "info";
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ShimConfigError(`logLevel: '${String(logLevel)}' is not one of ${LOG_LEVELS}`);
  }
  return {
    environmentDFile: path(o.environmentDFile, "environmentDFile") ?? DEFAULTS.environmentDFile,
    unitEnvFile: path(o.unitEnvFile, "unitEnvFile") ?? DEFAULTS.unitEnvFile,
    lastKnownGoodFile: path(o.lastKnownGoodFile, "lastKnownGoodFile") ?? DEFAULTS.lastKnownGoodFile,
    stateFile: path(o.stateFile, "stateFile") ?? DEFAULTS.stateFile,
    statusFile: path(o.statusFile, "statusFile") ?? DEFAULTS.statusFile,
    logLevel,
  };
}

function units(v: unknown): UnitSpec[] {
  if (v === undefined) return [];
  if (!Array.isArray(v)) throw new ShimConfigError("units: must be an array");
  const out = v.map((u, i) => resolveUnitSpec(u, `units[${i}]`));
  const seen = new Set<string>();
  for (const u of out) {
    if (seen.has(u.name)) throw new ShimConfigError(`units: ${u.name} is listed twice`);
    seen.add(u.name);
  }
  return out;
}

function checkServer(server: unknown) {
  const m =
    typeof server === "string"
      ? /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(server)
      : null;
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) {
    throw new ShimConfigError(`server: '${String(server)}' is not host:port`);
  }
}

/** The host part of a checked HOST:PORT, without IPv6 brackets. */
function serverHost(server: string): string {
  return server.slice(0, server.lastIndexOf(":")).replace(/^\[(.*)\]$/, "$1");
}

/**
 * localhost, 127.0.0.0/8 or ::1: server/config.ts isLoopback (the shim never imports server/),
 * but 127.x must be a dotted quad, so that a DNS name such as 127.example.net is not loopback.
 */
const isLoopback = isLoopbackHost;

/** An absolute path, normalised (`..`, `//`, a trailing `/`); a relative one is refused. */
function path(v: unknown, name: string): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v === "") throw new ShimConfigError(`${name}: must be a path`);
  if (!isAbsolute(v)) throw new ShimConfigError(`${name}: '${v}' must be an absolute path`);
  return resolve(v);
}

function int(v: unknown, name: string, def: number, min: number): number {
  if (v === undefined) return def;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new ShimConfigError(`${name}: must be an integer ≥ ${min}`);
  }
  return v;
}

function bool(v: unknown, name: string, def: boolean): boolean {
  if (v === undefined) return def;
  if (typeof v !== "boolean") throw new ShimConfigError(`${name}: must be true or false`);
  return v;
}

function obj(v: unknown, name: string, keys: readonly string[]): Record<string, unknown> {
  if (v === undefined) return {};
  if (!isObject(v)) throw new ShimConfigError(`${name}: must be an object`);
  checkKeys(v, keys, name);
  return v;
}

function checkKeys(o: Record<string, unknown>, allowed: readonly string[], where: string) {
  for (const k of Object.keys(o)) {
    if (!allowed.includes(k)) {
      throw new ShimConfigError(`${where}: unknown key '${k}' (known: ${allowed.join(", ")})`);
    }
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function deepFreeze<T>(o: T): T {
  if (typeof o === "object" && o !== null) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
