import { defineCommand } from "citty";

/** `vm …`: VMs, their tokens and groups. */
export default defineCommand({
  meta: { name: "vm", description: "VMs: add, list, remove, token, revoke, groups" },
  subCommands: {
    add: () => import("./vm-add.js").then((m) => m.default),
    list: () => import("./vm-list.js").then((m) => m.default),
    remove: () => import("./vm-remove.js").then((m) => m.default),
    token: () => import("./vm-token.js").then((m) => m.default),
    revoke: () => import("./vm-revoke.js").then((m) => m.default),
    groups: () => import("./vm-groups.js").then((m) => m.default),
  },
});
