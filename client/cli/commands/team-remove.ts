import { defineClientCommand } from "../command.js";
import { confirm, yesArg } from "../confirm.js";
import { line, printJson } from "../output.js";

/** `team remove NAME`: unbinds a team from its groups and its members (asks first). */
export default defineClientCommand({
  meta: { name: "remove", alias: ["rm"], description: "remove a team" },
  args: {
    name: { type: "positional", required: true, description: "team name" },
    yes: yesArg,
  },
  async run({ args, client, json }) {
    await confirm(`remove team ${args.name}?`, args.yes);
    await client.access.deleteTeam({ name: args.name });
    if (json) printJson({ name: args.name, removed: true });
    else line(`removed team ${args.name}`);
  },
});
