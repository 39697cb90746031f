import { defineClientCommand } from "../command.js";
import { confirm, yesArg } from "../confirm.js";
import { line, printJson } from "../output.js";

/**
 * `vm revoke NAME`: revokes every token of a VM; its open streams end at once. Asks first on
 * a terminal.
 */
export default defineClientCommand({
  meta: { name: "revoke", description: "revoke every token of a VM" },
  args: {
    name: { type: "positional", required: true, description: "VM name" },
    yes: yesArg,
  },
  async run({ args, client, json }) {
    await confirm(`revoke every token of vm ${args.name} (its shim loses access now)?`, args.yes);
    const res = await client.access.revokeVmTokens({ name: args.name });
    if (json) printJson({ name: args.name, revoked: res.revoked });
    else line(`revoked ${res.revoked} token${res.revoked === 1 ? "" : "s"} of vm ${args.name}`);
  },
});
