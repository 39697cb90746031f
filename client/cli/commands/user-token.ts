import { defineClientCommand } from "../command.js";
import { redact } from "../errors.js";
import { line, note, printJson } from "../output.js";
import { userJson } from "./user-json.js";

/**
 * `user token NAME`: issues the user's token and prints it once, alone on stdout; the old
 * one stops working and the streams it opened end.
 */
export default defineClientCommand({
  meta: { name: "token", description: "issue a user's token (shown once; replaces the old one)" },
  args: {
    name: { type: "positional", required: true, description: "user name" },
  },
  async run({ args, client, json }) {
    const res = await client.access.issueUserToken({ name: args.name });
    redact(res.token);
    if (json) printJson({ user: userJson(res.user), token: res.token });
    else line(res.token);
    note(`token for user ${args.name} issued; it is shown once and any older one no longer works`);
  },
});
