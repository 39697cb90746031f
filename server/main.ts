/**
 * secretsd: the composition root. Parses flags, resolves the config once, starts the
 * daemon, and owns signals and the exit code.
 */
import { parseArgs } from "node:util";
import { ConfigError, resolveServerConfig } from "./config.js";
import { createDaemon, VERSION } from "./daemon.js";
import { isSecretsError } from "./errors.js";
import type { LogLevel } from "./logger.js";
import { createLogger, stderrIsJournal } from "./logger.js";

const HELP = `secretsd ${VERSION}: vm-auth's secret store, served over gRPC

Usage: secretsd [options]

  --data-dir DIR        data dir (env SECRETSD_DATA_DIR or VM_AUTH_HOME; default ~/.local/share/vm-auth)
  --socket PATH|off     unix socket for local admin (default <data-dir>/secretsd.sock)
  --listen HOST:PORT|off  TCP listener for VMs and remote admin (default 127.0.0.1:3090)
  --tls-cert FILE --tls-key FILE   serve TCP over TLS
  --insecure            allow plaintext TCP on a non-loopback address
  --repair              start on damaged store files, accepting each named loss (logged
                        as a warning): a damaged journal line and all after it are dropped,
                        a missing or foreign journal is set aside (store.json.wal.damaged-*),
                        a store.json that fails its checksum is accepted as it is
  --log-level LEVEL     debug|info|warn|error|silent (default info)
  --config FILE         JSON file with any of the settings above (camelCase keys)
  --version, --help

Each flag has a SECRETSD_* environment variable (SECRETSD_LISTEN, SECRETSD_SOCKET, ...).
`;

async function main(argv: string[]): Promise<number> {
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
    logLevel: values["log-level"] as LogLevel | undefined,
    config: values.config,
  });
  const log = createLogger({
    level: config.logLevel,
    fields: { component: "secretsd" },
    // stderr connected to the journal: lines carry their priority (`journalctl -p err`).
    syslogPrefix: stderrIsJournal(),
  });
  const daemon = createDaemon(config, log);
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
