import { defineClientCommand } from "../command.js";
import { line, printJson } from "../output.js";
import { parseRole, userJson } from "./user-json.js";

/** `user role NAME ROLE`: changes a user's role, from its next call. */
export default defineClientCommand({
  meta: { name: "role", description: "change a user's role (admin, operator, viewer)" },
  args: {
    name: { type: "positional", required: true, description: "user name" },
    role: { type: "positional", required: true, description: "admin, operator or viewer" },
  },
  async run({ args, client, json }) {
    const role = parseRole("ROLE", args.role);
    const res = await client.access.setUserRole({ name: args.name, role });
    if (json) printJson({ user: userJson(res.user) });
    else line(`user ${args.name} is now ${args.role}`);
  },
});
