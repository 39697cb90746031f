/**
 * `secretsd install` / `secretsd uninstall`: run secretsd as a hardened system service. Install
 * creates the service user, copies the running bundle (and the packages it imports: the
 * build leaves node_modules external, scripts/build.mjs) to /usr/local/lib/vm-auth, writes
 * secretsd.service (and with `logrotate` /etc/logrotate.d/secretsd), records what it wrote
 * in a manifest, then `systemctl daemon-reload` (enable / restart when asked). Uninstall
 * removes exactly what the manifest names; the data dir and the user only with `purge`.
 * Every path is relative to `root` (default "/"), like DESTDIR: there no user is created and
 * nothing is reloaded or started. Modelled on shim/install.ts.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import {
  chmod,
  cp,
  mkdir,
  readdir,
  readFile,
  rename,
  rm,
  rmdir,
  writeFile,
} from "node:fs/promises";
import { dirname, isAbsolute, join, normalize } from "node:path";
import { readIfExists } from "../common/fs.js";
import { bundlePackages } from "./bundle-packages.js";
import { ConfigError, isLoopback, resolveServerConfig } from "./config.js";
import {
  DATA_DIR,
  logrotateConfig,
  MARK,
  SERVICE,
  serviceUnit,
  type UnitSpec,
} from "./service-unit.js";

export const UNIT_FILE = `/etc/systemd/system/${SERVICE}`;
export const LOGROTATE_FILE = "/etc/logrotate.d/secretsd";
export const LIB_DIR = "/usr/local/lib/vm-auth";
export const BUNDLE_TARGET = `${LIB_DIR}/secretsd.js`;
/** What install wrote, for uninstall (JSON). */
export const MANIFEST = `${LIB_DIR}/secretsd.install.json`;

/** Runs a program; resolves with its exit code and output, never rejects. */
export type RunCommand = (
  bin: string,
  args: string[],
) => Promise<{ code: number; stdout: string; stderr: string }>;

export interface InstallOptions {
  /** The running secretsd.js (absolute). */
  bundle: string;
  /** The node binary ExecStart names. */
  node: string;
  /** @default "vm-auth" */
  user?: string | undefined;
  /** TCP listener, HOST:PORT. @default secretsd's own (127.0.0.1:3090) */
  listen?: string | undefined;
  /** Directory holding server.pem and server.key, passed with LoadCredential=. */
  tlsDir?: string | undefined;
  /** Size rotation of the audit log. @default 67108864 (64 MiB), unless `logrotate` */
  auditMaxBytes?: number | undefined;
  /** @default 5 */
  auditKeep?: number | undefined;
  /** Rotate audit.log with logrotate (weekly, SIGHUP) instead of by size in secretsd. */
  logrotate?: boolean | undefined;
  /** @default "/" */
  root?: string | undefined;
  enable?: boolean | undefined;
  now?: boolean | undefined;
  run: RunCommand;
}

/** What install wrote; uninstall removes these and nothing else. */
interface Manifest {
  files: string[];
}

/** The comment (GECOS) of a user install created: `uninstall --purge` deletes only such a user. */
export const USER_COMMENT = "vm-auth secretsd, created by secretsd install";

/**
 * Installs; resolves with the lines to print (what was written, created and run).
 * @throws ConfigError naming the flag for a bad option, before anything is written; Error
 *   when useradd or systemctl fails
 */
export async function install(opts: InstallOptions): Promise<string[]> {
  const root = opts.root ?? "/";
  if (!isAbsolute(root)) throw new ConfigError(`root: '${root}' must be an absolute path`);
  const at = (p: string) => join(root, p);
  const user = checkUser(opts.user);
  if (opts.now && root !== "/") throw new ConfigError("now: --now cannot be used with --root");
  checkNode(opts.node);
  const spec = unitSpec(opts, user, at);
  const packages = await bundlePackages(opts.bundle);

  const out: string[] = [];
  const previous = await readManifest(at(MANIFEST));
  if (root === "/") {
    if (await createUser(user, opts.run)) out.push(`created system user ${user}`);
  } else {
    out.push(`user ${user}: not created under --root (create it in the image)`);
  }
  const files: string[] = [];
  const write = async (p: string, text: string | Buffer, mode: number) => {
    await writeAtomic(at(p), text, mode);
    files.push(p);
    out.push(`wrote ${at(p)}`);
  };
  if (opts.bundle !== at(BUNDLE_TARGET)) {
    await write(BUNDLE_TARGET, await readFile(opts.bundle), 0o755);
  } else {
    files.push(BUNDLE_TARGET);
  }
  for (const [name, src] of packages) {
    const p = `${LIB_DIR}/node_modules/${name}`;
    if (src !== at(p)) {
      await rm(at(p), { recursive: true, force: true });
      await cp(src, at(p), { recursive: true, dereference: true });
    }
    files.push(p);
  }
  if (packages.size > 0)
    out.push(`copied ${packages.size} packages to ${at(`${LIB_DIR}/node_modules`)}`);
  await write(UNIT_FILE, serviceUnit(spec), 0o644);
  if (opts.logrotate) await write(LOGROTATE_FILE, logrotateConfig(), 0o644);
  // Packages and files an earlier install wrote that this one did not.
  for (const p of previous?.files ?? []) {
    if (!files.includes(p)) {
      await rm(at(p), { recursive: true, force: true });
      out.push(`removed ${at(p)}`);
    }
  }
  const manifest: Manifest = { files };
  await writeAtomic(at(MANIFEST), `${JSON.stringify(manifest, null, 2)}\n`, 0o644);

  const calls: string[][] = [];
  if (root === "/") calls.push(["daemon-reload"]);
  if (opts.enable)
    calls.push(root === "/" ? ["enable", SERVICE] : [`--root=${root}`, "enable", SERVICE]);
  if (opts.now) calls.push(["restart", SERVICE]);
  for (const args of calls) out.push(await systemctl(opts.run, args));
  return out;
}

