import { defineCommand } from "citty";

/** `oauth …`: OAuth credentials brokered by secretsd (their access tokens reach the VMs). */
export default defineCommand({
  meta: {
    name: "oauth",
    description: "OAuth credentials: add, list, login, refresh, logout",
  },
  subCommands: {
    add: () => import("./oauth-add.js").then((m) => m.default),
    list: () => import("./oauth-list.js").then((m) => m.default),
    login: () => import("./oauth-login.js").then((m) => m.default),
    refresh: () => import("./oauth-refresh.js").then((m) => m.default),
    logout: () => import("./oauth-logout.js").then((m) => m.default),
  },
});
