import { defineClientCommand } from "../command.js";
import { line, printJson } from "../output.js";

/** `vm remove NAME`: removes a VM and its tokens. */
export default defineClientCommand({
  meta: { name: "remove", alias: ["rm"], description: "remove a VM and its tokens" },
  args: {
    name: { type: "positional", required: true, description: "VM name" },
  },
  async run({ args, client, json }) {
    await client.access.deleteVm({ name: args.name });
    if (json) printJson({ name: args.name, removed: true });
    else line(`removed vm ${args.name}`);
  },
});
