import { defineClientCommand } from "../command.js";
import { ago, printJson, printTable } from "../output.js";
import { versionJson } from "../views.js";

/** `versions NAME`: a secret's versions, newest first, without values. */
export default defineClientCommand({
  meta: { name: "versions", description: "list a secret's versions (no values)" },
  args: {
    name: { type: "positional", required: true, description: "secret name" },
  },
  async run({ args, client, json }) {
    const res = await client.secrets.listSecretVersions({ name: args.name });
    if (json) {
      printJson({ name: args.name, versions: res.versions.map(versionJson) });
      return;
    }
    printTable(
      ["VERSION", "CURRENT", "CREATED", "BY"],
      res.versions.map((v) => [
        String(v.version),
        v.current ? "*" : "",
        ago(v.createdAt),
        v.createdBy,
      ]),
    );
  },
});
