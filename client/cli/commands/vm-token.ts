import { defineClientCommand } from "../command.js";
import { line, note, printJson } from "../output.js";

/** `vm token NAME [--keep]`: issues a new token, revoking the VM's others unless --keep. */
export default defineClientCommand({
  meta: { name: "token", description: "issue a new token for a VM (shown once)" },
  args: {
    name: { type: "positional", required: true, description: "VM name" },
    keep: { type: "boolean", description: "keep the VM's other tokens valid" },
  },
  async run({ args, client, json }) {
    const keep = args.keep === true;
    const res = await client.access.issueVmToken({ name: args.name, keepExisting: keep });
    if (json) printJson({ name: args.name, token: res.token, keptOthers: keep });
    else line(res.token);
    note(
      `new token for vm ${args.name}${keep ? "" : "; its other tokens are revoked"}; it is shown once and cannot be retrieved again`,
    );
  },
});
