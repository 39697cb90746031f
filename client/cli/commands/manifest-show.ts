import { defineClientCommand } from "../command.js";
import { iso, line, out, printJson } from "../output.js";
import { manifestInfoJson } from "../views.js";

/** `manifest show NAME`: a recorded manifest, and its JSON as applied (defaults filled in). */
export default defineClientCommand({
  meta: { name: "show", description: "show a manifest and its JSON as applied" },
  args: {
    name: { type: "positional", required: true, description: "the manifest's name" },
  },
  async run({ args, client, json }) {
    const res = await client.manifests.getManifest({ name: args.name });
    const m = res.manifest;
    if (json) {
      printJson({ manifest: manifestInfoJson(m), text: res.text });
      return;
    }
    line(`name: ${m?.name ?? args.name}`);
    if (m?.description) line(`description: ${m.description}`);
    line(`bind: ${m?.bind ?? ""}`);
    line(`entries: ${m?.entryCount ?? 0}`);
    line(`created: ${iso(m?.createdAt) ?? "-"}`);
    line(`updated: ${iso(m?.updatedAt) ?? "-"}`);
    line(`revision: ${m?.modRevision ?? 0n}`);
    line("");
    out(res.text.endsWith("\n") ? res.text : `${res.text}\n`);
  },
});
