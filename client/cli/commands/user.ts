import { defineCommand } from "citty";

/** `user …`: people and programs calling over TCP, each with a role and teams (issue #13). */
export default defineCommand({
  meta: { name: "user", description: "users: add, list, remove, token, role" },
  subCommands: {
    add: () => import("./user-add.js").then((m) => m.default),
    list: () => import("./user-list.js").then((m) => m.default),
    remove: () => import("./user-remove.js").then((m) => m.default),
    token: () => import("./user-token.js").then((m) => m.default),
    role: () => import("./user-role.js").then((m) => m.default),
  },
});
