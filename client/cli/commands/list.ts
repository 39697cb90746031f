import { defineClientCommand } from "../command.js";
import { expiryCell } from "../expires.js";
import { ago, MASK, printJson, printTable } from "../output.js";
import { secretJson } from "../views.js";

/** `list`: secrets' metadata. Values are never fetched, so they cannot be shown by mistake. */
export default defineClientCommand({
  meta: { name: "list", alias: ["ls"], description: "list secrets (values masked, never fetched)" },
  args: {
    scope: { type: "string", valueHint: "global|group:G|vm:V", description: "only this scope" },
  },
  async run({ args, client, json }) {
    const res = await client.secrets.listSecrets({ scope: args.scope ?? "" });
    if (json) {
      printJson({ secrets: res.secrets.map(secretJson), revision: res.revision });
      return;
    }
    const now = Date.now();
    printTable(
      ["NAME", "ENV", "VALUE", "SCOPE", "VERSION", "UPDATED", "EXPIRES"],
      res.secrets.map((s) => [
        s.name,
        s.env,
        MASK,
        s.scope,
        `${s.currentVersion}/${s.versionCount}`,
        ago(s.updatedAt),
        expiryCell(s.expiresAt, now),
      ]),
    );
  },
});