export interface UninstallOptions {
  /** Also the data dir (store, master key, audit log) and the user, if install created it. */
  purge?: boolean | undefined;
  /** The service user purge removes. @default "vm-auth" */
  user?: string | undefined;
  /** @default "/" */
  root?: string | undefined;
  run: RunCommand;
}

/**
 * Stops and disables the service, removes what install wrote (the manifest's files, the
 * unit and logrotate file when they carry install's mark), reloads systemd. The data dir
 * stays unless `purge`. Running it again finds nothing and says so.
 * @throws Error when systemctl or userdel fails
 */
export async function uninstall(opts: UninstallOptions): Promise<string[]> {
  const root = opts.root ?? "/";
  if (!isAbsolute(root)) throw new ConfigError(`root: '${root}' must be an absolute path`);
  const at = (p: string) => join(root, p);
  const out: string[] = [];
  const manifest = await readManifest(at(MANIFEST));
  const unitText = (await readIfExists(at(UNIT_FILE)))?.toString("utf8");
  const ours = unitText?.startsWith(MARK) ?? false;
  if (ours && root === "/") out.push(await systemctl(opts.run, ["disable", "--now", SERVICE]));
  if (ours && root !== "/")
    out.push(await systemctl(opts.run, [`--root=${root}`, "disable", SERVICE]));
  if (unitText !== undefined && !ours)
    out.push(`kept ${at(UNIT_FILE)}: not written by secretsd install`);
  const remove = new Set(manifest?.files ?? []);
  if (ours) remove.add(UNIT_FILE);
  const rotate = (await readIfExists(at(LOGROTATE_FILE)))?.toString("utf8");
  if (rotate?.startsWith(MARK)) remove.add(LOGROTATE_FILE);
  for (const p of remove) {
    await rm(at(p), { recursive: true, force: true });
    out.push(`removed ${at(p)}`);
  }
  if (manifest) {
    await rm(at(MANIFEST), { force: true });
    out.push(`removed ${at(MANIFEST)}`);
  }
  // Only directories this left empty (the shim may share /usr/local/lib/vm-auth).
  for (const p of remove) {
    for (let d = dirname(p); d.startsWith(LIB_DIR); d = dirname(d)) await removeIfEmpty(at(d));
  }
  if (root === "/" && (ours || manifest)) out.push(await systemctl(opts.run, ["daemon-reload"]));
  if (opts.purge) {
    await rm(at(DATA_DIR), { recursive: true, force: true });
    out.push(`removed ${at(DATA_DIR)} (store, master key, audit log)`);
    if (root === "/") out.push(await removeUser(checkUser(opts.user), opts.run));
  } else if (existsSync(at(DATA_DIR))) {
    out.push(`kept ${at(DATA_DIR)} (store, master key, audit log); --purge removes it`);
  }
  if (out.length === 0) out.push("nothing to remove: secretsd is not installed");
  return out;
}

/** Runs `bin args` with a 2-minute timeout; never rejects. */
export const runCommand: RunCommand = (bin, args) =>
  new Promise((resolve) => {
    execFile(bin, args, { timeout: 120_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
      resolve({ code, stdout, stderr: err && !stderr ? err.message : stderr });
    });
  });

// --- internal ---

