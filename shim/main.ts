/**
 * vm-auth-shim: the composition root. Parses the command line, resolves the config once,
 * wires source → applier (template, sink, exec) and owns signals and the exit code.
 * Bundled by scripts/build.mjs into dist/shim.cjs (CJS, self-contained, no native modules).
 */
import { realpathSync } from "node:fs";
import { parseArgs } from "node:util";
import { createLogger, type Logger, type LogSeverity } from "../common/logger.js";
import { createApplier, restoreLastKnownGood } from "./apply.js";
import {
  DEFAULT_CONFIG_FILE,
  DEFAULTS,
  type ShimConfig,
  ShimConfigError,
  type ShimOptions,
  type ShimPaths,
} from "./config.js";
import { createExec, runCommand } from "./exec.js";
import { install } from "./install.js";
import { readShimConfigFile, resolveShimConfig, resolveShimPaths } from "./resolve-config.js";
import {
  createStatusWriter,
  loadState,
  type ShimState,
  type ShimStatus,
  type StatusWriter,
} from "./state.js";
import { formatStatus, statusReport } from "./status.js";
import { readTokenFile } from "./token-file.js";
import { parseUnitFlag } from "./unit-flag.js";

/** The shim's version, also sent as `vm-auth-shim/<version>` in WatchEnv and AckEnv. */
export const VERSION = "0.1.0";
const CLIENT_VERSION = `vm-auth-shim/${VERSION}`;

const HELP = `vm-auth-shim ${VERSION}: keeps this VM's env files current from secretsd

Usage:
  vm-auth-shim [run] [options]     watch the env and apply it (what the systemd unit runs)
  vm-auth-shim install --server HOST:PORT --token-file FILE [--ca FILE]
                       --unit NAME[:KEY1,KEY2|*][:restart|reload] ... [--enable] [--now]
                                   write the config, vm-auth-shim.service and a drop-in per unit
  vm-auth-shim status [--json]     connection, applied revision, last change, last error
  vm-auth-shim restore             put the last-known-good unit env file in place (boot)

Options (flags override the config file):
  --config FILE             JSON config (default ${DEFAULT_CONFIG_FILE})
  --server HOST:PORT        secretsd's TCP address
  --token-file FILE         the VM token (mode 0600 or stricter, owned by root)
  --ca FILE                 TLS with this CA (PEM);  --tls  TLS with the system CAs
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
  install only:  --root DIR (prefix for every path written; no reload/start)  --enable  --now
  --json, --version, --help

Exit status: 0 ok; 1 error; status: 3 when the shim is not running or not connected.
`;

const OPTIONS = {
  config: { type: "string" },
  server: { type: "string" },
  "token-file": { type: "string" },
  ca: { type: "string" },
  tls: { type: "boolean" },
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

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"];

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: OPTIONS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help) return print(HELP, 0);
  if (values.version) return print(`${VERSION}\n`, 0);
  const [command = "run", ...rest] = positionals;
  if (rest.length > 0) throw new ShimConfigError(`unexpected argument '${rest[0]}'`);
  switch (command) {
    case "run":
      return run(loadConfig(values));
    case "restore": {
      const cfg = loadFiles(values);
      await restoreLastKnownGood(cfg, createLogger({ level: cfg.logLevel }));
      return 0;
    }
    case "status": {
      const r = await statusReport(loadFiles(values));
      print(values.json ? `${JSON.stringify(r, null, 2)}\n` : formatStatus(r), 0);
      return r.running && r.connection === "connected" ? 0 : 3;
    }
    case "install":
      return runInstall(values);
    default:
      throw new ShimConfigError(`unknown command '${command}' (run, install, status, restore)`);
  }
}

/** The long-running watcher: restore → load state → wire the parts → watch until a signal. */
async function run(cfg: ShimConfig): Promise<number> {
  process.umask(0o077);
  const log = createLogger({ level: cfg.logLevel });
  const started = Date.now();
  await restoreLastKnownGood(cfg, log).catch((err: unknown) =>
    log.error("cannot restore the last-known-good unit env file", { err }),
  );
  const initial = await loadState(cfg.stateFile, log);
  const status = createStatusWriter(cfg.statusFile, initialStatus(cfg, initial), log);
  const { source, applier, exec } = await wire(cfg, log, initial, status);
  await applier.verify();
  const ac = new AbortController();
  const stop = (signal: NodeJS.Signals) => {
    log.info("stopping", { signal });
    ac.abort();
  };
  process.once("SIGTERM", stop);
  process.once("SIGINT", stop);
  log.info("starting", {
    version: VERSION,
    server: cfg.server,
    units: cfg.units.map((u) => u.name),
    revision: initial.revision,
    startupMs: Date.now() - started,
  });
  await status.update({});
  const now = () => new Date().toISOString();
  await source.run(ac.signal, {
    cursor: () => applier.cursor(),
    onSnapshot: async (snap) => {
      void status.update({ serverRevision: Number(snap.revision), lastFrameAt: now() });
      await applier.apply(snap);
    },
    onHeartbeat: (revision) =>
      void status.update({ serverRevision: Number(revision), lastFrameAt: now() }),
    onState: (connection, error) =>
      void status.update({
        connection,
        since: now(),
        ...(error ? { lastError: error, lastErrorAt: now() } : {}),
      }),
  });
  // A debounced restart round still waiting is dropped, not run while the system may be
  // shutting down; the state was not persisted for it, so the next start redoes it.
  exec.close();
  await Promise.race([applier.idle(), new Promise((r) => setTimeout(r, 5000).unref())]);
  await status.update({ connection: "stopped", since: now() });
  return 0;
}

