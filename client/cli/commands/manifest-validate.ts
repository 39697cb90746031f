import { defineClientCommand } from "../command.js";
import { line, printJson } from "../output.js";
import { bindingOf, manifestFileArgs, problemsOf, readManifestText } from "./manifest.js";

/**
 * `manifest validate FILE --vm X | --group G`: whether every required entry has a value now
 * and no value is malformed. Prints `ok`, or one line per entry that is not ready (by id, on
 * stdout) and fails with a one-line summary (exit 1). Changes nothing.
 */
export default defineClientCommand({
  meta: {
    name: "validate",
    description: "exit 1 listing each missing or malformed entry by id; ok when complete",
  },
  args: { ...manifestFileArgs },
  async run({ args, client, json }) {
    const bind = bindingOf(args);
    const manifest = await readManifestText(args.file);
    const res = await client.manifests.planManifest({ manifest, bind });
    const problems = problemsOf(res.entries);
    if (json) {
      printJson({ name: res.name, ok: problems.length === 0, problems });
    } else if (problems.length === 0) {
      line("ok");
    } else {
      for (const p of problems) {
        const why = p.error !== "" ? `: ${p.error}` : "";
        const env = p.env === "" ? "" : `, ${p.env}`;
        line(`${p.state} ${p.id} (${p.class}${env}; ${p.scopes.join(",")})${why}`);
      }
    }
    if (problems.length > 0) {
      const ids = problems.map((p) => p.id).join(", ");
      throw new Error(
        `manifest ${res.name}: ${problems.length} entr${problems.length === 1 ? "y is" : "ies are"} missing or malformed: ${ids}`,
      );
    }
  },
});
