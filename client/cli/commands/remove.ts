import { defineClientCommand } from "../command.js";
import { confirm, yesArg } from "../confirm.js";
import { line, printJson } from "../output.js";

/** `remove NAME`: deletes a secret and every version of it (asks first on a terminal). */
export default defineClientCommand({
  meta: { name: "remove", alias: ["rm"], description: "delete a secret and all its versions" },
  args: {
    name: { type: "positional", required: true, description: "secret name" },
    yes: yesArg,
  },
  async run({ args, client, json }) {
    await confirm(`remove secret ${args.name} and all its versions?`, args.yes);
    const res = await client.secrets.deleteSecret({ name: args.name });
    if (json) printJson({ name: args.name, removed: true, revision: res.revision });
    else line(`removed ${args.name}`);
  },
});
