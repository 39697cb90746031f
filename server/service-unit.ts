/**
 * The text `secretsd install` writes: secretsd.service and /etc/logrotate.d/secretsd. Kept
 * apart from install.ts so that the unit can be read (and reviewed) in one place.
 */

/** The unit's name. */
export const SERVICE = "secretsd.service";
/** The service's data dir: StateDirectory=secretsd. */
export const DATA_DIR = "/var/lib/secretsd";
/** First line of every file install writes; uninstall removes only files that start with it. */
export const MARK = "# Written by secretsd install; rewritten on each install.";

/** What the unit needs from the options (validated). */
export interface UnitSpec {
  user: string;
  /** argv of ExecStart: node, the installed bundle, flags. */
  execStart: string[];
  /** Directory of server.pem and server.key, passed as credentials. */
  tlsDir?: string | undefined;
}

/**
 * secretsd.service. Data dir, socket and TLS come from the directories systemd makes
 * (config.ts reads $STATE_DIRECTORY, $RUNTIME_DIRECTORY, $CREDENTIALS_DIRECTORY), so
 * ExecStart carries only the listener and audit rotation. Measured in nspawn on systemd 252
 * (test/e2e/secretsd-unit.test.ts): node 20 runs under every line here.
 */
export function serviceUnit(spec: UnitSpec): string {
  const creds = spec.tlsDir
    ? `LoadCredential=tls-cert:${spec.tlsDir}/server.pem\nLoadCredential=tls-key:${spec.tlsDir}/server.key\n`
    : "";
  return `${MARK}
[Unit]
Description=vm-auth secretsd: the host's secret store, served over gRPC
Wants=network-online.target
After=network-online.target

[Service]
Type=exec
User=${spec.user}
Group=${spec.user}
ExecStart=${spec.execStart.join(" ")}
# SIGHUP reopens audit.log (after logrotate moved it).
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=2
# /var/lib/secretsd (data dir: store, master key, audit log) and /run/secretsd (the socket).
# Not "vm-auth": that is the shim's (vm-auth-shim.service, root); systemd chowns these
# directories to the unit's user at each start, so shared names would hand this data dir to
# whichever unit started last (test/e2e/secretsd-unit.test.ts runs both on one machine).
StateDirectory=secretsd
StateDirectoryMode=0700
RuntimeDirectory=secretsd
RuntimeDirectoryMode=0755
UMask=0077
${creds}# node raises its own descriptor limit with setrlimit, which ~@resources refuses: one
# descriptor per connected VM.
LimitNOFILE=65536

NoNewPrivileges=yes
CapabilityBoundingSet=
AmbientCapabilities=
ProtectSystem=strict
ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
PrivateUsers=yes
PrivateIPC=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
LockPersonality=yes
RemoveIPC=yes
SystemCallArchitectures=native
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
# No MemoryDenyWriteExecute=yes: V8's JIT flips code pages between writable and executable;
# under it node 20 aborts at its first compile (V8 "Check failed: 12 == errno" in
# OS::SetPermissions, SIGTRAP), measured by test/e2e/secretsd-unit.test.ts.

[Install]
WantedBy=multi-user.target
`;
}

/** /etc/logrotate.d/secretsd: move weekly, keep 5, then SIGHUP (ExecReload) reopens. */
export function logrotateConfig(): string {
  return `${MARK}
# secretsd reopens audit.log on SIGHUP (systemctl reload), so nothing is copied or truncated.
# Keep the names audit.log.N uncompressed: \`secretsctl audit\` reads them.
${DATA_DIR}/audit.log {
\tweekly
\trotate 5
\tmissingok
\tnotifempty
\tnocompress
\tnocreate
\tpostrotate
\t\tsystemctl reload ${SERVICE} >/dev/null 2>&1 || true
\tendscript
}
`;
}
