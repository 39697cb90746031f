import { OauthState } from "../../../proto/gen/vmauth/v1/oauth_pb.js";
import { defineClientCommand } from "../command.js";
import { redact, UsageError } from "../errors.js";
import { readValue } from "../input.js";
import { line, printJson } from "../output.js";
import { parseLabels } from "../parse.js";
import { oauthJson, oauthStateText } from "../views.js";

/** The presets secretsd knows (proto/vmauth/v1/oauth.proto, AddOAuthRequest.preset). */
const PRESETS = ["github", "google", "microsoft", "gitlab", "oidc"];

/**
 * `oauth add NAME --preset P --client-id ID`: registers an OAuth credential. The client
 * secret and a refresh token to import are never flag values (shell history, `ps`):
 * `--client-secret` and `--refresh-token` ask for them on a prompt without echo, or read
 * stdin when it is not a terminal; with both, stdin holds two lines, client secret first.
 */
export default defineClientCommand({
  meta: { name: "add", description: "register an OAuth credential (its access token is a secret)" },
  args: {
    name: {
      type: "positional",
      required: true,
      description: "secret name: ^[a-z][a-z0-9_.-]{0,62}$",
    },
    preset: {
      type: "string",
      valueHint: "github|google|microsoft|gitlab|oidc",
      description: "the provider (oidc needs --issuer)",
    },
    issuer: {
      type: "string",
      valueHint: "url",
      description: "issuer for oidc and self-hosted GitLab (discovery runs against it)",
    },
    tenant: { type: "string", description: "Microsoft tenant (default common)" },
    "client-id": { type: "string", valueHint: "id", description: "the OAuth client (app) id" },
    "client-secret": {
      type: "boolean",
      description:
        "the client is confidential: read its secret from a prompt without echo, or stdin (never a flag value)",
    },
    "oauth-scope": {
      type: "string",
      valueHint: "s",
      description:
        "an OAuth scope to request; repeatable, or several in one quoted value (default: the preset's). --scope is who sees the secret",
    },
    env: {
      type: "string",
      description: "env var of the access token (default: the preset's, e.g. GITHUB_TOKEN)",
    },
    "expires-env": {
      type: "string",
      valueHint: "var",
      description: "env var for the access token's expiry, ISO 8601 UTC (default: none)",
    },
    scope: {
      type: "string",
      valueHint: "global|group:G|vm:V",
      description: "who sees the access token (default global)",
    },
    description: { type: "string", description: "free text" },
    label: { type: "string", valueHint: "k=v", description: "a label; repeatable" },
    "refresh-token": {
      type: "boolean",
      description:
        "import an existing refresh token, read from a prompt without echo or stdin; with --client-secret stdin holds two lines, client secret first",
    },
    "token-endpoint": {
      type: "string",
      valueHint: "url",
      description: "explicit token endpoint (no discovery)",
    },
    "authorization-endpoint": {
      type: "string",
      valueHint: "url",
      description: "explicit authorization endpoint",
    },
    "device-endpoint": {
      type: "string",
      valueHint: "url",
      description: "explicit device authorization endpoint",
    },
    "revocation-endpoint": {
      type: "string",
      valueHint: "url",
      description: "explicit revocation endpoint",
    },
    "allow-sensitive-env": {
      type: "boolean",
      description: "allow an env var that changes how programs run (PATH, LD_*, NODE_OPTIONS, …)",
    },
  },
  repeatable: ["label", "oauth-scope"],
  async run({ args, client, json, all }) {
    refuseSecretOnCommandLine(process.argv);
    const labels = parseLabels(all("label"));
    const preset = args.preset ?? "";
    // Checked before any prompt: a request that can only fail should not ask for secrets.
    if (!PRESETS.includes(preset)) {
      const given = preset === "" ? "is required" : `'${preset.slice(0, 40)}' is unknown`;
      throw new Error(`preset: ${given} (--preset ${PRESETS.join("|")})`);
    }
    if (!args["client-id"]) throw new Error("client_id: is required (--client-id ID)");
    const scopes = all("oauth-scope").flatMap((s) => s.split(/\s+/).filter((x) => x !== ""));
    const { clientSecret, refreshToken } = await readSecrets(
      args.name,
      args["client-secret"] === true,
      args["refresh-token"] === true,
    );
    const res = await client.oauth.addOAuth(
      {
        name: args.name,
        preset,
        issuer: args.issuer ?? "",
        tenant: args.tenant ?? "",
        clientId: args["client-id"],
        clientSecret,
        scopes,
        env: args.env ?? "",
        expiresEnv: args["expires-env"] ?? "",
        scope: args.scope ?? "",
        description: args.description ?? "",
        labels,
        refreshToken,
        endpoints: {
          token: args["token-endpoint"] ?? "",
          authorization: args["authorization-endpoint"] ?? "",
          deviceAuthorization: args["device-endpoint"] ?? "",
          revocation: args["revocation-endpoint"] ?? "",
        },
        allowSensitiveEnv: args["allow-sensitive-env"] === true,
      },
      // Discovery and the first refresh of an imported token reach the provider.
      args.timeout === undefined ? { deadlineMs: 30_000 } : {},
    );
    const c = res.credential;
    if (json) {
      printJson({ credential: oauthJson(c), revision: res.revision });
      return;
    }
    const name = c?.name ?? args.name;
    const state = oauthStateText(c?.state ?? OauthState.UNSPECIFIED);
    const hint = c?.state === OauthState.NEEDS_LOGIN ? ` (run secretsctl oauth login ${name})` : "";
    line(`added ${name}: ${c?.env} at ${c?.scope}, state ${state}${hint}`);
  },
});

