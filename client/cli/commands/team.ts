import { defineCommand } from "citty";

/** `team …`: teams bound to groups; a member sees and manages only those (issue #13). */
export default defineCommand({
  meta: { name: "team", description: "teams: add, list, remove, members" },
  subCommands: {
    add: () => import("./team-add.js").then((m) => m.default),
    list: () => import("./team-list.js").then((m) => m.default),
    remove: () => import("./team-remove.js").then((m) => m.default),
    members: () => import("./team-members.js").then((m) => m.default),
  },
});
