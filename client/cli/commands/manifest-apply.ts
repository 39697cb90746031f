import { EntryAction, EntryState } from "../../../proto/gen/vmauth/v1/manifest_pb.js";
import { defineClientCommand } from "../command.js";
import { note, printJson } from "../output.js";
import { plannedEntryJson, vmEnvPlanJson } from "../views.js";
import {
  bindingOf,
  manifestFileArgs,
  printPlan,
  problemsOf,
  readManifestText,
} from "./manifest.js";

/**
 * `manifest apply FILE --vm X | --group G`: records the manifest, generates and fetches what
 * is missing (an existing value is replaced only for `--regenerate ID`), and says what is
 * still missing: user_prompt entries wait for `manifest prompt`, failed fetches keep their
 * error.
 */
export default defineClientCommand({
  meta: {
    name: "apply",
    description: "record a manifest; generate and fetch what is missing (never overwrites)",
  },
  args: {
    ...manifestFileArgs,
    regenerate: {
      type: "string",
      valueHint: "id",
      description: "generate a new value for this generated entry; repeatable",
    },
  },
  repeatable: ["regenerate"],
  async run({ args, client, json, all }) {
    const bind = bindingOf(args);
    const manifest = await readManifestText(args.file);
    const res = await client.manifests.applyManifest(
      { manifest, bind, regenerate: all("regenerate") },
      // Fetches run before the commit; each may take up to its own timeout (60 s at most).
      args.timeout === undefined ? { deadlineMs: 120_000 } : {},
    );
    if (json) {
      printJson({
        name: res.name,
        entries: res.entries.map(plannedEntryJson),
        vms: res.vms.map(vmEnvPlanJson),
        revision: res.revision,
      });
    } else {
      printPlan(res.entries, res.vms);
    }
    const made = (a: EntryAction) =>
      res.entries.filter((e) => e.action === a && e.state !== EntryState.MISSING).length;
    note(
      `applied manifest ${res.name} at revision ${res.revision}: ${made(EntryAction.GENERATE)} generated, ${made(EntryAction.REGENERATE)} regenerated, ${made(EntryAction.FETCH)} fetched`,
    );
    for (const e of res.entries) {
      if (e.action === EntryAction.FETCH && e.error !== "") {
        note(`${e.id}: fetch failed: ${e.error}`);
      }
    }
    const problems = problemsOf(res.entries);
    if (problems.length > 0) {
      note(`not ready: ${problems.map((p) => `${p.id} (${p.state})`).join(", ")}`);
    }
    const prompted = problems.filter((p) => p.class === "user_prompt");
    if (prompted.length > 0) {
      note(
        `${prompted.map((p) => p.id).join(", ")} must be provided: run secretsctl manifest prompt ${res.name}`,
      );
    }
  },
});
