/**
 * `vm-auth-shim uninstall [--purge]`: undoes `install`. Stops and disables the shim's unit,
 * removes it, the drop-ins install wrote (those starting with its MARK line; an
 * administrator's own drop-in beside them stays), the installed shim copy and the config;
 * with `purge` also the token, the CA, the state and last-known-good files and the env files
 * the shim writes. Then `systemctl daemon-reload`. Directories are removed only when this
 * left them empty. Running it again finds nothing and says so. Paths are relative to `root`
 * as for install; with a root other than "/" nothing is stopped or reloaded.
 */
import { lstat, readdir, readFile, rm, rmdir } from "node:fs/promises";
import { dirname, isAbsolute, join } from "node:path";
import {
  DEFAULT_CA_FILE,
  DEFAULT_CONFIG_FILE,
  DEFAULT_TOKEN_FILE,
  ShimConfigError,
  type ShimOptions,
} from "./config.js";
import type { RunCommand } from "./exec.js";
import { resolveShimPaths } from "./resolve-config.js";
import {
  DEFAULT_SHIM_TARGET,
  DROP_IN,
  MARK,
  RUNTIME_DIR,
  SHIM_UNIT,
  STATE_DIR,
  UNIT_DIR,
} from "./unit-files.js";

/** What to remove; main.ts builds it from the config file overlaid by the flags. */
export interface UninstallOptions {
  /** The installed config (read before calling; `{}` when it is gone: defaults apply). */
  config: ShimOptions;
  /** The config file's path. */
  configFile: string;
  /** Also the token, CA, state and env files. @default false */
  purge?: boolean;
  /** @default "/" */
  root?: string;
  /** @default "/usr/local/lib/vm-auth/shim.cjs" */
  shimTarget?: string;
  /** @default "systemctl" */
  systemctl?: string;
  run: RunCommand;
}

/**
 * Uninstalls; resolves with the paths removed, those kept (and why), and the systemctl calls.
 * @throws ShimConfigError for a bad path in the config, Error when systemctl fails
 */
export async function uninstall(
  opts: UninstallOptions,
): Promise<{ removed: string[]; kept: string[]; calls: string[] }> {
  const root = opts.root ?? "/";
  if (!isAbsolute(root)) throw new ShimConfigError(`root: '${root}' must be an absolute path`);
  const at = (p: string) => join(root, p);
  const paths = resolveShimPaths(opts.config);
  const unitFile = at(`${UNIT_DIR}/${SHIM_UNIT}`);
  const removed: string[] = [];
  const kept: string[] = [];

  // Stop and disable first, while the unit file is still there for systemctl to read. A unit
  // of that name that install did not write is the administrator's: left alone.
  const calls: string[][] = [];
  const unitText = await readText(unitFile);
  const ours = unitText?.startsWith(MARK) ?? false;
  const wants = at(`${UNIT_DIR}/multi-user.target.wants/${SHIM_UNIT}`);
  if (ours || (unitText === undefined && (await exists(wants)))) {
    calls.push(
      root === "/" ? ["disable", "--now", SHIM_UNIT] : [`--root=${root}`, "disable", SHIM_UNIT],
    );
  }
  const systemctl = opts.systemctl ?? "systemctl";
  const runAll = async (list: string[][]) => {
    for (const args of list) {
      const r = await opts.run(systemctl, args);
      if (r.code !== 0) {
        throw new Error(`systemctl ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
      }
    }
  };
  await runAll(calls);

  const remove = async (p: string) => {
    if (await removeFile(p)) removed.push(p);
  };
  if (ours) await remove(unitFile);
  else if (unitText !== undefined) kept.push(`${unitFile} (not written by vm-auth-shim install)`);
  removed.push(...(await removeDropIns(at(UNIT_DIR))));
  const shimTarget = at(opts.shimTarget ?? DEFAULT_SHIM_TARGET);
  await remove(shimTarget);
  await removeDirIfEmpty(dirname(shimTarget), removed);
  await remove(at(opts.configFile));
  if (opts.purge) {
    const tokenFile = opts.config.tokenFile ?? DEFAULT_TOKEN_FILE;
    const ca = opts.config.ca ?? DEFAULT_CA_FILE;
    for (const f of [
      tokenFile,
      ca,
      paths.stateFile,
      paths.lastKnownGoodFile,
      paths.unitEnvFile,
      paths.statusFile,
      paths.environmentDFile,
    ]) {
      await remove(at(f));
    }
  }
  // Only the directories install or the unit made; an empty /etc or /srv stays.
  for (const d of [CONFIG_DIR, STATE_DIR, RUNTIME_DIR]) await removeDirIfEmpty(at(d), removed);

  const after: string[][] = [];
  if (root === "/" && (removed.length > 0 || calls.length > 0)) after.push(["daemon-reload"]);
  await runAll(after);
  return { removed, kept, calls: [...calls, ...after].map((a) => `systemctl ${a.join(" ")}`) };
}

// --- internal ---

const CONFIG_DIR = dirname(DEFAULT_CONFIG_FILE);

/**
 * Removes a drop-in of ours from every `<unit>.d/` except those of the units in `keep`
 * (install keeps the units it was given), and the directory if it is then empty. An
 * administrator's drop-ins (no {@link MARK}) stay.
 */
export async function removeDropIns(
  unitDir: string,
  keep: ReadonlySet<string> = new Set(),
): Promise<string[]> {
  const removed: string[] = [];
  let entries: string[];
  try {
    entries = await readdir(unitDir);
  } catch {
    return removed;
  }
  for (const d of entries.filter((e) => e.endsWith(".d") && !keep.has(e.slice(0, -2))).sort()) {
    const file = join(unitDir, d, DROP_IN);
    if ((await readText(file))?.startsWith(MARK)) {
      await rm(file);
      removed.push(file);
      await removeDirIfEmpty(join(unitDir, d), removed);
    }
  }
  return removed;
}

async function readText(p: string): Promise<string | undefined> {
  try {
    return await readFile(p, "utf8");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw err;
  }
}

/** Whether `p` exists; a dangling symlink (an enable link to a removed unit) counts. */
async function exists(p: string): Promise<boolean> {
  try {
    await lstat(p);
    return true;
  } catch {
    return false;
  }
}

/** Removes a file; false when there was none. */
async function removeFile(p: string): Promise<boolean> {
  try {
    await rm(p);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw err;
  }
}

async function removeDirIfEmpty(dir: string, removed: string[]) {
  try {
    await rmdir(dir);
    removed.push(`${dir}/`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Not empty, gone, or a mount point (EBUSY): it stays.
    if (!["ENOENT", "ENOTEMPTY", "EEXIST", "EBUSY"].includes(code ?? "")) throw err;
  }
}
