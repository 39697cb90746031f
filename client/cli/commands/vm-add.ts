import { defineClientCommand } from "../command.js";
import { line, note, printJson } from "../output.js";
import { vmJson } from "../views.js";

/**
 * `vm add NAME [--group G]…`: registers a VM and prints its first token, once, alone on
 * stdout (so `TOKEN=$(secretsctl vm add web1)` works); the reminder goes to stderr.
 */
export default defineClientCommand({
  meta: { name: "add", description: "register a VM and print its token (shown once)" },
  args: {
    name: {
      type: "positional",
      required: true,
      description: "VM name: ^[a-z0-9][a-z0-9_.-]{0,62}$",
    },
    group: { type: "string", description: "a group it joins; repeatable" },
  },
  repeatable: ["group"],
  async run({ args, client, json, all }) {
    const res = await client.access.createVm({ name: args.name, groups: all("group") });
    if (json) printJson({ vm: vmJson(res.vm), token: res.token });
    else line(res.token);
    note(`vm ${args.name} added; its token is shown once and cannot be retrieved again`);
  },
});
