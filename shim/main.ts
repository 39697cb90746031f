/**
 * vm-auth-shim: the composition root. Parses the command line (flags.ts), resolves the config
 * once (resolve-config.ts), dispatches the subcommand; for `run`, wires source → applier
 * (template, sink) → exec and owns signals and the exit code.
 * Bundled by scripts/build.mjs into dist/shim.cjs (CJS, self-contained, no native modules).
 */
import { readFileSync, realpathSync } from "node:fs";
import { join } from "node:path";
import { createLogger, type Logger, stderrIsJournal } from "../common/logger.js";
import { createApplier, restoreLastKnownGood } from "./apply.js";
import {
  DEFAULT_CONFIG_FILE,
  type ShimConfig,
  ShimConfigError,
  type ShimOptions,
  type ShimPaths,
} from "./config.js";
import { createExec, runCommand } from "./exec.js";
import { flagOptions, helpText, parseCommandLine, type ShimFlags } from "./flags.js";
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
import { credentialSource, readToken, tokenSource } from "./token-file.js";
import { uninstall } from "./uninstall.js";

/** The shim's version, also sent as `vm-auth-shim/<version>` in WatchEnv and AckEnv. */
export const VERSION = "0.1.0";
const CLIENT_VERSION = `vm-auth-shim/${VERSION}`;

async function main(argv: string[]): Promise<number> {
  const { command, flags, name = "" } = parseCommandLine(argv);
  switch (command) {
    case "help":
      return print(helpText(VERSION), 0);
    case "version":
      return print(`${VERSION}\n`, 0);
    case "run":
      return run(loadConfig(flags));
    case "restore": {
      const cfg = loadPaths(flags);
      await restoreLastKnownGood(
        cfg,
        createLogger({ level: cfg.logLevel, syslogPrefix: stderrIsJournal() }),
      );
      return 0;
    }
    case "status": {
      const r = await statusReport(loadPaths(flags));
      print(flags.json ? `${JSON.stringify(r, null, 2)}\n` : formatStatus(r), 0);
      return r.running && r.connection === "connected" ? 0 : 3;
    }
    case "install":
      return runInstall(flags);
    case "uninstall":
      return runUninstall(flags);
    case "login":
    case "refresh": {
      // Loaded here, like the source: grpc-js's module init is most of the start-up time.
      const oauth = await import("./login.js");
      const cfg = loadConfig(flags);
      return command === "login" ? oauth.login(cfg, name) : oauth.refresh(cfg, name);
    }
  }
}

