import { defineClientCommand } from "../command.js";
import { ago, printJson, printTable } from "../output.js";
import { parseCount } from "../parse.js";
import { auditJson } from "../views.js";

/** `audit`: the newest audit events, oldest first. Events never hold a value or token. */
export default defineClientCommand({
  meta: { name: "audit", description: "show the audit log" },
  args: {
    limit: { type: "string", valueHint: "n", description: "at most N events (default 100)" },
    secret: { type: "string", description: "only events naming this secret" },
    vm: { type: "string", description: "only events naming this VM" },
    action: { type: "string", description: "only this action, e.g. secret.create" },
  },
  async run({ args, client, json }) {
    const res = await client.system.listAuditEvents({
      limit: parseCount("--limit", args.limit) ?? 0,
      secret: args.secret ?? "",
      vm: args.vm ?? "",
      action: args.action ?? "",
    });
    if (json) {
      printJson({ events: res.events.map(auditJson) });
      return;
    }
    printTable(
      ["TIME", "ACTOR", "ACTION", "SECRET", "VM", "VERSION", "RESULT"],
      res.events.map((e) => [
        ago(e.time),
        e.actor,
        e.action,
        e.secret,
        e.vm,
        e.version === 0 ? "" : String(e.version),
        e.result,
      ]),
    );
  },
});
