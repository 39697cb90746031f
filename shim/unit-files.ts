/**
 * The systemd files `vm-auth-shim install` writes and `uninstall` removes: the shim's own
 * hardened unit and a drop-in per dependent unit. Both start with {@link MARK}, which is how
 * install and uninstall tell their own files from an administrator's.
 */
import type { UnitSpec } from "./config.js";

/** The shim's own unit. */
export const SHIM_UNIT = "vm-auth-shim.service";
/** Where install copies the running shim.cjs. */
export const DEFAULT_SHIM_TARGET = "/usr/local/lib/vm-auth/shim.cjs";
/** Where unit files and drop-in directories go. */
export const UNIT_DIR = "/etc/systemd/system";
/** The drop-in's file name inside `<unit>.d/`. */
export const DROP_IN = "vm-auth.conf";
/** The first line of every file install writes into {@link UNIT_DIR}. */
export const MARK = "# Written by vm-auth-shim install; rewritten on each install.";
/** systemd's StateDirectory= and RuntimeDirectory= of the unit, under /var/lib and /run. */
export const STATE_DIR = "/var/lib/vm-auth";
export const RUNTIME_DIR = "/run/vm-auth";

/** What the shim's unit names. */
export interface ShimUnitOptions {
  /** The node binary, absolute. @default `node` on systemd's PATH (`/usr/bin/env node`) */
  node?: string | undefined;
  /** The installed shim.cjs. */
  shim: string;
  /** The config file. */
  config: string;
  /** The VM token file, passed as the credential `token`. */
  tokenFile: string;
  /** The CA file, passed as the credential `ca`, when TLS uses one. */
  ca?: string | undefined;
  /** Directories the shim writes outside its state and runtime directories (ReadWritePaths=). */
  readWritePaths?: readonly string[];
}

/**
 * The shim's own unit: restore the last-known-good env file, then watch; restart forever;
 * token and CA as credentials; every sandboxing option node and `systemctl try-restart` allow.
 */
export function shimUnit(o: ShimUnitOptions): string {
  const cmd = `${o.node ?? "/usr/bin/env node"} ${o.shim}`;
  const rw = (o.readWritePaths ?? []).map((d) => `ReadWritePaths=-${d}\n`).join("");
  return `${MARK}
[Unit]
Description=vm-auth shim: keeps this VM's env files current from secretsd
Wants=network-online.target
After=network-online.target
# Never give up restarting: the files it keeps are what the dependent units start with.
StartLimitIntervalSec=0

[Service]
# Plain node cannot sd_notify (Type=notify); the dependent units need only the restored file,
# which ExecStartPre puts in place before this unit counts as started.
Type=simple
ExecStartPre=-${cmd} restore --config ${o.config}
ExecStart=${cmd} run --config ${o.config}
Restart=always
RestartSec=2
UMask=0077
SyslogIdentifier=vm-auth-shim
# The token (and CA) reach the shim as credentials: systemd copies them at each start into
# $CREDENTIALS_DIRECTORY, readable by this unit only. A new token needs a restart of this unit.
LoadCredential=token:${o.tokenFile}
${o.ca ? `LoadCredential=ca:${o.ca}\n` : ""}# The last-known-good copy and the state file; the unit env file and status. /run/vm-auth
# outlives a stop or restart of the shim: the dependent units load their env from it.
StateDirectory=vm-auth
StateDirectoryMode=0700
RuntimeDirectory=vm-auth
RuntimeDirectoryMode=0700
RuntimeDirectoryPreserve=yes
# The sandbox. The shim runs as root without any capability: enough to write root's own files
# and to ask PID 1 over its socket to restart the dependent units (systemctl try-restart).
ProtectSystem=strict
${rw}ProtectHome=yes
PrivateTmp=yes
PrivateDevices=yes
NoNewPrivileges=yes
CapabilityBoundingSet=
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6
SystemCallFilter=@system-service
SystemCallFilter=~@privileged @resources
SystemCallErrorNumber=EPERM
SystemCallArchitectures=native
LockPersonality=yes
RestrictNamespaces=yes
RestrictRealtime=yes
RestrictSUIDSGID=yes
ProtectKernelTunables=yes
ProtectKernelModules=yes
ProtectKernelLogs=yes
ProtectControlGroups=yes
ProtectClock=yes
ProtectHostname=yes
ProtectProc=invisible
ProcSubset=pid
PrivateIPC=yes
# No MemoryDenyWriteExecute=: V8's JIT compiler needs writable and executable memory.

[Install]
WantedBy=multi-user.target
`;
}

/** The drop-in for a dependent unit: ordered after the shim, loading the unit env file. */
export function dropIn(u: UnitSpec, unitEnvFile: string): string {
  const service = u.name.endsWith(".service")
    ? `\n[Service]\n# keys: ${u.keys.join(",")} (action: ${u.action})\nEnvironmentFile=-${unitEnvFile}\n`
    : "";
  return `${MARK}
[Unit]
After=${SHIM_UNIT}
Wants=${SHIM_UNIT}
${service}`;
}