/** The long-running watcher: restore → load state → wire the parts → watch until a signal. */
async function run(cfg: ShimConfig): Promise<number> {
  process.umask(0o077);
  const log = createLogger({ level: cfg.logLevel, syslogPrefix: stderrIsJournal() });
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
  // Under the installed unit the token and CA are systemd credentials (install.ts).
  const token = tokenSource(cfg.tokenFile);
  const ca = typeof cfg.tls === "object" ? credentialSource("ca", cfg.tls.ca).file : undefined;
  log.info("credentials", { token: token.file, ...(ca && { ca }) });
  const source = createSource({
    server: cfg.server,
    tls: ca ? { ca } : cfg.tls,
    keepalive: cfg.keepalive,
    heartbeatMs: cfg.heartbeatMs,
    backoff: cfg.backoff,
    clientVersion: CLIENT_VERSION,
    token: () => readToken(token),
    log,
  });
  const applier = createApplier({
    files: cfg,
    units: cfg.units.map((u) => u.name),
    unitMap: cfg.units,
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

/** `install`: the flags (not the config file) are the config to write. */
async function runInstall(v: ShimFlags): Promise<number> {
  const shimSource = realpathSync(process.argv[1] ?? "");
  if (!shimSource.endsWith(".cjs")) {
    throw new ShimConfigError(`install must run from the built shim.cjs (running ${shimSource})`);
  }
  const { units = [], ...config }: ShimOptions = flagOptions(v);
  if (units.length === 0) throw new ShimConfigError("install: give at least one --unit");
  const bundle = v.bundle === undefined ? undefined : readBundleText(v.bundle);
  const res = await install({
    config,
    bundle,
    units: units.map((u) => ({
      name: u.name,
      keys: u.keys ?? ["*"],
      action: u.action ?? "restart",
    })),
    ...(v.root !== undefined && { root: v.root }),
    ...(v.config !== undefined && { configFile: v.config }),
    shimSource,
    ...(v.node !== undefined && { node: v.node }),
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

/** `uninstall`: what to remove comes from the installed config, overlaid by the flags. */
async function runUninstall(v: ShimFlags): Promise<number> {
  const configFile = v.config ?? DEFAULT_CONFIG_FILE;
  const at = (p: string) => (v.root ? join(v.root, p) : p);
  const res = await uninstall({
    config: { ...readShimConfigFile(at(configFile), true), ...flagOptions(v) },
    configFile,
    purge: v.purge ?? false,
    ...(v.root !== undefined && { root: v.root }),
    ...(v.systemctl !== undefined && { systemctl: v.systemctl }),
    run: runCommand,
  });
  if (v.json) return print(`${JSON.stringify(res, null, 2)}\n`, 0);
  const lines = [
    ...res.calls.map((c) => `ran ${c}`),
    ...res.removed.map((f) => `removed ${f}`),
    ...res.kept.map((f) => `kept ${f}`),
  ];
  if (res.removed.length === 0 && res.calls.length === 0) lines.push("nothing to remove");
  return print(`${lines.join("\n")}\n`, 0);
}

// --- internal ---

/** The bundle's text from a file or, for `-`, standard input; errors never echo it. */
function readBundleText(file: string): string {
  try {
    return readFileSync(file === "-" ? 0 : file, "utf8");
  } catch (err) {
    const what = file === "-" ? "standard input" : file;
    throw new ShimConfigError(
      `--bundle: cannot read ${what}: ${(err as NodeJS.ErrnoException).code}`,
    );
  }
}

function initialStatus(cfg: ShimConfig, state: ShimState): ShimStatus {
  const now = new Date().toISOString();
  return {
    pid: process.pid,
    version: VERSION,
    server: cfg.server,
    transport:
      cfg.tls === false
        ? "plaintext"
        : cfg.tls === true
          ? "TLS, system CAs"
          : `TLS, CA ${cfg.tls.ca}`,
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

function loadConfig(v: ShimFlags): ShimConfig {
  return resolveShimConfig(readConfigFile(v), flagOptions(v));
}

/** Only the file paths and log level: `status` and `restore` need no server or token. */
function loadPaths(v: ShimFlags): ShimPaths {
  return resolveShimPaths(readConfigFile(v), flagOptions(v));
}

function readConfigFile(v: ShimFlags): ShimOptions {
  return readShimConfigFile(v.config ?? DEFAULT_CONFIG_FILE, v.config === undefined);
}

function print(text: string, code: number): number {
  process.stdout.write(text);
  return code;
}

/**
 * Prints the error (messages never hold values or tokens) and exits 1; systemd restarts us.
 * Under journald the line carries priority err, so `journalctl -p err` shows it.
 */
function fail(err: unknown): never {
  const msg = err instanceof Error ? err.message : String(err);
  process.stderr.write(`${stderrIsJournal() ? "<3>" : ""}vm-auth-shim: ${msg}\n`);
  process.exit(1);
}

process.on("unhandledRejection", fail);
// grpc-js sets the TLS ServerName to the target's host; for an IP address node prints
// DEP0123 on every connect: a non-JSON journal line per reconnect that the operator cannot act
// on. Node ignores the name for IPs (no SNI) and still checks the certificate's IP SANs.
process.noDeprecation = true;

main(process.argv.slice(2)).then((code) => process.exit(code), fail);
