/**
 * Where `tls init` keeps the CA and the server certificate: `<data dir>/tls`, the data dir
 * being the one the CLI's default socket lives in ($VM_AUTH_HOME, else
 * ~/.local/share/vm-auth). secretsd serves `<data dir>/tls/server.pem` and `server.key` when
 * they are there, so the default needs no flags on either side.
 */
import { readFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { cliDataDir } from "../connect.js";
import { parseHostPort } from "./address.js";

/** The files of a TLS dir, by role. */
export const TLS_FILES = {
  caCert: "ca.pem",
  caKey: "ca.key",
  serverCert: "server.pem",
  serverKey: "server.key",
  guest: "guest.json",
} as const;

/** `<data dir>/tls`, or `dir` when given. */
export function tlsDir(dir?: string, env: NodeJS.ProcessEnv = process.env): string {
  return dir !== undefined ? resolve(dir) : join(cliDataDir(env), "tls");
}

/** What guest.json holds: the address guests reach secretsd at. */
export interface GuestJson {
  server: string;
}

/**
 * The guest address `tls init` recorded in `<dir>/guest.json`, or undefined when there is
 * no such file.
 * @throws Error naming guest.json when it cannot be read or holds no valid `server`
 */
export async function readGuestAddress(dir: string): Promise<string | undefined> {
  const file = join(dir, TLS_FILES.guest);
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return undefined;
    throw new Error(`${file}: cannot read it (${code ?? "error"})`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`${file}: is not JSON (re-run 'secretsctl tls init --force')`);
  }
  const server =
    typeof doc === "object" && doc !== null ? (doc as Partial<GuestJson>).server : undefined;
  if (typeof server !== "string" || !parseHostPort(server)) {
    throw new Error(`${file}: server: must be HOST:PORT`);
  }
  return server;
}
