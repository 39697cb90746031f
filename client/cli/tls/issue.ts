/**
 * Makes the CA and the server certificate with the system openssl, in a staging dir the
 * caller renames from. EC P-256 keys. Every openssl step gets a config file of our own
 * (-config / -extfile), so the host's openssl.cnf cannot add or change extensions.
 *
 * - CA: CN "vm-auth CA <hostname>", basicConstraints critical CA:TRUE,pathlen:0, keyUsage
 *   keyCertSign,cRLSign; 10 years.
 * - server: CN = the first SAN, subjectAltName = the SANs, EKU serverAuth, CA:FALSE.
 */
import { randomBytes } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { San } from "./address.js";
import { openssl } from "./openssl.js";
import { TLS_FILES } from "./paths.js";

/** How long a new CA is valid. */
export const CA_DAYS = 3650;

/** Where the CA's files are, to sign with. */
export interface CaFiles {
  cert: string;
  key: string;
}

/**
 * Makes a new CA key and self-signed certificate in `dir` (ca.key, ca.pem).
 * @throws Error naming the openssl step that failed
 */
export async function createCa(dir: string, hostname: string): Promise<CaFiles> {
  const key = join(dir, TLS_FILES.caKey);
  const cert = join(dir, TLS_FILES.caCert);
  await genKey(dir, key);
  const cnf = join(dir, "ca.cnf");
  await writeFile(
    cnf,
    config(`vm-auth CA ${safeCn(hostname)}`, [
      "basicConstraints = critical,CA:TRUE,pathlen:0",
      "keyUsage = critical,keyCertSign,cRLSign",
      "subjectKeyIdentifier = hash",
      "authorityKeyIdentifier = keyid:always",
    ]),
    { mode: 0o600 },
  );
  await openssl(
    ["req", "-x509", "-new", "-config", cnf, "-key", key, "-sha256"].concat([
      "-days",
      String(CA_DAYS),
      "-set_serial",
      serial(),
      "-out",
      cert,
    ]),
    dir,
  );
  return { cert, key };
}

/**
 * Makes server.key and server.pem in `dir`, signed by `ca`, for `sans` (the first is the CN),
 * valid `days` days; then checks the result with `openssl verify`.
 * @throws Error naming the openssl step that failed
 */
export async function issueServerCert(
  dir: string,
  ca: CaFiles,
  sans: readonly San[],
  days: number,
): Promise<{ cert: string; key: string }> {
  const key = join(dir, TLS_FILES.serverKey);
  const cert = join(dir, TLS_FILES.serverCert);
  const csr = join(dir, "server.csr");
  await genKey(dir, key);
  const reqCnf = join(dir, "server-req.cnf");
  await writeFile(reqCnf, config(sans[0]?.value ?? "secretsd", []), { mode: 0o600 });
  await openssl(["req", "-new", "-config", reqCnf, "-key", key, "-out", csr], dir);
  const extCnf = join(dir, "server-ext.cnf");
  const alt = sans.map((s, i) => `${s.type}.${i + 1} = ${s.value}`);
  await writeFile(
    extCnf,
    [
      "[ext]",
      "basicConstraints = critical,CA:FALSE",
      "keyUsage = critical,digitalSignature",
      "extendedKeyUsage = serverAuth",
      "subjectAltName = @alt",
      "subjectKeyIdentifier = hash",
      "authorityKeyIdentifier = keyid,issuer",
      "[alt]",
      ...alt,
      "",
    ].join("\n"),
    { mode: 0o600 },
  );
  await openssl(
    ["x509", "-req", "-in", csr, "-CA", ca.cert, "-CAkey", ca.key, "-sha256"]
      .concat(["-days", String(days), "-set_serial", serial()])
      .concat(["-extfile", extCnf, "-extensions", "ext", "-out", cert]),
    dir,
  );
  await openssl(["verify", "-CAfile", ca.cert, cert], dir);
  return { cert, key };
}

// --- internal ---

/** An EC P-256 private key (PKCS#8 PEM) at `file`. */
async function genKey(dir: string, file: string): Promise<void> {
  await openssl(
    ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256"].concat([
      "-pkeyopt",
      "ec_param_enc:named_curve",
      "-out",
      file,
    ]),
    dir,
  );
}

/** A `req` config: subject CN, no prompts, and the given extensions (for `req -x509`). */
function config(cn: string, ext: readonly string[]): string {
  const lines = ["[req]", "distinguished_name = dn", "prompt = no", "utf8 = yes"];
  if (ext.length > 0) lines.push("x509_extensions = ext");
  lines.push("[dn]", `CN = ${cn}`);
  if (ext.length > 0) lines.push("[ext]", ...ext);
  return `${lines.join("\n")}\n`;
}

/** A CN from the host name: config-safe characters only, at most 64 in all. */
function safeCn(hostname: string): string {
  return hostname.replace(/[^A-Za-z0-9._-]/g, "-").slice(0, 64 - "vm-auth CA ".length) || "host";
}

/** A random positive 128-bit serial (RFC 5280 §4.1.2.2: positive, at most 20 octets). */
function serial(): string {
  return `0x4${randomBytes(15).toString("hex")}`;
}
