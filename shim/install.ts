/**
 * `vm-auth-shim install`: makes this machine run the shim under systemd. Writes the config
 * file (and, from a guest bundle, the token and CA), copies the running shim.cjs to a fixed
 * place, writes the hardened vm-auth-shim.service and, for each dependent unit, a drop-in that
 * orders it after the shim and loads the unit env file; removes drop-ins it wrote earlier for
 * units no longer listed; then `systemctl daemon-reload` (and enable / restart when asked).
 * Everything is validated before anything is written. Every path is relative to `root`
 * (default "/"), like DESTDIR; with a root other than "/" nothing is reloaded or started, as
 * systemctl --root does.
 */
import { constants } from "node:fs";
import { access, chmod, mkdir, readFile, stat } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import { decodeBundle, type GuestBundle } from "../common/bundle.js";
import {
  DEFAULT_CA_FILE,
  DEFAULT_CONFIG_FILE,
  DEFAULT_TOKEN_FILE,
  type ShimConfig,
  ShimConfigError,
  type ShimOptions,
  type UnitSpec,
} from "./config.js";
import type { RunCommand } from "./exec.js";
import { resolveShimConfig } from "./resolve-config.js";
import { writeFileAtomic } from "./sink.js";
import { readTokenFile } from "./token-file.js";
import { removeDropIns } from "./uninstall.js";
import {
  DEFAULT_SHIM_TARGET,
  DROP_IN,
  dropIn,
  RUNTIME_DIR,
  SHIM_UNIT,
  STATE_DIR,
  shimUnit,
  UNIT_DIR,
} from "./unit-files.js";

/** What to install, and where; the CLI builds it from the flags (main.ts runInstall). */
export interface InstallOptions {
  /** The config to write: everything but `units` as given (defaults stay implicit). */
  config: ShimOptions;
  units: readonly UnitSpec[];
  /**
   * A guest bundle's text (common/bundle.ts): its token goes to /etc/vm-auth/token, its CA to
   * /etc/vm-auth/ca.pem, and the config gets server, tokenFile, ca and insecure from it. Then
   * `config` may not set server, tokenFile or ca.
   */
  bundle?: string | undefined;
  /** Prefix of every path written (tests, image builds); absolute. @default "/" */
  root?: string;
  /** Where the config goes. @default "/etc/vm-auth/shim.json" */
  configFile?: string;
  /** The shim file to install (the running one), absolute. */
  shimSource: string;
  /** @default "/usr/local/lib/vm-auth/shim.cjs" */
  shimTarget?: string;
  /**
   * The node binary the unit runs the shim with, absolute (a guest whose packaged node is
   * older than 18: an official build unpacked under /opt). @default `node` on systemd's PATH
   */
  node?: string | undefined;
  enable?: boolean;
  /** (Re)start the shim now. */
  now?: boolean;
  /** @default "systemctl" */
  systemctl?: string;
  run: RunCommand;
}

/**
 * Installs; resolves with the files written and the systemctl calls made.
 * @throws ShimConfigError for a bad config, bundle or token file (nothing written then),
 *   Error when systemctl fails
 */
