/**
 * The shim's configuration: a JSON file (default /etc/vm-auth/shim.json, written by
 * `vm-auth-shim install`) overlaid by flags; flags win. Resolved once at start, validated
 * field by field, frozen. An unknown key is an error, so a typo never silently falls back to a
 * default.
 */
import { closeSync, fstatSync, openSync, readFileSync } from "node:fs";
import { isAbsolute, resolve } from "node:path";
import { LOG_LEVELS, type LogSeverity } from "../common/logger.js";

/** Where `run`, `status` and `restore` look for the config unless --config says otherwise. */
export const DEFAULT_CONFIG_FILE = "/etc/vm-auth/shim.json";

/** What a dependent unit does when one of its keys changes. */
export type UnitAction = "restart" | "reload";

/** A dependent unit: the env keys it reads (`*` = all) and how to apply a change. */
export interface UnitSpec {
  readonly name: string;
  readonly keys: readonly string[];
  readonly action: UnitAction;
}

/** Input form (config file or flags); every field optional. */
export interface ShimOptions {
  /** secretsd's TCP address, host:port. Required. */
  server?: string | undefined;
  /** File holding the VM token; mode 0600 or stricter, owned by root or us. Required. */
  tokenFile?: string | undefined;
  /** PEM CA file: connect over TLS, trusting it. */
  ca?: string | undefined;
  /** Connect over TLS with the system CAs. @default false (true when `ca` is set) */
  tls?: boolean | undefined;
  /** @default "/etc/environment.d/vm-auth.conf" */
  environmentDFile?: string | undefined;
  /** The EnvironmentFile= that dependent units load. @default "/run/vm-auth/env" */
  unitEnvFile?: string | undefined;
  /**
   * A persistent copy of `unitEnvFile` (which lives on tmpfs), restored at boot before the
   * dependent units start, so that they get the last-known-good env even with the server down.
   * @default "/var/lib/vm-auth/last-known-good.env"
   */
  lastKnownGoodFile?: string | undefined;
  /** @default "/var/lib/vm-auth/shim-state.json" */
  stateFile?: string | undefined;
  /** @default "/run/vm-auth/status.json" */
  statusFile?: string | undefined;
  units?: readonly UnitSpecInput[] | undefined;
  /** @default 500 */
  debounceMs?: number | undefined;
  /** @default { initialMs: 500, maxMs: 30000 } */
  backoff?: { initialMs?: number | undefined; maxMs?: number | undefined } | undefined;
  /** gRPC keepalive pings. @default { timeMs: 30000, timeoutMs: 10000 } */
  keepalive?: { timeMs?: number | undefined; timeoutMs?: number | undefined } | undefined;
  /**
   * The server's heartbeat interval until it announces its own (each stream starts with a
   * heartbeat carrying it); no frame for 3× the interval → reconnect. @default 15000
   */
  heartbeatMs?: number | undefined;
  /** @default "systemctl" */
  systemctl?: string | undefined;
  /** @default "info" */
  logLevel?: LogSeverity | undefined;
}

export interface UnitSpecInput {
  name: string;
  /** @default ["*"] */
  keys?: readonly string[] | undefined;
  /** @default "restart" */
  action?: UnitAction | undefined;
}

/** The resolved configuration. */
export interface ShimConfig {
  readonly server: string;
  readonly tokenFile: string;
  readonly tls: false | true | { readonly ca: string };
  readonly environmentDFile: string;
  readonly unitEnvFile: string;
  readonly lastKnownGoodFile: string;
  readonly stateFile: string;
  readonly statusFile: string;
  readonly units: readonly UnitSpec[];
  readonly debounceMs: number;
  readonly backoff: { readonly initialMs: number; readonly maxMs: number };
  readonly keepalive: { readonly timeMs: number; readonly timeoutMs: number };
  readonly heartbeatMs: number;
  readonly systemctl: string;
  readonly logLevel: LogSeverity;
}

/** A bad setting; the message names the setting (and file), never a token. */
export class ShimConfigError extends Error {
  override readonly name = "ShimConfigError";
}

