import { defineClientCommand } from "../command.js";
import { confirm, yesArg } from "../confirm.js";
import { line, printJson } from "../output.js";

/** `vm remove NAME`: removes a VM and its tokens (asks first on a terminal). */
export default defineClientCommand({
  meta: { name: "remove", alias: ["rm"], description: "remove a VM and its tokens" },
  args: {
    name: { type: "positional", required: true, description: "VM name" },
    yes: yesArg,
  },
  async run({ args, client, json }) {
    await confirm(`remove vm ${args.name} and revoke its tokens?`, args.yes);
    await client.access.deleteVm({ name: args.name });
    if (json) printJson({ name: args.name, removed: true });
    else line(`removed vm ${args.name}`);
  },
});
