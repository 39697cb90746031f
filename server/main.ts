/**
 * secretsd: the composition root. Parses flags, resolves the config once, starts the
 * daemon, and owns signals and the exit code: SIGTERM/SIGINT stop, SIGHUP reopens the audit
 * log (logrotate, `systemctl reload`). `secretsd install|uninstall` set it up as a service
 * (install.ts).
 */
import { realpathSync } from "node:fs";
import { resolve as resolvePath } from "node:path";
import { parseArgs } from "node:util";
import { ConfigError, resolveServerConfig } from "./config.js";
import { createDaemon, VERSION } from "./daemon.js";
import { isSecretsError } from "./errors.js";
import { install, runCommand, uninstall } from "./install.js";
import type { LogLevel } from "./logger.js";
import { createLogger, stderrIsJournal } from "./logger.js";

const HELP = `secretsd ${VERSION}: vm-auth's secret store, served over gRPC

Usage: secretsd [options]
       secretsd install [--user vm-auth] [--listen HOST:PORT] [--tls-dir DIR] [--enable] [--now] …
       secretsd uninstall [--purge]

  --data-dir DIR        data dir (env SECRETSD_DATA_DIR or VM_AUTH_HOME; default ~/.local/share/vm-auth)
  --socket PATH|off     unix socket for local admin (default <data-dir>/secretsd.sock)
  --listen HOST:PORT|off  TCP listener for VMs and remote admin (default 127.0.0.1:3090)
  --tls-cert FILE --tls-key FILE   serve TCP over TLS
  --insecure            allow plaintext TCP on a non-loopback address
  --repair              start on damaged store files, accepting each named loss (logged
                        as a warning): a damaged journal line and all after it are dropped,
                        a missing or foreign journal is set aside (store.json.wal.damaged-*),
                        a store.json that fails its checksum is accepted as it is
  --audit-max-bytes N   rotate audit.log at N bytes: audit.log.1 … .K (default: never;
                        SIGHUP reopens it for logrotate)
  --audit-keep K        rotated audit logs kept (default 5)
  --log-level LEVEL     debug|info|warn|error|silent (default info)
  --config FILE         JSON file with any of the settings above (camelCase keys)
  --version, --help

Each flag has a SECRETSD_* environment variable (SECRETSD_LISTEN, SECRETSD_SOCKET, ...).
Under systemd, $STATE_DIRECTORY is the default data dir, $RUNTIME_DIRECTORY/secretsd.sock the
default socket, and $CREDENTIALS_DIRECTORY/tls-cert + tls-key (else <data-dir>/tls/server.pem
+ server.key) the default TLS pair.
`;

const INSTALL_HELP = `Usage: secretsd install [options]

Runs secretsd as the hardened system service secretsd.service: creates the system user,
copies this secretsd.js (and the packages it imports) to /usr/local/lib/vm-auth, writes
/etc/systemd/system/secretsd.service, reloads systemd. Data dir /var/lib/secretsd (0700),
socket /run/secretsd/secretsd.sock.

  --user NAME           service user and group, created if missing (default vm-auth)
  --listen HOST:PORT    TCP listener (default 127.0.0.1:3090); not loopback needs TLS
  --tls-dir DIR         DIR/server.pem and DIR/server.key, passed with LoadCredential=
                        (default: /var/lib/secretsd/tls/ when secretsctl tls init made it)
  --audit-max-bytes N   rotate audit.log at N bytes (default 67108864)
  --audit-keep K        rotated audit logs kept (default 5)
  --logrotate           rotate with /etc/logrotate.d/secretsd (weekly, SIGHUP) instead
  --root DIR            write under DIR (an image); no user is created, nothing started
  --enable              enable the unit (start at boot)
  --now                 (re)start it now

Usage: secretsd uninstall [--purge [--user vm-auth]] [--root DIR]

Stops, disables and removes what install wrote. The data dir (store, master key, audit log)
stays unless --purge, which also removes the user if install created it.
`;

