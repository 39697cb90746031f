import { defineClientCommand } from "../command.js";
import { line, printJson } from "../output.js";

/** `token revoke NAME`: revokes an admin token. */
export default defineClientCommand({
  meta: { name: "revoke", description: "revoke an admin token" },
  args: {
    name: { type: "positional", required: true, description: "the token's name" },
  },
  async run({ args, client, json }) {
    await client.access.revokeAdminToken({ name: args.name });
    if (json) printJson({ name: args.name, revoked: true });
    else line(`revoked admin token ${args.name}`);
  },
});
