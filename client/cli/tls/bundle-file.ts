/**
 * `vm add --bundle FILE` / `vm token --bundle FILE`: the guest bundle (common/bundle.ts)
 * written instead of the bare token. Everything is checked, and FILE claimed (O_EXCL, 0600),
 * BEFORE the VM or token is created, so a bad flag changes nothing; the token is only ever put
 * in the file (or on stdout for `--bundle -`).
 *
 * Defaults come from `tls init`'s dir: the address from guest.json, the CA from ca.pem. With
 * no CA, a bundle for a non-loopback address needs --insecure (its token would cross the
 * network in plaintext).
 */
import { lstat, readFile } from "node:fs/promises";
import { join } from "node:path";
import { BundleError, checkBundle, encodeBundle } from "../../../common/bundle.js";
import { UsageError } from "../errors.js";
import { out } from "../output.js";
import { formatHostPort, isLoopback, parseHostPort } from "./address.js";
import { claimSecretFile, type SecretFile } from "./files.js";
import { readCert } from "./inspect.js";
import { readGuestAddress, TLS_FILES, tlsDir } from "./paths.js";

/** The bundle flags of `vm add` and `vm token`. */
export const bundleArgs = {
  bundle: {
    type: "string",
    valueHint: "file|-",
    description:
      "write the guest bundle (server address, token, CA) to FILE (new, 0600), or - for stdout, instead of the token",
  },
  "server-address": {
    type: "string",
    valueHint: "host:port",
    description: "secretsd's address as the guest reaches it (default: guest.json of tls init)",
  },
  "bundle-ca": {
    type: "string",
    valueHint: "file",
    description: "the CA the guest trusts (default: ca.pem of tls init, when there is one)",
  },
  "tls-dir": {
    type: "string",
    valueHint: "dir",
    description: "where tls init wrote guest.json and ca.pem (default <data dir>/tls)",
  },
  insecure: {
    type: "boolean",
    description: "allow a bundle without a CA for a non-loopback address (plaintext)",
  },
  force: { type: "boolean", description: "overwrite an existing --bundle FILE" },
} as const;

/** The parsed bundle flags. */
export interface BundleFlags {
  bundle?: string | undefined;
  "server-address"?: string | undefined;
  "bundle-ca"?: string | undefined;
  "tls-dir"?: string | undefined;
  insecure?: boolean | undefined;
  force?: boolean | undefined;
}

/** A bundle ready to be written once the token exists. */
export interface PendingBundle {
  /** FILE, or `-` for stdout. */
  readonly target: string;
  readonly server: string;
  /** Where the CA came from, or undefined for plaintext. */
  readonly caFile: string | undefined;
  /** Writes the bundle with `token`. @throws Error naming --bundle when the file write fails */
  write(token: string): Promise<void>;
  /** Leaves nothing behind (the command failed before a token existed). */
  discard(): Promise<void>;
}

/**
 * Checks the bundle flags and claims FILE; undefined when --bundle is not given.
 * @throws UsageError naming the flag that is wrong; Error naming the file that cannot be read
 *   or created
 */
export async function prepareBundle(
  flags: BundleFlags,
  json: boolean,
): Promise<PendingBundle | undefined> {
  if (flags.bundle === undefined) {
    for (const f of ["server-address", "bundle-ca", "tls-dir", "insecure", "force"] as const) {
      if (flags[f] !== undefined && flags[f] !== false) {
        throw new UsageError(`--${f} is for --bundle FILE`);
      }
    }
    return undefined;
  }
  const target = flags.bundle;
  if (target === "") throw new UsageError("--bundle: needs a file name, or - for stdout");
  if (target === "-" && json) {
    throw new UsageError(
      "--bundle - writes the bundle to stdout, where --json goes: give --bundle FILE",
    );
  }
  if (target === "-" && flags.force) throw new UsageError("--force is for --bundle FILE, not -");
  const dir = tlsDir(flags["tls-dir"]);
  const server = await serverAddress(flags, dir);
  const { ca, caFile } = await bundleCa(flags, dir, server);
  // The same check encodeBundle makes, with a stand-in token, so it cannot fail later.
  try {
    checkBundle({ server: server.text, token: "0".repeat(16), ca, insecure: flags.insecure });
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    throw new UsageError(
      err.message.startsWith("bundle.ca")
        ? `--bundle-ca: ${caFile} holds no usable certificate`
        : `--server-address: must be HOST:PORT`,
    );
  }
  const file = target === "-" ? undefined : await claim(target, flags.force === true);
  return {
    target,
    server: server.text,
    caFile,
    async write(token) {
      const text = encodeBundle({ server: server.text, token, ca, insecure: flags.insecure });
      if (!file) return out(text);
      await file.write(text).catch((err: NodeJS.ErrnoException) => {
        throw new Error(`--bundle: cannot write ${target} (${err.code ?? "error"})`);
      });
    },
    discard: async () => file?.discard(),
  };
}

