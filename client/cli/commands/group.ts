import { defineCommand } from "citty";

/** `group …`: groups of VMs that secrets can be scoped to. */
export default defineCommand({
  meta: { name: "group", description: "groups: add, list, remove" },
  subCommands: {
    add: () => import("./group-add.js").then((m) => m.default),
    list: () => import("./group-list.js").then((m) => m.default),
    remove: () => import("./group-remove.js").then((m) => m.default),
  },
});
