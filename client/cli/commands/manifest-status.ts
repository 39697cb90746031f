import { defineClientCommand } from "../command.js";
import { printJson, printTable } from "../output.js";
import { entryStateText, entryStatusJson } from "../views.js";

/**
 * `manifest status [NAME] [--vm X]`: each entry of each manifest per VM: configured, missing
 * or malformed, and where its value came from (generated, provided, fetched). Never a value.
 * A host-only (infrastructure) entry shows once, as VM `(host)`.
 */
export default defineClientCommand({
  meta: {
    name: "status",
    description: "each manifest entry per VM: state and source (never a value)",
  },
  args: {
    name: { type: "positional", required: false, description: "only this manifest" },
    vm: { type: "string", description: "only this VM" },
  },
  async run({ args, client, json }) {
    const res = await client.manifests.manifestStatus({ name: args.name ?? "", vm: args.vm ?? "" });
    if (json) {
      printJson({ entries: res.entries.map(entryStatusJson) });
      return;
    }
    printTable(
      ["MANIFEST", "VM", "ID", "CLASS", "ENV", "STATE", "SOURCE", "ERROR"],
      res.entries.map((e) => [
        e.manifest,
        e.vm === "" ? "(host)" : e.vm,
        e.id,
        e.class,
        e.env,
        entryStateText(e.state),
        e.source,
        e.error,
      ]),
    );
  },
});