// --- internal ---

/**
 * The client secret and refresh token asked for: each from its own prompt on a terminal;
 * from stdin otherwise, where both together are two lines, client secret first.
 */
async function readSecrets(
  name: string,
  wantSecret: boolean,
  wantRefresh: boolean,
): Promise<{ clientSecret: string; refreshToken: string }> {
  const secretLabel = `Client secret for ${name}`;
  const refreshLabel = `Refresh token for ${name}`;
  if (wantSecret && wantRefresh && !process.stdin.isTTY) {
    const lines = (await readValue(undefined, secretLabel)).split(/\r?\n/);
    if (lines.length !== 2) {
      throw new UsageError(
        "--client-secret with --refresh-token reads two lines from stdin: the client secret, then the refresh token",
      );
    }
    const [clientSecret = "", refreshToken = ""] = lines;
    redact(clientSecret);
    redact(refreshToken);
    return {
      clientSecret: nonEmpty("client_secret", clientSecret),
      refreshToken: nonEmpty("refresh_token", refreshToken),
    };
  }
  const clientSecret = wantSecret
    ? nonEmpty("client_secret", await readValue(undefined, secretLabel))
    : "";
  const refreshToken = wantRefresh
    ? nonEmpty("refresh_token", await readValue(undefined, refreshLabel))
    : "";
  return { clientSecret, refreshToken };
}

/**
 * `--client-secret=VALUE` would otherwise pass as a bare boolean (citty drops the value) and
 * the value, already in shell history, would be ignored without a word.
 */
function refuseSecretOnCommandLine(argv: readonly string[]): void {
  const end = argv.indexOf("--");
  for (const tok of end === -1 ? argv : argv.slice(0, end)) {
    const m = /^--(client-secret|clientSecret|refresh-token|refreshToken)=/.exec(tok);
    if (m) {
      throw new UsageError(
        `--${m[1]} takes no value: the secret is read from a prompt without echo or stdin, never the command line`,
      );
    }
  }
}

function nonEmpty(field: string, value: string): string {
  if (value === "") throw new Error(`${field}: is empty (nothing was read)`);
  return value;
}
