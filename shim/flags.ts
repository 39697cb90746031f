/**
 * The shim's command line: the flags, the help text, the subcommand, and the flags as
 * ShimOptions. Paths given on the command line are relative to the working directory;
 * parseCommandLine makes them absolute, and nothing else does (the config file must hold
 * absolute paths: resolve-config.ts refuses relative ones).
 */
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type { LogSeverity } from "../common/logger.js";
import { DEFAULT_CONFIG_FILE, DEFAULTS, ShimConfigError, type ShimOptions } from "./config.js";
import { parseUnitFlag } from "./unit-flag.js";

/** The subcommands; `run` when none is given. `login` and `refresh` take a credential name. */
export type ShimCommand =
  | "run"
  | "install"
  | "uninstall"
  | "status"
  | "restore"
  | "login"
  | "refresh";

/** The parsed flags, path flags already absolute. */
export type ShimFlags = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"];

/** The help text. */
export function helpText(version: string): string {
  return `vm-auth-shim ${version}: keeps this VM's env files current from secretsd

Usage:
  vm-auth-shim [run] [options]     watch the env and apply it (what the systemd unit runs)
  vm-auth-shim install --bundle FILE|- --unit NAME[:KEY1,KEY2|*][:restart|reload] ...
                       [--enable] [--now]
  vm-auth-shim install --server HOST:PORT --token-file FILE [--ca FILE | --tls | --insecure]
                       --unit ... [--enable] [--now]
                                   write the config, the hardened vm-auth-shim.service and a
                                   drop-in per unit; --bundle (from secretsctl vm add --bundle)
                                   also writes the token to /etc/vm-auth/token and the CA to
                                   /etc/vm-auth/ca.pem
  vm-auth-shim uninstall [--purge] stop, disable and remove the unit, the drop-ins install wrote,
                                   /usr/local/lib/vm-auth/shim.cjs and the config; --purge also
                                   the token, the CA, the state and the env files
  vm-auth-shim status [--json]     connection, applied revision, last change, last error
  vm-auth-shim restore             put the last-known-good unit env file in place (boot)
  vm-auth-shim login NAME          log the host's OAuth credential NAME in (device code):
                                   prints a URL and a code, waits until the login ends
  vm-auth-shim refresh NAME        have the host refresh OAuth credential NAME's access token

Options (flags override the config file):
  --config FILE             JSON config (default ${DEFAULT_CONFIG_FILE})
  --server HOST:PORT        secretsd's TCP address; one that is not loopback (localhost,
                            127.0.0.0/8, ::1) needs --ca or --tls, or --insecure
  --token-file FILE         the VM token (mode 0600 or stricter, owned by root). The installed
                            unit passes it as a systemd credential (LoadCredential=), read at
                            each start: after changing the token, restart vm-auth-shim.service
                            (install --now does)
  --ca FILE                 TLS with this CA (PEM);  --tls  TLS with the system CAs
  --insecure                send the token in plaintext to a non-loopback server
  --unit SPEC               a dependent unit (repeatable); keys default to *, action to restart
  --environment-d-file F    default ${DEFAULTS.environmentDFile}
  --unit-env-file F         default ${DEFAULTS.unitEnvFile}
  --last-known-good-file F  default ${DEFAULTS.lastKnownGoodFile}
  --state-file F            default ${DEFAULTS.stateFile}
  --status-file F           default ${DEFAULTS.statusFile}
  --debounce-ms N           collect changes this long before restarting (default 500)
  --heartbeat-ms N          server heartbeat interval; silence for 3x reconnects (default 15000)
  --backoff-initial-ms N --backoff-max-ms N     reconnect backoff (default 500, 30000)
  --keepalive-ms N --keepalive-timeout-ms N     gRPC keepalive (default 30000, 10000)
  --systemctl PATH          systemctl binary (default systemctl)
  --log-level LEVEL         debug|info|warn|error (default info)
  install only:  --bundle FILE|- (a guest bundle; not with --server, --token-file or --ca)
                 --node PATH (the node the unit runs; default: node on systemd's PATH,
                 which must be 18 or newer)  --enable  --now
  install, uninstall:  --root DIR (prefix for every path; no stop, reload or start)
  uninstall only:  --purge
  --json, --version, --help

Exit status: 0 ok; 1 error; status: 3 when the shim is not running or not connected.
`;
}

/**
 * Parses argv (without node and the script). `--help` and `--version` win over everything
 * after the flags themselves parse.
 * @throws ShimConfigError for an extra argument or an unknown command; TypeError (from
 *   node:util parseArgs) for an unknown flag or a missing value
 */