async function main(argv: string[]): Promise<number> {
  if (argv[0] === "install" || argv[0] === "uninstall") return setup(argv[0], argv.slice(1));
  const { values } = parseArgs({
    args: argv,
    options: {
      "data-dir": { type: "string" },
      socket: { type: "string" },
      listen: { type: "string" },
      "tls-cert": { type: "string" },
      "tls-key": { type: "string" },
      insecure: { type: "boolean" },
      repair: { type: "boolean" },
      "audit-max-bytes": { type: "string" },
      "audit-keep": { type: "string" },
      "log-level": { type: "string" },
      config: { type: "string" },
      version: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(HELP);
    return 0;
  }
  if (values.version) {
    process.stdout.write(`${VERSION}\n`);
    return 0;
  }
  // Every file the daemon creates (store, key, socket, audit log) is private to its user.
  process.umask(0o077);
  const config = resolveServerConfig({
    dataDir: values["data-dir"],
    socket: values.socket,
    listen: values.listen,
    tlsCert: values["tls-cert"],
    tlsKey: values["tls-key"],
    insecure: values.insecure,
    repair: values.repair,
    auditMaxBytes: flagInt("audit-max-bytes", values["audit-max-bytes"]),
    auditKeep: flagInt("audit-keep", values["audit-keep"]),
    logLevel: values["log-level"] as LogLevel | undefined,
    config: values.config,
  });
  const log = createLogger({
    level: config.logLevel,
    fields: { component: "secretsd" },
    // stderr connected to the journal: lines carry their priority (`journalctl -p err`).
    syslogPrefix: stderrIsJournal(),
  });
  if (config.tls) {
    log.info("tls", { source: config.tls.source, cert: config.tls.cert, key: config.tls.key });
  }
  const daemon = createDaemon(config, log);
  // Before start: SIGHUP's default action would kill a starting daemon (a logrotate run).
  process.on("SIGHUP", () => {
    try {
      daemon.reopenAudit();
    } catch (err) {
      log.error("audit log reopen failed; still writing to the old file", { err });
    }
  });
  const addresses = await daemon.start();
  // One line on stdout for whoever started us (tests, scripts): where to connect.
  process.stdout.write(`${JSON.stringify({ event: "listening", ...addresses })}\n`);
  return new Promise<number>((resolve) => {
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      log.info("stopping", { signal });
      daemon.stop().then(
        () => resolve(0),
        (err: unknown) => {
          log.error("stop failed", { err });
          resolve(1);
        },
      );
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
  });
}

/** `install` / `uninstall`: flags in, one line per thing done out. */
async function setup(cmd: "install" | "uninstall", argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      user: { type: "string" },
      listen: { type: "string" },
      "tls-dir": { type: "string" },
      "audit-max-bytes": { type: "string" },
      "audit-keep": { type: "string" },
      logrotate: { type: "boolean" },
      root: { type: "string" },
      enable: { type: "boolean" },
      now: { type: "boolean" },
      purge: { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(INSTALL_HELP);
    return 0;
  }
  const installOnly = [
    "listen",
    "tls-dir",
    "audit-max-bytes",
    "audit-keep",
    "logrotate",
    "enable",
    "now",
  ] as const;
  const given = (k: keyof typeof values) => values[k] !== undefined;
  const wrong =
    cmd === "install" ? (given("purge") ? "purge" : undefined) : installOnly.find(given);
  if (wrong) throw new ConfigError(`${wrong}: --${wrong} is not an option of ${cmd}`);
  const root = values.root === undefined ? "/" : resolvePath(values.root);
  const lines =
    cmd === "install"
      ? await install({
          // The file node runs (a symlink such as npm's bin link resolved).
          bundle: realpathSync(process.argv[1] ?? ""),
          node: process.execPath,
          user: values.user,
          listen: values.listen,
          tlsDir: values["tls-dir"],
          auditMaxBytes: flagInt("audit-max-bytes", values["audit-max-bytes"]),
          auditKeep: flagInt("audit-keep", values["audit-keep"]),
          logrotate: values.logrotate,
          root,
          enable: values.enable,
          now: values.now,
          run: runCommand,
        })
      : await uninstall({ purge: values.purge, user: values.user, root, run: runCommand });
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}

function flagInt(flag: string, v: string | undefined): number | undefined {
  if (v === undefined) return undefined;
  if (!/^[1-9][0-9]{0,15}$/.test(v)) throw new ConfigError(`${flag}: must be a positive integer`);
  return Number(v);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const msg =
      err instanceof ConfigError || isSecretsError(err) || (err instanceof Error && "code" in err)
        ? (err as Error).message
        : String(err);
    process.stderr.write(`secretsd: ${msg}\n`);
    process.exit(1);
  },
);
