import { defineClientCommand } from "../command.js";
import { line, printJson } from "../output.js";
import { parseRole, userJson } from "./user-json.js";

/** `user add NAME --role R [--team T]…`: a user without a token (`user token NAME` issues one). */
export default defineClientCommand({
  meta: { name: "add", description: "add a user with a role (no token yet: see user token)" },
  args: {
    name: {
      type: "positional",
      required: true,
      description: "user name: ^[a-z0-9][a-z0-9_.-]{0,62}$",
    },
    role: { type: "string", description: "admin, operator or viewer; required" },
    team: { type: "string", description: "a team the user joins; repeatable" },
  },
  repeatable: ["team"],
  async run({ args, client, json, all }) {
    const role = parseRole("--role", args.role);
    const res = await client.access.createUser({ name: args.name, role, teams: all("team") });
    if (json) printJson({ user: userJson(res.user) });
    else line(`added user ${args.name} (${args.role})`);
  },
});
