import { defineClientCommand } from "../command.js";
import { line, printJson } from "../output.js";

/** `remove NAME`: deletes a secret and every version of it. */
export default defineClientCommand({
  meta: { name: "remove", alias: ["rm"], description: "delete a secret and all its versions" },
  args: {
    name: { type: "positional", required: true, description: "secret name" },
  },
  async run({ args, client, json }) {
    const res = await client.secrets.deleteSecret({ name: args.name });
    if (json) printJson({ name: args.name, removed: true, revision: res.revision });
    else line(`removed ${args.name}`);
  },
});