export async function install(opts: InstallOptions): Promise<{ files: string[]; calls: string[] }> {
  // Made absolute by the caller (flags.ts for --root): one place, not one per layer.
  const root = opts.root ?? "/";
  if (!isAbsolute(root)) throw new ShimConfigError(`root: '${root}' must be an absolute path`);
  const at = (p: string) => join(root, p);
  const configFile = opts.configFile ?? DEFAULT_CONFIG_FILE;
  const shimTarget = opts.shimTarget ?? DEFAULT_SHIM_TARGET;
  const bundle = opts.bundle === undefined ? undefined : readBundle(opts.bundle, opts.config);
  const fileConfig: ShimOptions = {
    ...opts.config,
    ...(bundle && bundleConfig(bundle)),
    units: opts.units,
  };
  // Validate everything before writing anything.
  const cfg = resolveShimConfig(fileConfig);
  const ca = typeof cfg.tls === "object" ? cfg.tls.ca : undefined;
  if (!bundle) {
    readTokenFile(at(cfg.tokenFile));
    // LoadCredential= reads it at every start: a missing CA would stop the unit from starting.
    if (ca) await checkCaFile(at(ca));
  }
  const rwDirs = readWriteDirs(cfg);
  for (const p of [configFile, shimTarget, cfg.tokenFile, ...(ca ? [ca] : []), ...rwDirs]) {
    checkUnitPath(p);
  }
  for (const [what, p] of hiddenCheck(cfg, configFile)) checkVisible(what, p);
  if (opts.node !== undefined) await checkNode(at(opts.node), opts.node);
  if (opts.now && root !== "/") throw new ShimConfigError("--now cannot be used with --root");

  const files: string[] = [];
  const write = async (p: string, text: string | Buffer, mode: number, dirMode = 0o755) => {
    await writeFileAtomic(at(p), text, { mode, dirMode });
    files.push(at(p));
  };
  if (bundle) {
    // The token first: it creates /etc/vm-auth 0700, and an existing one is tightened.
    await write(cfg.tokenFile, `${bundle.token}\n`, 0o600, 0o700);
    await chmod(at(dirname(cfg.tokenFile)), 0o700);
    if (bundle.ca && ca) await write(ca, bundle.ca, 0o644, 0o700);
  }
  await write(configFile, `${JSON.stringify(fileConfig, null, 2)}\n`, 0o644);
  if (opts.shimSource !== at(shimTarget)) {
    await write(shimTarget, await readFile(opts.shimSource), 0o755);
  }
  // ProtectSystem=strict: a ReadWritePaths= directory must exist when the unit starts.
  for (const d of rwDirs) {
    await mkdir(at(d), {
      recursive: true,
      mode: d === dirname(cfg.environmentDFile) ? 0o755 : 0o700,
    });
  }
  const unit = shimUnit({
    node: opts.node,
    shim: shimTarget,
    config: configFile,
    tokenFile: cfg.tokenFile,
    ca,
    readWritePaths: rwDirs,
  });
  await write(`${UNIT_DIR}/${SHIM_UNIT}`, unit, 0o644);
  for (const u of cfg.units) {
    await write(`${UNIT_DIR}/${u.name}.d/${DROP_IN}`, dropIn(u, cfg.unitEnvFile), 0o644);
  }
  const stale = await removeDropIns(at(UNIT_DIR), new Set(cfg.units.map((u) => u.name)));
  files.push(...stale.map((f) => `${f} (removed)`));

  const calls: string[][] = [];
  if (root === "/") calls.push(["daemon-reload"]);
  if (opts.enable)
    calls.push(root === "/" ? ["enable", SHIM_UNIT] : [`--root=${root}`, "enable", SHIM_UNIT]);
  // A restart also takes a new token: the credential is copied when the unit starts.
  if (opts.now) calls.push(["restart", SHIM_UNIT]);
  const systemctl = opts.systemctl ?? "systemctl";
  for (const args of calls) {
    const r = await opts.run(systemctl, args);
    if (r.code !== 0)
      throw new Error(`systemctl ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  }
  return { files, calls: calls.map((a) => `systemctl ${a.join(" ")}`) };
}

/**
 * The directories the shim writes outside its StateDirectory= and RuntimeDirectory=, which
 * ProtectSystem=strict would make read-only (by default only /etc/environment.d).
 */
export function readWriteDirs(cfg: ShimConfig): string[] {
  const files = [
    cfg.environmentDFile,
    cfg.unitEnvFile,
    cfg.lastKnownGoodFile,
    cfg.stateFile,
    cfg.statusFile,
  ];
  const inside = (d: string, top: string) => d === top || d.startsWith(`${top}/`);
  const dirs = files
    .map((f) => dirname(f))
    .filter((d) => !inside(d, STATE_DIR) && !inside(d, RUNTIME_DIR));
  return [...new Set(dirs)].sort();
}

// --- internal ---

/** Decodes the bundle and refuses flags it would contradict. */
function readBundle(text: string, config: ShimOptions): GuestBundle {
  for (const [key, flag] of [
    ["server", "--server"],
    ["tokenFile", "--token-file"],
    ["ca", "--ca"],
  ] as const) {
    if (config[key] !== undefined) {
      throw new ShimConfigError(`${flag}: cannot be combined with --bundle (the bundle sets it)`);
    }
  }
  try {
    return decodeBundle(text);
  } catch (err) {
    // BundleError names the field and never the text (it holds the token).
    throw new ShimConfigError((err as Error).message);
  }
}

/** The config fields a bundle sets: the files install writes its token and CA to. */
function bundleConfig(b: GuestBundle): ShimOptions {
  return {
    server: b.server,
    tokenFile: DEFAULT_TOKEN_FILE,
    ...(b.ca ? { ca: DEFAULT_CA_FILE } : b.insecure ? { insecure: true } : {}),
  };
}

/** Trees the unit cannot see (ProtectHome=, PrivateTmp=): nothing it reads or writes may be there. */
const HIDDEN = ["/home", "/root", "/run/user", "/tmp", "/var/tmp"];

function hiddenCheck(cfg: ShimConfig, configFile: string): [string, string][] {
  return [
    ["--config", configFile],
    ["environmentDFile", cfg.environmentDFile],
    ["unitEnvFile", cfg.unitEnvFile],
    ["lastKnownGoodFile", cfg.lastKnownGoodFile],
    ["stateFile", cfg.stateFile],
    ["statusFile", cfg.statusFile],
  ];
}

function checkVisible(what: string, p: string) {
  const top = HIDDEN.find((h) => p === h || p.startsWith(`${h}/`));
  if (top) {
    throw new ShimConfigError(
      `${what}: ${p} is under ${top}, which the hardened unit cannot see (ProtectHome=, PrivateTmp=); choose a path elsewhere`,
    );
  }
}

async function checkCaFile(file: string) {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new ShimConfigError(`ca: cannot read ${file}: ${(err as NodeJS.ErrnoException).code}`);
  }
  if (!text.includes("-----BEGIN CERTIFICATE-----")) {
    throw new ShimConfigError(`ca: ${file} holds no PEM certificate`);
  }
}

/** Paths end up in ExecStart=: keep them free of quoting and systemd specifiers. */
/** `--node`: where the unit can see it, and an executable file (checked under --root). */
async function checkNode(found: string, p: string) {
  checkUnitPath(p);
  checkVisible("--node", p);
  try {
    await access(found, constants.X_OK);
    if (!(await stat(found)).isFile()) throw new Error("not a file");
  } catch {
    throw new ShimConfigError(`--node: ${p} is not an executable file`);
  }
}

function checkUnitPath(p: string) {
  if (!/^\/[A-Za-z0-9_./@+-]+$/.test(p)) {
    throw new ShimConfigError(`${p}: install paths must be absolute, without spaces, quotes or %`);
  }
}
