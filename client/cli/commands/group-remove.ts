import { defineClientCommand } from "../command.js";
import { line, printJson } from "../output.js";

/** `group remove NAME`: deletes a group; refused while secrets are scoped to it. */
export default defineClientCommand({
  meta: { name: "remove", alias: ["rm"], description: "delete a group" },
  args: {
    name: { type: "positional", required: true, description: "group name" },
  },
  async run({ args, client, json }) {
    await client.access.deleteGroup({ name: args.name });
    if (json) printJson({ name: args.name, removed: true });
    else line(`removed group ${args.name}`);
  },
});
