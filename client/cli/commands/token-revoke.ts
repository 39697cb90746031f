import { defineClientCommand } from "../command.js";
import { confirm, yesArg } from "../confirm.js";
import { line, printJson } from "../output.js";

/** `token revoke NAME`: revokes an admin token (asks first on a terminal). */
export default defineClientCommand({
  meta: { name: "revoke", description: "revoke an admin token" },
  args: {
    name: { type: "positional", required: true, description: "the token's name" },
    yes: yesArg,
  },
  async run({ args, client, json }) {
    await confirm(`revoke admin token ${args.name}?`, args.yes);
    await client.access.revokeAdminToken({ name: args.name });
    if (json) printJson({ name: args.name, revoked: true });
    else line(`revoked admin token ${args.name}`);
  },
});
