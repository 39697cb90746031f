/**
 * Reads certificates back (node:crypto's X509Certificate: structured fields, no parsing of
 * openssl's text output): the CA's fingerprint, a server certificate's SANs and expiry, and
 * whether a key belongs to a certificate.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";

/** What `tls init` and `tls show` say about a certificate. */
export interface CertInfo {
  /** The subject's CN (or the whole subject when it has none). */
  subject: string;
  /** `SHA256:AB:CD:…`, as `openssl x509 -fingerprint -sha256` prints it. */
  fingerprint: string;
  /** subjectAltName entries as `IP:…` / `DNS:…`. */
  sans: string[];
  notAfter: Date;
  isCa: boolean;
  x509: X509Certificate;
}

/**
 * Reads the first certificate of a PEM file.
 * @throws Error `<file>: cannot read it (CODE)` or `<file>: is not a PEM certificate`
 */
export async function readCert(file: string): Promise<CertInfo> {
  let pem: Buffer;
  try {
    pem = await readFile(file);
  } catch (err) {
    throw new Error(`${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(pem);
  } catch {
    throw new Error(`${file}: is not a PEM certificate`);
  }
  return {
    subject: /^CN=(.*)$/m.exec(x509.subject)?.[1] ?? x509.subject.replace(/\n/g, ", "),
    fingerprint: `SHA256:${x509.fingerprint256}`,
    sans: parseSans(x509.subjectAltName),
    notAfter: new Date(x509.validTo),
    isCa: x509.ca,
    x509,
  };
}

/**
 * Whether the private key in `keyFile` belongs to `cert`.
 * @throws Error `<file>: …` when the key cannot be read or parsed (the message never holds key
 *   bytes)
 */
export async function keyMatches(cert: CertInfo, keyFile: string): Promise<boolean> {
  let pem: Buffer;
  try {
    pem = await readFile(keyFile);
  } catch (err) {
    throw new Error(
      `${keyFile}: cannot read it (${(err as NodeJS.ErrnoException).code ?? "error"})`,
    );
  }
  try {
    return cert.x509.checkPrivateKey(createPrivateKey(pem));
  } catch {
    throw new Error(`${keyFile}: is not a PEM private key`);
  }
}

/** Whether `cert` was issued and signed by `ca`. */
export function signedBy(cert: CertInfo, ca: CertInfo): boolean {
  return cert.x509.checkIssued(ca.x509) && cert.x509.verify(ca.x509.publicKey);
}

/** Whole days from `now` until `at` (negative once past). */
export function daysUntil(at: Date, now = Date.now()): number {
  return Math.floor((at.getTime() - now) / 86_400_000);
}

// --- internal ---

/**
 * Node prints `IP Address:1.2.3.4, IP Address:FD00:0:0:0:0:0:0:1, DNS:host`; we print what
 * `--san` and openssl's config take: `IP:1.2.3.4`, `IP:fd00::1`, `DNS:host`.
 */
function parseSans(text: string | undefined): string[] {
  if (!text) return [];
  return text.split(", ").map((s) => {
    const ip = /^IP Address:(.*)$/.exec(s)?.[1];
    if (ip === undefined) return s;
    // The URL parser writes IPv6 in its canonical short form.
    return `IP:${ip.includes(":") ? new URL(`http://[${ip}]/`).hostname.slice(1, -1) : ip}`;
  });
}
