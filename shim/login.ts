/**
 * `vm-auth-shim login NAME` and `vm-auth-shim refresh NAME`: a person in the VM logs in an
 * OAuth credential the host brokers, or asks for a fresh access token, with the shim's own VM
 * token. Login is the device grant only (the VM has no browser the host could redirect to):
 * the host polls the provider; the shim prints the URL and code and waits for the end. The
 * access token itself never comes here: it arrives with the next env update, like any value.
 */
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { ClientOptions, VmAuthClient } from "../client/index.js";
import { createClient, isClientError } from "../client/index.js";
import { OauthLoginMethod, OauthLoginState } from "../proto/gen/vmauth/v1/oauth_pb.js";
import type { ShimConfig } from "./config.js";
import { readTokenFile } from "./token-file.js";

/** How long one WaitOAuthLogin call waits (the server's limit is 60 s), and its deadline. */
const WAIT_MS = 30_000;
const WAIT_DEADLINE_MS = WAIT_MS + 5_000;
/** Calls that reach the provider through the host (its own limit per request is 15 s). */
const PROVIDER_DEADLINE_MS = 30_000;

/** Where the commands write and how they connect (tests replace them). */
export interface OAuthCommandIo {
  out(text: string): void;
  /** @default createClient */
  connect?: (opts: ClientOptions) => VmAuthClient;
}

const stdio: OAuthCommandIo = { out: (t) => void process.stdout.write(t) };

/**
 * Starts a device login for `name`, prints what the user must do, waits until it ends.
 * @returns 0 once the host holds the tokens
 * @throws Error (one line, never a token) when the login fails or the call does
 */
export async function login(cfg: ShimConfig, name: string, io = stdio): Promise<number> {
  return withClient(cfg, io, async (client) => {
    const start = await client.oauth.startOAuthLogin(
      { name, method: OauthLoginMethod.DEVICE },
      { deadlineMs: PROVIDER_DEADLINE_MS },
    );
    const stop = () => {
      // A VM token cannot cancel a login: the host goes on polling until it ends or expires.
      process.stderr.write(
        "vm-auth-shim: stopped waiting; the login stays open on the host until it ends or expires\n",
      );
      process.exit(130);
    };
    // Caught from before the prompt shows: a user who reacts to it is always heard.
    process.once("SIGINT", stop);
    try {
      const complete = start.verificationUriComplete
        ? `  (or open ${start.verificationUriComplete}, which carries the code)\n`
        : "";
      io.out(`Open ${start.verificationUri} and enter code ${start.userCode}\n${complete}`);
      io.out("Waiting for the login to end…\n");
      for (;;) {
        const res = await client.oauth.waitOAuthLogin(
          { loginId: start.loginId, waitMs: WAIT_MS },
          { deadlineMs: WAIT_DEADLINE_MS },
        );
        if (res.state === OauthLoginState.PENDING) continue;
        if (res.state === OauthLoginState.DONE) {
          io.out("done: the access token will arrive with the next env update\n");
          return 0;
        }
        const how = res.state === OauthLoginState.FAILED ? "failed" : "was cancelled";
        throw new Error(`login of ${name} ${how}${res.error ? `: ${res.error}` : ""}`);
      }
    } finally {
      process.off("SIGINT", stop);
    }
  });
}

/**
 * Asks the host to refresh `name` now (rate limited per VM).
 * @returns 0 once the new access token is on its way
 */
export async function refresh(cfg: ShimConfig, name: string, io = stdio): Promise<number> {
  return withClient(cfg, io, async (client) => {
    const res = await client.oauth.refreshOAuth({ name }, { deadlineMs: PROVIDER_DEADLINE_MS });
    const expires = res.expiresAt
      ? `expires at ${timestampDate(res.expiresAt).toISOString()}`
      : "no expiry given";
    io.out(
      `refreshed ${name}: version ${res.version}, ${expires}; it arrives with the next env update\n`,
    );
    return 0;
  });
}

// --- internal ---

async function withClient(
  cfg: ShimConfig,
  io: OAuthCommandIo,
  body: (client: VmAuthClient) => Promise<number>,
): Promise<number> {
  const client = (io.connect ?? createClient)({
    server: cfg.server,
    token: readTokenFile(cfg.tokenFile),
    tls: typeof cfg.tls === "object" ? cfg.tls.ca : cfg.tls,
  });
  try {
    return await body(client);
  } catch (err) {
    throw new Error(describe(err, cfg.server));
  } finally {
    client.close();
  }
}

/** One line naming what failed; the server's messages never hold a token. */
function describe(err: unknown, server: string): string {
  const text = err instanceof Error ? err.message : String(err);
  if (isClientError(err) && err.code === "unavailable") {
    return `cannot reach secretsd at ${server}: ${oneLine(text)}`;
  }
  if (isClientError(err) && err.code === "deadline_exceeded") {
    return `secretsd at ${server} did not answer in time`;
  }
  return oneLine(text);
}

function oneLine(text: string): string {
  return text.replace(/\s*[\r\n]+\s*/g, " ").trim();
}
