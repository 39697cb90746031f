import { defineCommand } from "citty";

/** `token …`: admin tokens, for admin calls over TCP. */
export default defineCommand({
  meta: { name: "token", description: "admin tokens: create, list, revoke" },
  subCommands: {
    create: () => import("./token-create.js").then((m) => m.default),
    list: () => import("./token-list.js").then((m) => m.default),
    revoke: () => import("./token-revoke.js").then((m) => m.default),
  },
});
