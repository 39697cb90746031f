import { defineClientCommand } from "../command.js";
import { line, printJson } from "../output.js";
import { teamJson } from "./user-json.js";

/** `team add NAME --group G…`: a team bound to groups (at least one). */
export default defineClientCommand({
  meta: { name: "add", description: "add a team bound to groups" },
  args: {
    name: {
      type: "positional",
      required: true,
      description: "team name: ^[a-z0-9][a-z0-9_.-]{0,62}$",
    },
    group: {
      type: "string",
      description: "a group the team is bound to; repeatable, at least one",
    },
  },
  repeatable: ["group"],
  async run({ args, client, json, all }) {
    const res = await client.access.createTeam({ name: args.name, groups: all("group") });
    if (json) printJson({ team: teamJson(res.team) });
    else line(`added team ${args.name} (groups ${res.team?.groups.join(", ")})`);
  },
});