/** The stderr note after a bundle was written: what it holds, and that it is a secret. */
export function bundleNote(b: PendingBundle): string {
  const holds = `server ${b.server}, the VM's token${b.caFile ? ` and the CA (${b.caFile})` : ", no CA (plaintext)"}`;
  const where =
    b.target === "-" ? "the bundle on stdout" : `wrote the bundle to ${b.target} (0600)`;
  const install = b.target === "-" ? "FILE" : b.target;
  return `${where}: ${holds}; it is a secret: copy it to the VM, run 'vm-auth-shim install --bundle ${install}' there, and delete this copy`;
}

// --- internal ---

interface Address {
  text: string;
  loopback: boolean;
}

async function serverAddress(flags: BundleFlags, dir: string): Promise<Address> {
  const given = flags["server-address"];
  const raw = given ?? (await readGuestAddress(dir));
  if (raw === undefined) {
    throw new UsageError(
      `--server-address: needed (no ${join(dir, TLS_FILES.guest)}; run 'secretsctl tls init --san ADDRESS' or give --server-address HOST:PORT)`,
    );
  }
  const hp = parseHostPort(raw);
  if (!hp) {
    throw new UsageError(`--server-address: '${raw}' must be HOST:PORT (IPv6 as [addr]:port)`);
  }
  return { text: formatHostPort(hp.host, hp.port), loopback: isLoopback(hp.host) };
}

async function bundleCa(
  flags: BundleFlags,
  dir: string,
  server: Address,
): Promise<{ ca: string | undefined; caFile: string | undefined }> {
  const given = flags["bundle-ca"];
  if (given !== undefined && flags.insecure) {
    throw new UsageError("give --bundle-ca or --insecure, not both");
  }
  if (flags.insecure) return { ca: undefined, caFile: undefined };
  const defaultCa = join(dir, TLS_FILES.caCert);
  const caFile = given ?? ((await exists(defaultCa)) ? defaultCa : undefined);
  if (caFile === undefined) {
    if (server.loopback) return { ca: undefined, caFile: undefined };
    throw new UsageError(
      `--bundle-ca: no CA for ${server.text} (no --bundle-ca and no ${defaultCa}): run 'secretsctl tls init', give --bundle-ca FILE, or --insecure to send the token in plaintext`,
    );
  }
  return { ca: await readPemCerts(caFile), caFile };
}

/** The PEM certificates of a file, normalised (the bundle takes nothing else). */
async function readPemCerts(file: string): Promise<string> {
  await readCert(file).catch((err: Error) => {
    throw new Error(`--bundle-ca: ${err.message}`);
  });
  const text = await readFile(file, "utf8");
  const blocks = text.match(
    /-----BEGIN CERTIFICATE-----[A-Za-z0-9+/=\s]+?-----END CERTIFICATE-----/g,
  );
  if (!blocks) throw new UsageError(`--bundle-ca: ${file} holds no PEM certificate`);
  return blocks.map((b) => `${b.replace(/\r\n/g, "\n")}\n`).join("");
}

async function claim(file: string, overwrite: boolean): Promise<SecretFile> {
  // --force renames over FILE: a directory there would fail only after the token exists.
  const st = await lstat(file).catch(() => undefined);
  if (st && !st.isFile() && !st.isSymbolicLink()) {
    throw new Error(`--bundle: ${file} exists and is not a regular file`);
  }
  try {
    return await claimSecretFile(file, overwrite);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST") {
      throw new Error(
        `--bundle: ${file} exists (it may hold another token); give --force to overwrite it`,
      );
    }
    throw new Error(`--bundle: cannot create ${file} (${code ?? "error"})`);
  }
}

async function exists(file: string): Promise<boolean> {
  return lstat(file).then(
    () => true,
    (err: NodeJS.ErrnoException) => err.code !== "ENOENT",
  );
}
