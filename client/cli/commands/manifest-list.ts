import { defineClientCommand } from "../command.js";
import { ago, printJson, printTable } from "../output.js";
import { manifestInfoJson } from "../views.js";

/** `manifest list`: the recorded manifests and what each is bound to. */
export default defineClientCommand({
  meta: { name: "list", alias: ["ls"], description: "list manifests and their bindings" },
  args: {},
  async run({ client, json }) {
    const res = await client.manifests.listManifests({});
    if (json) {
      printJson({ manifests: res.manifests.map(manifestInfoJson) });
      return;
    }
    printTable(
      ["NAME", "BIND", "ENTRIES", "UPDATED", "DESCRIPTION"],
      res.manifests.map((m) => [
        m.name,
        m.bind,
        String(m.entryCount),
        ago(m.updatedAt),
        m.description,
      ]),
    );
  },
});