export function parseCommandLine(argv: string[]): {
  command: ShimCommand | "help" | "version";
  flags: ShimFlags;
  /** The credential name of `login` and `refresh`. */
  name?: string;
} {
  const { values, positionals } = parseArgs({
    args: argv,
    options: OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return { command: "help", flags: values };
  if (values.version) return { command: "version", flags: values };
  const [command = "run", ...rest] = positionals;
  const takesName = command === "login" || command === "refresh";
  const name = takesName ? rest.shift() : undefined;
  if (takesName && name === undefined) throw new ShimConfigError(`${command}: give NAME`);
  if (rest.length > 0) throw new ShimConfigError(`unexpected argument '${rest[0]}'`);
  if (!isCommand(command)) {
    throw new ShimConfigError(
      `unknown command '${command}' (run, install, uninstall, status, restore, login, refresh)`,
    );
  }
  for (const [flag, only] of [
    ["bundle", "install"],
    ["node", "install"],
    ["purge", "uninstall"],
  ] as const) {
    if (values[flag] !== undefined && command !== only) {
      throw new ShimConfigError(`--${flag}: only for ${only}`);
    }
  }
  for (const f of PATH_FLAGS) {
    const p = values[f];
    if (p !== undefined) values[f] = resolve(p);
  }
  // `--bundle -` is standard input.
  if (values.bundle !== undefined && values.bundle !== "-") values.bundle = resolve(values.bundle);
  if (values.node !== undefined) values.node = resolve(values.node);
  return { command, flags: values, ...(name === undefined ? {} : { name }) };
}

/**
 * The settings among the flags, as options to overlay on the config file's (undefined = not
 * given; resolveShimConfig ignores it).
 * @throws ShimConfigError for a bad number or `--unit`
 */
export function flagOptions(v: ShimFlags): ShimOptions {
  const backoff = { initialMs: num(v, "backoff-initial-ms"), maxMs: num(v, "backoff-max-ms") };
  const keepalive = { timeMs: num(v, "keepalive-ms"), timeoutMs: num(v, "keepalive-timeout-ms") };
  const has = (o: object) => Object.values(o).some((x) => x !== undefined);
  return stripUndefined({
    server: v.server,
    tokenFile: v["token-file"],
    ca: v.ca,
    tls: v.tls,
    insecure: v.insecure,
    units: v.unit?.map(parseUnitFlag),
    environmentDFile: v["environment-d-file"],
    unitEnvFile: v["unit-env-file"],
    lastKnownGoodFile: v["last-known-good-file"],
    stateFile: v["state-file"],
    statusFile: v["status-file"],
    debounceMs: num(v, "debounce-ms"),
    heartbeatMs: num(v, "heartbeat-ms"),
    backoff: has(backoff) ? stripUndefined(backoff) : undefined,
    keepalive: has(keepalive) ? stripUndefined(keepalive) : undefined,
    systemctl: v.systemctl,
    logLevel: v["log-level"] as LogSeverity | undefined,
  });
}

// --- internal ---

const OPTIONS = {
  config: { type: "string" },
  server: { type: "string" },
  "token-file": { type: "string" },
  ca: { type: "string" },
  tls: { type: "boolean" },
  insecure: { type: "boolean" },
  bundle: { type: "string" },
  node: { type: "string" },
  purge: { type: "boolean" },
  unit: { type: "string", multiple: true },
  "environment-d-file": { type: "string" },
  "unit-env-file": { type: "string" },
  "last-known-good-file": { type: "string" },
  "state-file": { type: "string" },
  "status-file": { type: "string" },
  "debounce-ms": { type: "string" },
  "heartbeat-ms": { type: "string" },
  "backoff-initial-ms": { type: "string" },
  "backoff-max-ms": { type: "string" },
  "keepalive-ms": { type: "string" },
  "keepalive-timeout-ms": { type: "string" },
  systemctl: { type: "string" },
  "log-level": { type: "string" },
  root: { type: "string" },
  enable: { type: "boolean" },
  now: { type: "boolean" },
  json: { type: "boolean" },
  version: { type: "boolean" },
  help: { type: "boolean", short: "h" },
} as const;

// --config is left as given: it is read relative to the working directory, and install
// writes it into ExecStart=, where it must already be absolute (install.ts checkUnitPath).
const PATH_FLAGS = [
  "token-file",
  "ca",
  "environment-d-file",
  "unit-env-file",
  "last-known-good-file",
  "state-file",
  "status-file",
  "root",
] as const satisfies readonly (keyof ShimFlags)[];

const COMMANDS: readonly string[] = [
  "run",
  "install",
  "uninstall",
  "status",
  "restore",
  "login",
  "refresh",
];

function isCommand(c: string): c is ShimCommand {
  return COMMANDS.includes(c);
}

function num(v: ShimFlags, name: keyof ShimFlags): number | undefined {
  const s = v[name];
  if (s === undefined) return undefined;
  if (typeof s !== "string" || !/^\d+$/.test(s)) {
    throw new ShimConfigError(`--${name}: '${String(s)}' is not a whole number`);
  }
  return Number(s);
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as T;
}
