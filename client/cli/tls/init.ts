/**
 * `tls init`'s work: check every flag and the dir's state, then make (or reuse) the CA, issue
 * the server certificate and record the guests' address. Nothing is written before every check
 * has passed; files go through a staging dir and are renamed into place, keys 0600, the dir
 * 0700. An existing CA is reused, so guests that trust it keep working; an existing server
 * certificate is replaced only with `force`.
 */
import { chmod, lstat, mkdir, rmdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { UsageError } from "../errors.js";
import type { San } from "./address.js";
import { formatHostPort, parseHost } from "./address.js";
import { createStaging, syncDir } from "./files.js";
import type { CertInfo } from "./inspect.js";
import { daysUntil, keyMatches, readCert } from "./inspect.js";
import { CA_DAYS, createCa, issueServerCert } from "./issue.js";
import { TLS_FILES } from "./paths.js";

/** What `tls init` was asked for (flags already read, not yet checked). */
export interface TlsInitOptions {
  /** The --san values as given. */
  sans: readonly string[];
  /** The TLS dir (absolute). */
  dir: string;
  port: number;
  days: number;
  force: boolean;
  /** This host's name, for the CA's CN. */
  hostname: string;
}

/** What `tls init` did. */
export interface TlsInitResult {
  dir: string;
  /** Whether an existing CA signed the new certificate. */
  caReused: boolean;
  /** Whether a server certificate was replaced (--force). */
  replaced: boolean;
  /** Whether an existing dir's mode was narrowed to 0700. */
  tightened: boolean;
  ca: CertInfo;
  server: CertInfo;
  /** HOST:PORT written to guest.json. */
  guestAddress: string;
}

/** The SANs every server certificate carries, so local clients work without flags. */
const LOCAL_SANS: readonly San[] = [
  { type: "IP", value: "127.0.0.1" },
  { type: "DNS", value: "localhost" },
];

/**
 * Reads the --san values: the given ones in order, then 127.0.0.1 and localhost, without
 * duplicates.
 * @throws UsageError naming --san and the value it cannot read
 */
export function checkSans(raw: readonly string[]): San[] {
  if (raw.length === 0) {
    throw new UsageError(
      "--san: give at least one (the address or DNS name guests reach secretsd at)",
    );
  }
  const sans: San[] = [];
  for (const r of raw) {
    const san = parseHost(r.trim());
    if (!san) {
      throw new UsageError(`--san: '${r}' is not an IPv4 or IPv6 address or a DNS name`);
    }
    sans.push(san);
  }
  const all: San[] = [];
  for (const s of [...sans, ...LOCAL_SANS]) {
    if (!all.some((a) => a.type === s.type && a.value === s.value)) all.push(s);
  }
  return all;
}

/**
 * Does `tls init` (see the module comment).
 * @throws UsageError for a bad flag; Error naming the file for a dir it cannot use (a server
 *   certificate there without `force`, a CA without its key, …) or the openssl step that failed
 */
export async function initTls(opts: TlsInitOptions): Promise<TlsInitResult> {
  const sans = checkSans(opts.sans);
  const first = sans[0] as San;
  const dirExists = await checkDir(opts.dir);
  const f = (name: string) => join(opts.dir, name);
  const has = async (name: string) => dirExists && (await exists(f(name)));
  const [caCert, caKey, srvCert, srvKey] = await Promise.all(
    [TLS_FILES.caCert, TLS_FILES.caKey, TLS_FILES.serverCert, TLS_FILES.serverKey].map(has),
  );
  if (caCert !== caKey) {
    const [there, missing] = caCert
      ? [TLS_FILES.caCert, TLS_FILES.caKey]
      : [TLS_FILES.caKey, TLS_FILES.caCert];
    throw new Error(
      `${f(there)} is there without ${missing}: restore ${missing}, or move ${there} away to make a new CA (guests would have to trust it again)`,
    );
  }
  const replaced = Boolean(srvCert || srvKey);
  if (replaced && !opts.force) {
    throw new Error(
      `${f(srvCert ? TLS_FILES.serverCert : TLS_FILES.serverKey)} exists: give --force to re-issue it under the same CA`,
    );
  }
  const oldCa = caCert ? await checkCa(f(TLS_FILES.caCert), f(TLS_FILES.caKey)) : undefined;
  const caDaysLeft = oldCa ? daysUntil(oldCa.notAfter) : CA_DAYS;
  if (opts.days > caDaysLeft) {
    throw new UsageError(
      `--days: ${opts.days} days would outlive the CA${oldCa ? ` (valid until ${oldCa.notAfter.toISOString()})` : ""}; at most ${caDaysLeft}`,
    );
  }
  const guestAddress = formatHostPort(first, opts.port);

  // Every check passed: from here on, write.
  const tightened = await ensureDir(opts.dir, dirExists);
  const staging = await createStaging(opts.dir).catch(async (err: unknown) => {
    if (!dirExists) await rmdir(opts.dir).catch(() => {});
    throw err;
  });
  try {
    const ca = oldCa
      ? { cert: f(TLS_FILES.caCert), key: f(TLS_FILES.caKey) }
      : await createCa(staging.dir, opts.hostname);
    await issueServerCert(staging.dir, ca, sans, opts.days);
    await writeFile(
      join(staging.dir, TLS_FILES.guest),
      `${JSON.stringify({ server: guestAddress })}\n`,
    );
    if (!oldCa) {
      await staging.commit(TLS_FILES.caKey, 0o600);
      await staging.commit(TLS_FILES.caCert, 0o644);
    }
    await staging.commit(TLS_FILES.serverKey, 0o600);
    await staging.commit(TLS_FILES.serverCert, 0o644);
    await staging.commit(TLS_FILES.guest, 0o644);
    await syncDir(opts.dir);
  } catch (err) {
    if (!dirExists) await rmdir(opts.dir).catch(() => {});
    throw err;
  } finally {
    await staging.discard();
  }
  return {
    dir: opts.dir,
    caReused: oldCa !== undefined,
    replaced,
    tightened,
    ca: await readCert(f(TLS_FILES.caCert)),
    server: await readCert(f(TLS_FILES.serverCert)),
    guestAddress,
  };
}

// --- internal ---

/** Whether the dir exists. @throws Error naming --dir when it is not a directory */
async function checkDir(dir: string): Promise<boolean> {
  const st = await lstat(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === "ENOENT") return undefined;
    throw new Error(`--dir: cannot use ${dir} (${err.code ?? "error"})`);
  });
  if (st && !st.isDirectory()) throw new UsageError(`--dir: ${dir} is not a directory`);
  return st !== undefined;
}

/** Creates the dir 0700, or narrows an existing one to 0700; returns whether it narrowed it. */
async function ensureDir(dir: string, existed: boolean): Promise<boolean> {
  if (!existed) {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    return false;
  }
  const mode = (await stat(dir)).mode & 0o777;
  if (mode === 0o700) return false;
  await chmod(dir, 0o700);
  return true;
}

/** The existing CA, checked: a CA certificate whose key is ca.key. */
async function checkCa(certFile: string, keyFile: string): Promise<CertInfo> {
  const ca = await readCert(certFile);
  if (!ca.isCa) throw new Error(`${certFile}: is not a CA certificate (CA:TRUE)`);
  if (!(await keyMatches(ca, keyFile))) {
    throw new Error(`${keyFile}: is not the key of ${certFile}`);
  }
  if (ca.notAfter.getTime() <= Date.now()) {
    throw new Error(
      `${certFile}: the CA expired on ${ca.notAfter.toISOString()}; move ca.pem and ca.key away to make a new one`,
    );
  }
  return ca;
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") return false;
      throw new Error(`${file}: cannot read it (${err.code ?? "error"})`);
    },
  );
}
