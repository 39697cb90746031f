import { defineClientCommand } from "../command.js";
import { UsageError } from "../errors.js";
import { line, printJson } from "../output.js";
import { teamJson } from "./user-json.js";

/** `team members NAME --add U --remove U`: changes who is in a team. */
export default defineClientCommand({
  meta: { name: "members", description: "add users to a team or remove them" },
  args: {
    name: { type: "positional", required: true, description: "team name" },
    add: { type: "string", description: "a user to add; repeatable" },
    remove: { type: "string", description: "a user to remove; repeatable" },
  },
  repeatable: ["add", "remove"],
  async run({ args, client, json, all }) {
    const add = all("add");
    const remove = all("remove");
    if (add.length === 0 && remove.length === 0) {
      throw new UsageError("nothing to change: give --add USER or --remove USER");
    }
    const res = await client.access.setTeamMembers({ name: args.name, add, remove });
    if (json) printJson({ team: teamJson(res.team) });
    else line(`team ${args.name} members: ${res.team?.members.join(", ") || "(none)"}`);
  },
});
