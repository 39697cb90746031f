import { defineClientCommand } from "../command.js";
import { ago, printJson, printTable } from "../output.js";
import { adminTokenJson } from "../views.js";

/** `token list`: admin tokens by name and public id; never the tokens. */
export default defineClientCommand({
  meta: { name: "list", alias: ["ls"], description: "list admin tokens (never the tokens)" },
  args: {},
  async run({ client, json }) {
    const res = await client.access.listAdminTokens({});
    if (json) {
      printJson({ adminTokens: res.adminTokens.map(adminTokenJson) });
      return;
    }
    printTable(
      ["NAME", "ID", "CREATED"],
      res.adminTokens.map((t) => [t.name, t.id, ago(t.createdAt)]),
    );
  },
});
