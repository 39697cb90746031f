/**
 * The guest bundle: everything a VM needs to reach secretsd, in one line that survives a
 * copy and paste or a file copy: the server address, the VM's token and, under TLS, the CA
 * that signed the server's certificate. `secretsctl vm add NAME --bundle FILE` writes it
 * (mode 0600); `vm-auth-shim install --bundle FILE` reads it. A leaf module (imports nothing
 * of ours), shared by the CLI and the shim.
 *
 * Text form: `vmauth-bundle-v1:` followed by base64url(JSON of {@link GuestBundle}), one line.
 * A bundle holds a token: errors name the field and never echo the text.
 */

/** What a guest needs. */
export interface GuestBundle {
  /** secretsd's TCP address as the guest reaches it: HOST:PORT (IPv6 as [addr]:port). */
  server: string;
  /** The VM's bearer token. */
  token: string;
  /** PEM of the CA to trust; absent means plaintext (allowed only with `insecure`, or to loopback). */
  ca?: string | undefined;
  /** The operator chose plaintext to a non-loopback address on purpose. */
  insecure?: boolean | undefined;
}

/** A bundle that cannot be read; the message names the field, never a value. */
export class BundleError extends Error {
  override name = "BundleError";
}

/** The prefix of the text form; its version changes if the JSON's meaning ever does. */
export const BUNDLE_PREFIX = "vmauth-bundle-v1:";

const TOKEN = /^[A-Za-z0-9_-]{16,512}$/;
const SERVER = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):([0-9]{1,5})$/;
const PEM =
  /^(-----BEGIN CERTIFICATE-----\r?\n[A-Za-z0-9+/=\r\n]+-----END CERTIFICATE-----\r?\n?)+$/;

/** The one-line text form, ending in a newline. */
export function encodeBundle(b: GuestBundle): string {
  const checked = checkBundle(b);
  return `${BUNDLE_PREFIX}${Buffer.from(JSON.stringify(checked)).toString("base64url")}\n`;
}

/**
 * Reads a bundle from its text form (surrounding whitespace ignored).
 * @throws BundleError naming what is wrong
 */
export function decodeBundle(text: string): GuestBundle {
  const t = text.trim();
  if (!t.startsWith(BUNDLE_PREFIX)) {
    throw new BundleError(`bundle: does not start with '${BUNDLE_PREFIX}'`);
  }
  const body = t.slice(BUNDLE_PREFIX.length);
  if (!/^[A-Za-z0-9_-]+$/.test(body)) {
    throw new BundleError("bundle: is not one line of base64url after the prefix (truncated?)");
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(body, "base64url").toString("utf8"));
  } catch {
    throw new BundleError("bundle: its content is not JSON (truncated or mistyped?)");
  }
  return checkBundle(parsed);
}

/** Validates a bundle's shape and fields; returns a copy with only the known fields. */
export function checkBundle(v: unknown): GuestBundle {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new BundleError("bundle: must be an object");
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!["server", "token", "ca", "insecure"].includes(k)) {
      throw new BundleError(`bundle.${k}: unknown field`);
    }
  }
  const m = typeof o.server === "string" ? SERVER.exec(o.server) : null;
  if (!m || Number(m[2]) < 1 || Number(m[2]) > 65535) {
    throw new BundleError("bundle.server: must be HOST:PORT");
  }
  if (typeof o.token !== "string" || !TOKEN.test(o.token)) {
    throw new BundleError("bundle.token: missing or not a token");
  }
  if (o.ca !== undefined && (typeof o.ca !== "string" || !PEM.test(o.ca))) {
    throw new BundleError("bundle.ca: must be PEM certificates");
  }
  if (o.insecure !== undefined && typeof o.insecure !== "boolean") {
    throw new BundleError("bundle.insecure: must be true or false");
  }
  const out: GuestBundle = { server: o.server as string, token: o.token };
  if (o.ca !== undefined) out.ca = o.ca as string;
  if (o.insecure) out.insecure = true;
  return out;
}
