import { defineClientCommand } from "../command.js";
import { confirm, yesArg } from "../confirm.js";
import { line, printJson } from "../output.js";

/**
 * `group remove NAME`: deletes a group; refused while secrets are scoped to it. Asks first on
 * a terminal.
 */
export default defineClientCommand({
  meta: { name: "remove", alias: ["rm"], description: "delete a group" },
  args: {
    name: { type: "positional", required: true, description: "group name" },
    yes: yesArg,
  },
  async run({ args, client, json }) {
    await confirm(`remove group ${args.name}?`, args.yes);
    await client.access.deleteGroup({ name: args.name });
    if (json) printJson({ name: args.name, removed: true });
    else line(`removed group ${args.name}`);
  },
});
