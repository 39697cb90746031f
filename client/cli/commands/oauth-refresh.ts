import { defineClientCommand } from "../command.js";
import { ago, iso, line, printJson } from "../output.js";

/** `oauth refresh NAME`: a new access token now, on its way to every VM that sees it. */
export default defineClientCommand({
  meta: { name: "refresh", description: "refresh an OAuth credential's access token now" },
  args: {
    name: { type: "positional", required: true, description: "oauth credential name" },
  },
  async run({ args, client, json }) {
    const res = await client.oauth.refreshOAuth(
      { name: args.name },
      // The daemon answers once the provider has; its own limit per request is 15 s.
      args.timeout === undefined ? { deadlineMs: 30_000 } : {},
    );
    if (json) {
      printJson({
        name: args.name,
        version: res.version,
        expiresAt: iso(res.expiresAt),
        revision: res.revision,
      });
      return;
    }
    const expires =
      iso(res.expiresAt) === null ? "no expiry given" : `expires ${ago(res.expiresAt)}`;
    line(`refreshed ${args.name}: version ${res.version}, ${expires}`);
  },
});
