import { defineClientCommand } from "../command.js";
import { UsageError } from "../errors.js";
import { line, printJson } from "../output.js";
import { vmJson } from "../views.js";

/** `vm groups NAME --add G --remove G`: changes a VM's group membership. */
export default defineClientCommand({
  meta: { name: "groups", description: "add a VM to groups or remove it from them" },
  args: {
    name: { type: "positional", required: true, description: "VM name" },
    add: { type: "string", description: "a group to join; repeatable" },
    remove: { type: "string", description: "a group to leave; repeatable" },
  },
  repeatable: ["add", "remove"],
  async run({ args, client, json, all }) {
    const addGroups = all("add");
    const removeGroups = all("remove");
    if (addGroups.length === 0 && removeGroups.length === 0) {
      throw new UsageError("nothing to change: give --add GROUP or --remove GROUP");
    }
    const res = await client.access.updateVm({ name: args.name, addGroups, removeGroups });
    if (json) printJson({ vm: vmJson(res.vm) });
    else line(`vm ${args.name} groups: ${res.vm?.groups.join(", ") || "(none)"}`);
  },
});
