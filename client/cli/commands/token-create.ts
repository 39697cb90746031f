import { defineClientCommand } from "../command.js";
import { line, note, printJson } from "../output.js";
import { adminTokenJson } from "../views.js";

/** `token create NAME`: issues an admin token and prints it once, alone on stdout. */
export default defineClientCommand({
  meta: { name: "create", description: "issue an admin token (shown once)" },
  args: {
    name: { type: "positional", required: true, description: "a name for the token" },
  },
  async run({ args, client, json }) {
    const res = await client.access.createAdminToken({ name: args.name });
    if (json) printJson({ adminToken: adminTokenJson(res.adminToken), token: res.token });
    else line(res.token);
    note(`admin token ${args.name} created; it is shown once and cannot be retrieved again`);
  },
});
