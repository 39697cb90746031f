import { defineClientCommand } from "../command.js";
import { line, printJson } from "../output.js";
import { groupJson } from "../views.js";

/** `group add NAME`: creates a group. */
export default defineClientCommand({
  meta: { name: "add", description: "create a group" },
  args: {
    name: {
      type: "positional",
      required: true,
      description: "group name: ^[a-z0-9][a-z0-9_.-]{0,62}$",
    },
  },
  async run({ args, client, json }) {
    const res = await client.access.createGroup({ name: args.name });
    if (json) printJson({ group: groupJson(res.group) });
    else line(`created group ${res.group?.name ?? args.name}`);
  },
});
