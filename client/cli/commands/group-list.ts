import { defineClientCommand } from "../command.js";
import { ago, printJson, printTable } from "../output.js";
import { groupJson } from "../views.js";

/** `group list`: groups with their VMs and how many secrets are scoped to each. */
export default defineClientCommand({
  meta: { name: "list", alias: ["ls"], description: "list groups" },
  args: {},
  async run({ client, json }) {
    const res = await client.access.listGroups({});
    if (json) {
      printJson({ groups: res.groups.map(groupJson) });
      return;
    }
    printTable(
      ["NAME", "VMS", "SECRETS", "CREATED"],
      res.groups.map((g) => [g.name, g.vms.join(","), String(g.secretCount), ago(g.createdAt)]),
    );
  },
});
