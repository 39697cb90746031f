/**
 * The shim's configuration vocabulary: the input form (`ShimOptions`, from the config file and
 * flags), the resolved form (`ShimConfig`), the default paths and the error every bad setting
 * throws. Resolving and validating is resolve-config.ts; the `--unit` grammar unit-flag.ts; the
 * token file's checks token-file.ts; the command line flags.ts.
 */
import type { LogSeverity } from "../common/logger.js";

/** Where `run`, `status` and `restore` look for the config unless --config says otherwise. */
export const DEFAULT_CONFIG_FILE = "/etc/vm-auth/shim.json";

/** Where `install --bundle` writes the VM token and the CA (the unit's LoadCredential= source). */
export const DEFAULT_TOKEN_FILE = "/etc/vm-auth/token";
export const DEFAULT_CA_FILE = "/etc/vm-auth/ca.pem";

/** Default paths of the files the shim keeps. */
export const DEFAULTS = {
  environmentDFile: "/etc/environment.d/vm-auth.conf",
  unitEnvFile: "/run/vm-auth/env",
  lastKnownGoodFile: "/var/lib/vm-auth/last-known-good.env",
  stateFile: "/var/lib/vm-auth/shim-state.json",
  statusFile: "/run/vm-auth/status.json",
} as const;

/** What a dependent unit does when one of its keys changes. */
export type UnitAction = "restart" | "reload";

/** A dependent unit: the env keys it reads (`*` = all) and how to apply a change. */
export interface UnitSpec {
  readonly name: string;
  readonly keys: readonly string[];
  readonly action: UnitAction;
}

/** A dependent unit as written in the config file; resolved into a {@link UnitSpec}. */
export interface UnitSpecInput {
  /** A systemd unit name; without a type suffix it gets `.service`. */
  name: string;
  /** @default ["*"] */
  keys?: readonly string[] | undefined;
  /** @default "restart" */
  action?: UnitAction | undefined;
}

/**
 * Input form (config file or flags); every field optional. Paths must be absolute: the config
 * file's as written, the flags' made so by flags.ts.
 */
export interface ShimOptions {
  /** secretsd's TCP address, host:port. Required. */
  server?: string | undefined;
  /** File holding the VM token; mode 0600 or stricter, owned by root or us. Required. */
  tokenFile?: string | undefined;
  /** PEM CA file: connect over TLS, trusting it. */
  ca?: string | undefined;
  /** Connect over TLS with the system CAs. @default false (true when `ca` is set) */
  tls?: boolean | undefined;
  /**
   * Send the token in plaintext to a server that is not loopback (localhost, 127.0.0.0/8,
   * ::1). Without it, such a server needs `ca` or `tls`. @default false
   */
  insecure?: boolean | undefined;
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
  /** @default [] */
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

/** The resolved configuration: every field filled, paths absolute, frozen. */
export interface ShimConfig {
  readonly server: string;
  readonly tokenFile: string;
  readonly tls: false | true | { readonly ca: string };
  /** Plaintext to a non-loopback server was asked for (false whenever TLS is on). */
  readonly insecure: boolean;
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

/** The files the shim reads and writes, and its log level. */
export type ShimPaths = Pick<
  ShimConfig,
  "environmentDFile" | "unitEnvFile" | "lastKnownGoodFile" | "stateFile" | "statusFile" | "logLevel"
>;

/** A bad setting; the message names the setting (and file), never a token. */
export class ShimConfigError extends Error {
  override readonly name = "ShimConfigError";
}
