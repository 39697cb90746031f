import { defineCommand } from "citty";

/** `tls …`: the CA and server certificate secretsd serves TCP with (local; no daemon). */
export default defineCommand({
  meta: {
    name: "tls",
    description: "TLS for secretsd: make a CA and server certificate, show them",
  },
  subCommands: {
    init: () => import("./tls-init.js").then((m) => m.default),
    show: () => import("./tls-show.js").then((m) => m.default),
  },
});
