import { defineClientCommand } from "../command.js";
import { redact } from "../errors.js";
import { line, note, out, printJson } from "../output.js";
import { parseCount } from "../parse.js";

/**
 * `get NAME [--version N] [--host-only]`: prints a value exactly as stored. A newline is added
 * only on a terminal, so `$(secretsctl get x)` and pipes get the bytes and nothing else. With
 * --host-only, an oauth credential's refresh token and client secret instead (audited).
 */
export default defineClientCommand({
  meta: { name: "get", description: "print a secret's value" },
  args: {
    name: { type: "positional", required: true, description: "secret name" },
    version: { type: "string", valueHint: "n", description: "this version (default: current)" },
    "host-only": {
      type: "boolean",
      description:
        "an oauth credential's refresh token and client secret, as refresh_token=… and client_secret=… lines (admin only; the read is audited)",
    },
  },
  async run({ args, client, json }) {
    const version = parseCount("--version", args.version) ?? 0;
    const hostOnly = args["host-only"] === true;
    const res = await client.secrets.getSecretValue({
      name: args.name,
      version,
      includeHostOnly: hostOnly,
    });
    if (json) {
      printJson({
        name: res.secret?.name ?? args.name,
        env: res.secret?.env ?? "",
        scope: res.secret?.scope ?? "",
        version: res.version,
        value: res.value,
        ...(hostOnly
          ? { refreshToken: res.refreshToken || null, clientSecret: res.clientSecret || null }
          : {}),
      });
      return;
    }
    if (hostOnly) {
      for (const s of [res.refreshToken, res.clientSecret]) if (s) redact(s);
      if (res.refreshToken) line(`refresh_token=${res.refreshToken}`);
      if (res.clientSecret) line(`client_secret=${res.clientSecret}`);
      if (!res.refreshToken && !res.clientSecret) {
        note(`${args.name} holds no refresh token or client secret`);
      }
      return;
    }
    out(process.stdout.isTTY ? `${res.value}\n` : res.value);
  },
});
