/**
 * Where secretsctl connects and how: the shared connection flags, their environment
 * fallbacks, and the client built from them. The only module of the CLI that reads
 * process.env (STYLE.md §7).
 *
 * Precedence: flags, then VM_AUTH_* variables, then the default unix socket
 * `$VM_AUTH_HOME/secretsd.sock`, else `~/.local/share/vm-auth/secretsd.sock` (the daemon's
 * default data dir, server/config.ts); when that does not exist and VM_AUTH_HOME is unset,
 * the system service's `/run/secretsd/secretsd.sock` (`secretsd install`) if it exists.
 */
import { accessSync, constants, existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import type { ClientOptions, VmAuthClient } from "../index.js";
import { createClient } from "../index.js";
import { redact, UsageError } from "./errors.js";

/** The connection flags every command takes. */
export const connectionArgs = {
  socket: {
    type: "string",
    valueHint: "path",
    description:
      "unix socket of secretsd (env VM_AUTH_SOCKET; default $VM_AUTH_HOME/secretsd.sock, else ~/.local/share/vm-auth/secretsd.sock, else the service's /run/secretsd/secretsd.sock)",
  },
  server: {
    type: "string",
    valueHint: "host:port",
    description: "secretsd over TCP (env VM_AUTH_SERVER); needs a token",
  },
  token: {
    type: "string",
    description: "bearer token for --server (env VM_AUTH_TOKEN; prefer --token-file)",
  },
  "token-file": { type: "string", valueHint: "file", description: "read the token from FILE" },
  ca: { type: "string", valueHint: "file", description: "TLS with this CA (env VM_AUTH_CA)" },
  tls: { type: "boolean", description: "TLS with the system CAs" },
  timeout: { type: "string", valueHint: "ms", description: "deadline of each call (default 5000)" },
} as const;

/** The parsed connection flags. */
export interface ConnectionFlags {
  socket?: string | undefined;
  server?: string | undefined;
  token?: string | undefined;
  "token-file"?: string | undefined;
  ca?: string | undefined;
  tls?: boolean | undefined;
  timeout?: string | undefined;
}

/** A resolved connection: client options plus a name for messages. */
export interface Connection {
  readonly options: ClientOptions;
  /** The socket path or host:port, for error messages. */
  readonly target: string;
}

/** Where the system service (`secretsd install`) listens: RuntimeDirectory=secretsd. */
export const SERVICE_SOCKET = "/run/secretsd/secretsd.sock";

let lastTarget: string | undefined;

/** Where the most recent client was pointed, for the top-level error message. */
export function currentTarget(): string | undefined {
  return lastTarget;
}

/** Resolves the flags and builds a client (lazy: nothing connects before the first call). */
export function connect(flags: ConnectionFlags): VmAuthClient {
  const conn = resolveConnection(flags, process.env);
  lastTarget = conn.target;
  return createClient(conn.options);
}

/**
 * Resolves flags and environment into client options. `serviceSocket` is the last resort
 * (tests point it elsewhere).
 * @throws UsageError on conflicting or malformed flags; Error when a token or CA file cannot
 *   be read.
 */
export function resolveConnection(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv,
  serviceSocket = SERVICE_SOCKET,
): Connection {
  const deadlineMs = parseTimeout(flags.timeout);
  if (flags.socket !== undefined && flags.server !== undefined) {
    throw new UsageError("give --socket or --server, not both");
  }
  const envSocket = nonEmpty(env.VM_AUTH_SOCKET);
  const envServer = nonEmpty(env.VM_AUTH_SERVER);
  const flagGiven = flags.socket !== undefined || flags.server !== undefined;
  if (!flagGiven && envSocket && envServer) {
    throw new UsageError("VM_AUTH_SOCKET and VM_AUTH_SERVER are both set; unset one");
  }
  const server = flagGiven ? nonEmpty(flags.server) : envServer;
  if (flags.server !== undefined && !server) throw new UsageError("--server needs HOST:PORT");
  if (server) {
    const tls = flags.ca ?? nonEmpty(env.VM_AUTH_CA) ?? (flags.tls ? true : undefined);
    if (typeof tls === "string") checkReadable("ca", tls);
    const token = resolveToken(flags, env);
    return {
      options: { server, token, tls, deadlineMs },
      target: server,
    };
  }
  for (const f of ["token", "token-file", "ca", "tls"] as const) {
    if (flags[f] !== undefined && flags[f] !== false) {
      throw new UsageError(`--${f} is for --server (TCP); the unix socket needs none`);
    }
  }
  const socket = resolve(nonEmpty(flags.socket) ?? envSocket ?? defaultSocket(env, serviceSocket));
  return { options: { socket, deadlineMs }, target: socket };
}

/**
 * The CLI's data dir: $VM_AUTH_HOME, else ~/.local/share/vm-auth (the daemon's default data
 * dir, server/config.ts). Its socket is the default target; `tls init` keeps its files there.
 */
export function cliDataDir(env: NodeJS.ProcessEnv = process.env): string {
  // homedir() is $HOME when set: read from `env` so that tests can point it elsewhere.
  const home = nonEmpty(env.HOME) ?? homedir();
  return resolve(nonEmpty(env.VM_AUTH_HOME) ?? join(home, ".local", "share", "vm-auth"));
}

// --- internal ---

/**
 * `$VM_AUTH_HOME/secretsd.sock` when VM_AUTH_HOME is set (exists or not: that is what was
 * asked for); else the per-user one, unless it is missing and the service's exists.
 */
function defaultSocket(env: NodeJS.ProcessEnv, serviceSocket: string): string {
  const own = join(cliDataDir(env), "secretsd.sock");
  if (nonEmpty(env.VM_AUTH_HOME)) return own;
  return !existsSync(own) && existsSync(serviceSocket) ? serviceSocket : own;
}

function resolveToken(flags: ConnectionFlags, env: NodeJS.ProcessEnv): string | undefined {
  if (flags.token !== undefined && flags["token-file"] !== undefined) {
    throw new UsageError("give --token or --token-file, not both");
  }
  let token = flags.token ?? nonEmpty(env.VM_AUTH_TOKEN);
  const file = flags["token-file"];
  if (file !== undefined) {
    checkReadable("token-file", file);
    // A token file usually ends with a newline (echo, editors); the token never has spaces.
    token = readFileSync(file, "utf8").trim();
    if (token === "") throw new Error(`token-file: ${file} is empty`);
  }
  if (token) redact(token);
  return token;
}

function parseTimeout(raw: string | undefined): number {
  if (raw === undefined) return 5000;
  if (!/^[1-9][0-9]{0,8}$/.test(raw)) {
    throw new UsageError("--timeout must be a positive number of milliseconds");
  }
  return Number(raw);
}

function checkReadable(field: string, path: string): void {
  try {
    accessSync(path, constants.R_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? "unreadable";
    throw new Error(`${field}: cannot read ${path} (${code})`);
  }
}

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === "" ? undefined : s;
}
