import { defineClientCommand } from "../command.js";
import { printJson, printTable } from "../output.js";
import { teamJson } from "./user-json.js";

/** `team list`: teams with their groups and members. */
export default defineClientCommand({
  meta: { name: "list", alias: ["ls"], description: "list teams, their groups and members" },
  args: {},
  async run({ client, json }) {
    const res = await client.access.listTeams({});
    if (json) {
      printJson({ teams: res.teams.map(teamJson) });
      return;
    }
    printTable(
      ["NAME", "GROUPS", "MEMBERS"],
      res.teams.map((t) => [t.name, t.groups.join(","), t.members.join(",") || "-"]),
    );
  },
});
