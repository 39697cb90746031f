import { defineClientCommand } from "../command.js";
import { ago, printJson, printTable } from "../output.js";
import { roleName, userJson } from "./user-json.js";

/** `user list`: users with role, teams and token id; admin tokens are users of role admin. */
export default defineClientCommand({
  meta: { name: "list", alias: ["ls"], description: "list users (never their tokens)" },
  args: {},
  async run({ client, json }) {
    const res = await client.access.listUsers({});
    if (json) {
      printJson({ users: res.users.map(userJson) });
      return;
    }
    printTable(
      ["NAME", "ROLE", "TEAMS", "TOKEN", "CREATED"],
      res.users.map((u) => [
        u.name,
        roleName(u.role),
        u.teams.join(",") || "-",
        u.tokenId || "-",
        ago(u.createdAt),
      ]),
    );
  },
});
