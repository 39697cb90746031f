import { defineClientCommand } from "../command.js";
import { confirm, yesArg } from "../confirm.js";
import { line, printJson } from "../output.js";

/** `user remove NAME`: deletes a user and its token (asks first on a terminal). */
export default defineClientCommand({
  meta: { name: "remove", alias: ["rm"], description: "remove a user and its token" },
  args: {
    name: { type: "positional", required: true, description: "user name" },
    yes: yesArg,
  },
  async run({ args, client, json }) {
    await confirm(`remove user ${args.name} and its token?`, args.yes);
    await client.access.deleteUser({ name: args.name });
    if (json) printJson({ name: args.name, removed: true });
    else line(`removed user ${args.name}`);
  },
});
