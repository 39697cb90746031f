/**
 * `vm-auth-shim install`: makes this machine run the shim under systemd. Writes the config
 * file, copies the running shim.cjs to a fixed place, writes vm-auth-shim.service and, for each
 * dependent unit, a drop-in that orders it after the shim and loads the unit env file; removes
 * drop-ins it wrote earlier for units no longer listed; then `systemctl daemon-reload` (and
 * enable / restart when asked). Every path is relative to `root` (default "/"), like DESTDIR;
 * with a root other than "/" nothing is reloaded or started, as systemctl --root does.
 */
import { readdir, readFile, rm } from "node:fs/promises";
import { isAbsolute, join } from "node:path";
import { DEFAULT_CONFIG_FILE, ShimConfigError, type ShimOptions, type UnitSpec } from "./config.js";
import type { RunCommand } from "./exec.js";
import { resolveShimConfig } from "./resolve-config.js";
import { writeFileAtomic } from "./sink.js";
import { readTokenFile } from "./token-file.js";

/** The shim's own unit. */
export const SHIM_UNIT = "vm-auth-shim.service";
/** Where install copies the running shim.cjs. */
export const DEFAULT_SHIM_TARGET = "/usr/local/lib/vm-auth/shim.cjs";
const UNIT_DIR = "/etc/systemd/system";
const DROP_IN = "vm-auth.conf";
const MARK = "# Written by vm-auth-shim install; rewritten on each install.";

/** What to install, and where; the CLI builds it from the flags (main.ts runInstall). */
export interface InstallOptions {
  /** The config to write: everything but `units` as given (defaults stay implicit). */
  config: ShimOptions;
  units: readonly UnitSpec[];
  /** Prefix of every path written (tests, image builds); absolute. @default "/" */
  root?: string;
  /** Where the config goes. @default "/etc/vm-auth/shim.json" */
  configFile?: string;
  /** The shim file to install (the running one), absolute. */
  shimSource: string;
  /** @default "/usr/local/lib/vm-auth/shim.cjs" */
  shimTarget?: string;
  enable?: boolean;
  /** (Re)start the shim now. */
  now?: boolean;
  /** @default "systemctl" */
  systemctl?: string;
  run: RunCommand;
}

/**
 * Installs; resolves with the files written and the systemctl calls made.
 * @throws ShimConfigError for a bad config or token file, Error when systemctl fails
 */
export async function install(opts: InstallOptions): Promise<{ files: string[]; calls: string[] }> {
  // Made absolute by the caller (flags.ts for --root): one place, not one per layer.
  const root = opts.root ?? "/";
  if (!isAbsolute(root)) throw new ShimConfigError(`root: '${root}' must be an absolute path`);
  const at = (p: string) => join(root, p);
  const configFile = opts.configFile ?? DEFAULT_CONFIG_FILE;
  const shimTarget = opts.shimTarget ?? DEFAULT_SHIM_TARGET;
  const fileConfig: ShimOptions = { ...opts.config, units: opts.units };
  // Validate everything before writing anything.
  const cfg = resolveShimConfig(fileConfig);
  readTokenFile(at(cfg.tokenFile));
  for (const p of [configFile, shimTarget, cfg.unitEnvFile]) checkUnitPath(p);
  if (opts.now && root !== "/") throw new ShimConfigError("--now cannot be used with --root");

  const files: string[] = [];
  const write = async (p: string, text: string | Buffer, mode: number) => {
    await writeFileAtomic(at(p), text, { mode, dirMode: 0o755 });
    files.push(at(p));
  };
  await write(configFile, `${JSON.stringify(fileConfig, null, 2)}\n`, 0o644);
  if (opts.shimSource !== at(shimTarget)) {
    await write(shimTarget, await readFile(opts.shimSource), 0o755);
  }
  await write(`${UNIT_DIR}/${SHIM_UNIT}`, shimUnit(shimTarget, configFile), 0o644);
  for (const u of cfg.units) {
    await write(`${UNIT_DIR}/${u.name}.d/${DROP_IN}`, dropIn(u, cfg.unitEnvFile), 0o644);
  }
  files.push(...(await removeStaleDropIns(at(UNIT_DIR), new Set(cfg.units.map((u) => u.name)))));

  const calls: string[][] = [];
  if (root === "/") calls.push(["daemon-reload"]);
  if (opts.enable)
    calls.push(root === "/" ? ["enable", SHIM_UNIT] : [`--root=${root}`, "enable", SHIM_UNIT]);
  if (opts.now) calls.push(["restart", SHIM_UNIT]);
  const systemctl = opts.systemctl ?? "systemctl";
  for (const args of calls) {
    const r = await opts.run(systemctl, args);
    if (r.code !== 0)
      throw new Error(`systemctl ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  }
  return { files, calls: calls.map((a) => `systemctl ${a.join(" ")}`) };
}

/** The shim's own unit. */
export function shimUnit(shim: string, config: string): string {
  const cmd = `/usr/bin/env node ${shim}`;
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
ExecStartPre=-${cmd} restore --config ${config}
ExecStart=${cmd} run --config ${config}
Restart=always
RestartSec=2
UMask=0077
NoNewPrivileges=yes
SyslogIdentifier=vm-auth-shim

[Install]
WantedBy=multi-user.target
`;
}

/** The drop-in for a dependent unit. */
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

// --- internal ---

/** Paths end up in ExecStart=: keep them free of quoting and systemd specifiers. */
function checkUnitPath(p: string) {
  if (!/^\/[A-Za-z0-9_./@+-]+$/.test(p)) {
    throw new ShimConfigError(`${p}: install paths must be absolute, without spaces, quotes or %`);
  }
}

async function removeStaleDropIns(unitDir: string, keep: ReadonlySet<string>): Promise<string[]> {
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = await readdir(unitDir);
  } catch {
    return removed;
  }
  for (const d of entries) {
    if (!d.endsWith(".d") || keep.has(d.slice(0, -2))) continue;
    const file = join(unitDir, d, DROP_IN);
    const text = await readFile(file, "utf8").catch(() => "");
    if (text.startsWith(MARK)) {
      await rm(file);
      removed.push(`${file} (removed)`);
    }
  }
  return removed;
}
