import { defineClientCommand } from "../command.js";
import { UsageError } from "../errors.js";
import { line, printJson } from "../output.js";
import { parseLabels } from "../parse.js";
import { secretJson } from "../views.js";

/** `update NAME`: changes a secret's metadata; never its value (that is `rotate`). */
export default defineClientCommand({
  meta: { name: "update", description: "change a secret's env var, scope, description or labels" },
  args: {
    name: { type: "positional", required: true, description: "secret name" },
    env: { type: "string", description: "new env var name" },
    scope: { type: "string", valueHint: "global|group:G|vm:V", description: "new scope" },
    description: { type: "string", description: "new description ('' clears it)" },
    label: {
      type: "string",
      valueHint: "k=v",
      description: "replace the labels with these; repeatable",
    },
    "clear-labels": { type: "boolean", description: "remove every label" },
    "allow-sensitive-env": {
      type: "boolean",
      description:
        "allow (or with --no-allow-sensitive-env, stop allowing) an env var that changes how programs run",
    },
  },
  repeatable: ["label"],
  async run({ args, client, json, all }) {
    const labelPairs = all("label");
    const clear = args["clear-labels"] === true;
    if (clear && labelPairs.length > 0)
      throw new UsageError("give --label or --clear-labels, not both");
    const setLabels = clear || labelPairs.length > 0;
    if (
      args.env === undefined &&
      args.scope === undefined &&
      args.description === undefined &&
      args["allow-sensitive-env"] === undefined &&
      !setLabels
    ) {
      throw new UsageError(
        "nothing to update: give --env, --scope, --description, --label, --clear-labels or --allow-sensitive-env",
      );
    }
    const res = await client.secrets.updateSecret({
      name: args.name,
      ...(args.env === undefined ? {} : { env: args.env }),
      ...(args.scope === undefined ? {} : { scope: args.scope }),
      ...(args.description === undefined ? {} : { description: args.description }),
      setLabels,
      labels: parseLabels(labelPairs),
      ...(args["allow-sensitive-env"] === undefined
        ? {}
        : { allowSensitiveEnv: args["allow-sensitive-env"] }),
    });
    const s = res.secret;
    if (json) printJson({ secret: secretJson(s), revision: res.revision });
    else line(`updated ${s?.name}: ${s?.env} at ${s?.scope}`);
  },
});
