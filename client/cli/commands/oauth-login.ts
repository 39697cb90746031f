import type {
  StartOAuthLoginResponse,
  WaitOAuthLoginResponse,
} from "../../../proto/gen/vmauth/v1/oauth_pb.js";
import { OauthLoginMethod, OauthLoginState } from "../../../proto/gen/vmauth/v1/oauth_pb.js";
import type { VmAuthClient } from "../../index.js";
import { defineClientCommand } from "../command.js";
import { CancelledError, UsageError } from "../errors.js";
import { ago, iso, line, printJson } from "../output.js";

/** How long one WaitOAuthLogin call waits (the server's limit is 60 s), and its deadline. */
const WAIT_MS = 30_000;
const WAIT_DEADLINE_MS = WAIT_MS + 5_000;

/**
 * `oauth login NAME [--device|--browser] [--no-wait]`: starts a login in secretsd, prints on
 * stderr what the user must do, then waits for it to end. Ctrl-C cancels the login (exit 130).
 */
export default defineClientCommand({
  meta: {
    name: "login",
    description: "log an OAuth credential in: a device code, or a browser on this host",
  },
  args: {
    name: { type: "positional", required: true, description: "oauth credential name" },
    device: {
      type: "boolean",
      description: "device grant: open a URL on any device and enter a code",
    },
    browser: {
      type: "boolean",
      description: "authorization code grant: open a URL in a browser on this host",
    },
    wait: {
      type: "boolean",
      default: true,
      description: "wait until the login ends (the default)",
      negativeDescription: "print the prompt and the login id, and return",
    },
  },
  async run({ args, client, json }) {
    if (args.device && args.browser) throw new UsageError("give --device or --browser, not both");
    const method = args.device
      ? OauthLoginMethod.DEVICE
      : args.browser
        ? OauthLoginMethod.CODE
        : OauthLoginMethod.UNSPECIFIED;
    const start = await client.oauth.startOAuthLogin(
      { name: args.name, method },
      // The device grant asks the provider for a code before the daemon answers.
      args.timeout === undefined ? { deadlineMs: 30_000 } : {},
    );
    if (args.wait === false) {
      process.stderr.write(prompt(start, false));
      if (json) printJson(startJson(args.name, start));
      else line(start.loginId);
      return;
    }
    // Ctrl-C is caught from before the prompt shows: a user who reacts to it is always heard.
    const sigint = catchSigint();
    let end: WaitOAuthLoginResponse;
    try {
      process.stderr.write(prompt(start, true));
      end = await waitForLogin(client, start.loginId, sigint.state);
    } finally {
      sigint.dispose();
    }
    if (end.state === OauthLoginState.FAILED) {
      throw new Error(`login of ${args.name} failed: ${end.error || "no reason given"}`);
    }
    if (end.state !== OauthLoginState.DONE) {
      throw new Error(`login of ${args.name} was cancelled${end.error ? `: ${end.error}` : ""}`);
    }
    if (json) {
      printJson({ name: args.name, state: "done", version: end.version, revision: end.revision });
    } else {
      line(`logged in ${args.name}: access token version ${end.version}`);
    }
  },
});

// --- internal ---

/** What the user must do, for stderr (stdout stays for the result). */
function prompt(s: StartOAuthLoginResponse, waiting: boolean): string {
  const lines =
    s.method === OauthLoginMethod.CODE
      ? ["Open this URL in a browser on this host:", `  ${s.authorizationUrl}`]
      : [
          `Open ${s.verificationUri} and enter code ${s.userCode}`,
          ...(s.verificationUriComplete
            ? [`  (or open ${s.verificationUriComplete}, which carries the code)`]
            : []),
        ];
  const expires = iso(s.expiresAt) === null ? "" : `the login expires ${ago(s.expiresAt)}`;
  if (waiting)
    lines.push(`Waiting for the login (${expires ? `${expires}; ` : ""}Ctrl-C cancels)…`);
  else if (expires) lines.push(`Not waiting: ${expires}; secretsctl oauth list shows how it ended`);
  return `${lines.join("\n")}\n`;
}

function startJson(name: string, s: StartOAuthLoginResponse) {
  return {
    name,
    loginId: s.loginId,
    method: s.method === OauthLoginMethod.CODE ? "browser" : "device",
    verificationUri: s.verificationUri,
    verificationUriComplete: s.verificationUriComplete,
    userCode: s.userCode,
    authorizationUrl: s.authorizationUrl,
    expiresAt: iso(s.expiresAt),
  };
}

interface SigintState {
  interrupted: boolean;
  /** The call in flight, abandoned on SIGINT. */
  current: AbortController | undefined;
}

function catchSigint(): { state: SigintState; dispose(): void } {
  const state: SigintState = { interrupted: false, current: undefined };
  const onSigint = () => {
    state.interrupted = true;
    state.current?.abort();
  };
  process.on("SIGINT", onSigint);
  return { state, dispose: () => process.off("SIGINT", onSigint) };
}

/**
 * Waits in WaitOAuthLogin calls of 30 s until the login is no longer pending. Once SIGINT
 * came, the call in flight is abandoned, the login cancelled in secretsd, and CancelledError
 * thrown.
 */
async function waitForLogin(
  client: VmAuthClient,
  loginId: string,
  sigint: SigintState,
): Promise<WaitOAuthLoginResponse> {
  for (;;) {
    let res: WaitOAuthLoginResponse | undefined;
    if (!sigint.interrupted) {
      // One controller per call: listeners on a shared signal would pile up over 10 minutes.
      sigint.current = new AbortController();
      try {
        res = await client.oauth.waitOAuthLogin(
          { loginId, waitMs: WAIT_MS },
          { deadlineMs: WAIT_DEADLINE_MS, signal: sigint.current.signal },
        );
      } catch (err) {
        if (!sigint.interrupted) throw err;
      }
    }
    if (sigint.interrupted || !res) {
      await client.oauth.cancelOAuthLogin({ loginId }).catch(() => undefined);
      throw new CancelledError("interrupted: the login was cancelled");
    }
    if (res.state !== OauthLoginState.PENDING) return res;
  }
}