/** Builds exec, source and applier from the config. */
async function wire(cfg: ShimConfig, log: Logger, initial: ShimState, status: StatusWriter) {
  const exec = createExec({
    units: cfg.units,
    debounceMs: cfg.debounceMs,
    systemctl: cfg.systemctl,
    log,
  });
  // Loaded here, not at the top: grpc-js's module init is most of the start-up time, and
  // `restore` (on the boot path, before the dependent units) and `status` do not need it.
  const { createSource } = await import("./source.js");
  const source = createSource({
    server: cfg.server,
    tls: cfg.tls,
    keepalive: cfg.keepalive,
    heartbeatMs: cfg.heartbeatMs,
    backoff: cfg.backoff,
    clientVersion: CLIENT_VERSION,
    token: () => readTokenFile(cfg.tokenFile),
    log,
  });
  const applier = createApplier({
    files: cfg,
    units: cfg.units.map((u) => u.name),
    exec,
    log,
    ack: (req) => source.ack(req),
    clientVersion: CLIENT_VERSION,
    initial,
    onApplied: (s, omitted) =>
      void status.update({
        appliedRevision: s.revision,
        digest: s.digest,
        lastChangeAt: s.changedAt,
        omitted,
      }),
  });
  return { exec, source, applier };
}

async function runInstall(v: Values): Promise<number> {
  const shimSource = realpathSync(process.argv[1] ?? "");
  if (!shimSource.endsWith(".cjs")) {
    throw new ShimConfigError(`install must run from the built shim.cjs (running ${shimSource})`);
  }
  const flags = flagOptions(v);
  const { units = [], ...config } = flags;
  if (units.length === 0) throw new ShimConfigError("install: give at least one --unit");
  const res = await install({
    config,
    units: units.map((u) => ({
      name: u.name,
      keys: u.keys ?? ["*"],
      action: u.action ?? "restart",
    })),
    ...(v.root !== undefined && { root: v.root }),
    ...(v.config !== undefined && { configFile: v.config }),
    shimSource,
    enable: v.enable ?? false,
    now: v.now ?? false,
    ...(v.systemctl !== undefined && { systemctl: v.systemctl }),
    run: runCommand,
  });
  if (v.json) return print(`${JSON.stringify(res, null, 2)}\n`, 0);
  return print(
    `${[...res.files.map((f) => `wrote ${f}`), ...res.calls.map((c) => `ran ${c}`)].join("\n")}\n`,
    0,
  );
}

// --- internal ---

function initialStatus(cfg: ShimConfig, state: ShimState): ShimStatus {
  const now = new Date().toISOString();
  return {
    pid: process.pid,
    version: VERSION,
    server: cfg.server,
    connection: "starting",
    since: now,
    appliedRevision: state.revision,
    digest: state.digest,
    lastChangeAt: state.changedAt,
    serverRevision: 0,
    lastFrameAt: undefined,
    lastError: undefined,
    lastErrorAt: undefined,
    omitted: [],
    updatedAt: now,
  };
}

function loadConfig(v: Values): ShimConfig {
  const file = readShimConfigFile(v.config ?? DEFAULT_CONFIG_FILE, v.config === undefined);
  return resolveShimConfig(file, flagOptions(v));
}

/** Only the file paths and log level: `status` and `restore` need no server or token. */
function loadFiles(v: Values): ShimPaths {
  const file = readShimConfigFile(v.config ?? DEFAULT_CONFIG_FILE, v.config === undefined);
  return resolveShimPaths(file, flagOptions(v));
}

function flagOptions(v: Values): ShimOptions {
  const backoff = { initialMs: num(v, "backoff-initial-ms"), maxMs: num(v, "backoff-max-ms") };
  const keepalive = { timeMs: num(v, "keepalive-ms"), timeoutMs: num(v, "keepalive-timeout-ms") };
  const has = (o: object) => Object.values(o).some((x) => x !== undefined);
  return stripUndefined({
    server: v.server,
    tokenFile: abs(v["token-file"]),
    ca: abs(v.ca),
    tls: v.tls,
    units: v.unit?.map(parseUnitFlag),
    environmentDFile: abs(v["environment-d-file"]),
    unitEnvFile: abs(v["unit-env-file"]),
    lastKnownGoodFile: abs(v["last-known-good-file"]),
    stateFile: abs(v["state-file"]),
    statusFile: abs(v["status-file"]),
    debounceMs: num(v, "debounce-ms"),
    heartbeatMs: num(v, "heartbeat-ms"),
    backoff: has(backoff) ? stripUndefined(backoff) : undefined,
    keepalive: has(keepalive) ? stripUndefined(keepalive) : undefined,
    systemctl: v.systemctl,
    logLevel: v["log-level"] as LogSeverity | undefined,
  });
}

function num(v: Values, name: keyof Values): number | undefined {
  const s = v[name];
  if (s === undefined) return undefined;
  if (typeof s !== "string" || !/^\d+$/.test(s)) {
    throw new ShimConfigError(`--${name}: '${String(s)}' is not a whole number`);
  }
  return Number(s);
}

function abs(p: string | undefined): string | undefined {
  return p === undefined ? undefined : resolvePath(p);
}

function resolvePath(p: string): string {
  return p.startsWith("/") ? p : `${process.cwd()}/${p}`;
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, x]) => x !== undefined)) as T;
}

function print(text: string, code: number): number {
  process.stdout.write(text);
  return code;
}

/** Prints the error (messages never hold values or tokens) and exits 1; systemd restarts us. */
function fail(err: unknown): never {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`vm-auth-shim: ${msg}\n`);
  process.exit(1);
}

process.on("unhandledRejection", fail);

main(process.argv.slice(2)).then((code) => process.exit(code), fail);