/** Validates the options into what the unit needs; throws ConfigError naming the flag. */
function unitSpec(opts: InstallOptions, user: string, at: (p: string) => string): UnitSpec {
  if (opts.tlsDir !== undefined) {
    checkUnitPath("tls-dir", opts.tlsDir);
    for (const f of ["server.pem", "server.key"]) {
      if (!existsSync(at(join(opts.tlsDir, f)))) {
        throw new ConfigError(`tls-dir: ${at(join(opts.tlsDir, f))} does not exist`);
      }
    }
  }
  // What secretsd itself will check at start, said in install's terms: a non-loopback
  // listener needs TLS, from --tls-dir or from the data dir's tls/ (`secretsctl tls init`).
  const cfg = resolveServerConfig(
    {
      dataDir: at(DATA_DIR),
      insecure: true,
      ...(opts.listen !== undefined ? { listen: opts.listen } : {}),
      ...(opts.tlsDir !== undefined
        ? {
            tlsCert: at(join(opts.tlsDir, "server.pem")),
            tlsKey: at(join(opts.tlsDir, "server.key")),
          }
        : {}),
    },
    {},
  );
  if (cfg.listen && !cfg.tls && !isLoopback(cfg.listen.host)) {
    throw new ConfigError(
      `listen: ${cfg.listen.host} is not a loopback address; give --tls-dir DIR (server.pem, server.key) or put them in ${DATA_DIR}/tls/ first`,
    );
  }
  const keep = opts.auditKeep ?? 5;
  const maxBytes = opts.logrotate ? undefined : (opts.auditMaxBytes ?? 64 * 1024 * 1024);
  if (opts.logrotate && opts.auditMaxBytes !== undefined) {
    throw new ConfigError("audit-max-bytes: give it or --logrotate, not both");
  }
  for (const [flag, v] of [
    ["audit-max-bytes", maxBytes],
    ["audit-keep", keep],
  ] as const) {
    if (v !== undefined && (!Number.isInteger(v) || v < 1)) {
      throw new ConfigError(`${flag}: must be a positive integer`);
    }
  }
  const args = [
    ...(opts.listen !== undefined ? ["--listen", opts.listen] : []),
    ...(maxBytes !== undefined
      ? ["--audit-max-bytes", String(maxBytes), "--audit-keep", String(keep)]
      : []),
  ];
  return {
    user,
    execStart: [opts.node, BUNDLE_TARGET, ...args],
    ...(opts.tlsDir !== undefined ? { tlsDir: opts.tlsDir } : {}),
  };
}

function checkUser(user = "vm-auth"): string {
  if (!/^[a-z_][a-z0-9_-]{0,30}$/.test(user)) {
    throw new ConfigError(`user: '${user}' is not a valid system user name`);
  }
  return user;
}

function checkNode(node: string) {
  checkUnitPath("node", node);
  // ProtectHome=yes hides /home, /root and /run/user from the service.
  if (/^\/(home|root|run\/user)(\/|$)/.test(node)) {
    throw new ConfigError(
      `node: ${node} is under a home directory, which the service cannot see (ProtectHome=yes); install node system-wide`,
    );
  }
}

/** Paths end up in ExecStart= and LoadCredential=: keep them free of quoting and specifiers. */
function checkUnitPath(field: string, p: string) {
  if (!/^\/[A-Za-z0-9_./@+-]+$/.test(p)) {
    throw new ConfigError(`${field}: '${p}' must be an absolute path without spaces, quotes or %`);
  }
}

async function createUser(user: string, run: RunCommand): Promise<boolean> {
  if ((await run("getent", ["passwd", user])).code === 0) return false;
  const r = await run("useradd", [
    "--system",
    "--user-group",
    "--comment",
    USER_COMMENT,
    "--home-dir",
    DATA_DIR,
    "--no-create-home",
    "--shell",
    "/usr/sbin/nologin",
    user,
  ]);
  if (r.code !== 0) throw new Error(`useradd ${user} exited ${r.code}: ${r.stderr.trim()}`);
  return true;
}

/** Deletes `user` (and its group) only when its comment says install created it. */
async function removeUser(user: string, run: RunCommand): Promise<string> {
  const r = await run("getent", ["passwd", user]);
  if (r.code !== 0) return `no user ${user}`;
  if (r.stdout.split(":")[4] !== USER_COMMENT)
    return `kept user ${user}: not created by secretsd install`;
  const del = await run("userdel", [user]);
  if (del.code !== 0) throw new Error(`userdel ${user} exited ${del.code}: ${del.stderr.trim()}`);
  return `removed system user ${user}`;
}

async function systemctl(run: RunCommand, args: string[]): Promise<string> {
  const r = await run("systemctl", args);
  if (r.code !== 0)
    throw new Error(`systemctl ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
  return `ran systemctl ${args.join(" ")}`;
}

async function readManifest(file: string): Promise<Manifest | undefined> {
  const raw = await readIfExists(file);
  if (!raw) return undefined;
  const m = JSON.parse(raw.toString("utf8")) as Manifest;
  // Only paths install itself writes: a tampered manifest must not make uninstall rm -rf /.
  m.files = (Array.isArray(m.files) ? m.files : []).filter(
    (p) =>
      typeof p === "string" &&
      normalize(p) === p &&
      (p.startsWith(`${LIB_DIR}/`) || p === UNIT_FILE || p === LOGROTATE_FILE),
  );
  return m;
}

async function writeAtomic(file: string, data: string | Buffer, mode: number) {
  await mkdir(dirname(file), { recursive: true, mode: 0o755 });
  const tmp = `${file}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, data, { mode });
    await chmod(tmp, mode);
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function removeIfEmpty(dir: string) {
  try {
    if ((await readdir(dir)).length === 0) await rmdir(dir);
  } catch {
    // not there, or not empty: nothing to do
  }
}
