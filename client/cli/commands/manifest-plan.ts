import { defineClientCommand } from "../command.js";
import { note, printJson } from "../output.js";
import { plannedEntryJson, vmEnvPlanJson } from "../views.js";
import { bindingOf, manifestFileArgs, printPlan, readManifestText } from "./manifest.js";

/**
 * `manifest plan FILE --vm X | --group G`: what applying would do, entry by entry and VM by
 * VM: generate, regenerate, fetch, keep, or wait for a person to provide it; and the env each
 * VM would then see (names only). Changes nothing.
 */
export default defineClientCommand({
  meta: { name: "plan", description: "show what applying a manifest would do; change nothing" },
  args: {
    ...manifestFileArgs,
    regenerate: {
      type: "string",
      valueHint: "id",
      description: "plan a new value for this generated entry; repeatable",
    },
  },
  repeatable: ["regenerate"],
  async run({ args, client, json, all }) {
    const bind = bindingOf(args);
    const manifest = await readManifestText(args.file);
    const res = await client.manifests.planManifest({
      manifest,
      bind,
      regenerate: all("regenerate"),
    });
    if (json) {
      printJson({
        name: res.name,
        entries: res.entries.map(plannedEntryJson),
        vms: res.vms.map(vmEnvPlanJson),
      });
      return;
    }
    printPlan(res.entries, res.vms);
    note(`plan of manifest ${res.name}: nothing was changed`);
  },
});