/** Default paths of the files the shim keeps. */
export const DEFAULTS = {
  environmentDFile: "/etc/environment.d/vm-auth.conf",
  unitEnvFile: "/run/vm-auth/env",
  lastKnownGoodFile: "/var/lib/vm-auth/last-known-good.env",
  stateFile: "/var/lib/vm-auth/shim-state.json",
  statusFile: "/run/vm-auth/status.json",
} as const;

/**
 * Reads a config file. A missing file is `{}` when `optional` (the default path need not
 * exist when flags say everything); any other problem throws ShimConfigError.
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

/** The files the shim reads and writes, and its log level. */
export type ShimPaths = Pick<
  ShimConfig,
  "environmentDFile" | "unitEnvFile" | "lastKnownGoodFile" | "stateFile" | "statusFile" | "logLevel"
>;

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
 * Parses `--unit app.service[:KEY1,KEY2|*][:restart|reload]`. A name without a type suffix
 * gets `.service`. Keys default to `*`, the action to restart. The name cannot hold `:`.
 * @throws ShimConfigError
 */
export function parseUnitFlag(spec: string): UnitSpec {
  const [name = "", ...rest] = spec.split(":");
  let keys: string[] = ["*"];
  let action: UnitAction = "restart";
  const last = rest[rest.length - 1];
  if (last === "restart" || last === "reload") {
    action = last;
    rest.pop();
  }
  if (rest.length === 1 && /^(\*|[A-Z_][A-Z0-9_]*(,[A-Z_][A-Z0-9_]*)*)$/.test(rest[0] ?? "")) {
    keys = (rest[0] ?? "").split(",");
    rest.pop();
  }
  if (rest.length > 0) {
    throw new ShimConfigError(
      `--unit ${spec}: '${rest.join(":")}' is neither env var names (KEY1,KEY2 or *) nor restart|reload`,
    );
  }
  return unit({ name, keys, action }, `--unit ${spec}`);
}

/** The `--unit` syntax of a spec, for `install` to print or round-trip. */
export function formatUnitFlag(u: UnitSpec): string {
  return `${u.name}:${u.keys.join(",")}:${u.action}`;
}

/**
 * Reads the VM token. Refuses a file that is not a regular file, that group or others may
 * access (mode must be 0600 or stricter) or that is owned by someone other than root or us:
 * anyone who can change it can point the shim at their own identity. Errors name the file and
 * never contain its content.
 * @throws ShimConfigError
 */
export function readTokenFile(file: string): string {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (err) {
    throw new ShimConfigError(
      `tokenFile: cannot open ${file}: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
  try {
    // fstat the descriptor we read from, so the checked file is the read file.
    const st = fstatSync(fd);
    if (!st.isFile()) throw new ShimConfigError(`tokenFile: ${file} is not a regular file`);
    if ((st.mode & 0o077) !== 0) {
      const mode = (st.mode & 0o777).toString(8).padStart(4, "0");
      throw new ShimConfigError(
        `tokenFile: ${file} has mode ${mode}; it must be 0600 or stricter (chmod 600 ${file})`,
      );
    }
    const uid = process.getuid?.() ?? 0;
    if (st.uid !== 0 && st.uid !== uid) {
      throw new ShimConfigError(`tokenFile: ${file} is owned by uid ${st.uid}, not root or us`);
    }
    if (st.size > 4096) throw new ShimConfigError(`tokenFile: ${file} is larger than 4 KiB`);
    const token = readFileSync(fd, "utf8").trim();
    if (token === "" || /\s/.test(token)) {
      throw new ShimConfigError(`tokenFile: ${file} must hold one token on one line`);
    }
    return token;
  } finally {
    closeSync(fd);
  }
}

// --- internal ---

const TOP_KEYS = [
  "server",
  "tokenFile",
  "ca",
  "tls",
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
  const out = v.map((u, i) => unit(u, `units[${i}]`));
  const seen = new Set<string>();
  for (const u of out) {
    if (seen.has(u.name)) throw new ShimConfigError(`units: ${u.name} is listed twice`);
    seen.add(u.name);
  }
  return out;
}

function unit(u: unknown, where: string): UnitSpec {
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
