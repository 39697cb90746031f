import { defineClientCommand } from "../command.js";
import { UsageError } from "../errors.js";
import { expiresAtArg, parseExpiresAt } from "../expires.js";
import { line, printJson } from "../output.js";
import { parseLabels } from "../parse.js";
import { secretJson } from "../views.js";

/** `update NAME`: changes a secret's metadata; never its value (that is `rotate`). */
export default defineClientCommand({
  meta: {
    name: "update",
    description: "change a secret's env var, scope, description, labels or expiry",
  },
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
    "expires-at": { ...expiresAtArg, description: `${expiresAtArg.description}; may be past` },
    "no-expires-at": { type: "boolean", description: "remove the expiry: the value never expires" },
  },
  repeatable: ["label"],
  async run({ args, client, json, all }) {
    const labelPairs = all("label");
    const clear = args["clear-labels"] === true;
    if (clear && labelPairs.length > 0)
      throw new UsageError("give --label or --clear-labels, not both");
    const setLabels = clear || labelPairs.length > 0;
    const expiry = expiryUpdate(args["expires-at"], all("expires-at"));
    if (
      args.env === undefined &&
      args.scope === undefined &&
      args.description === undefined &&
      args["allow-sensitive-env"] === undefined &&
      !setLabels &&
      expiry === undefined
    ) {
      throw new UsageError(
        "nothing to update: give --env, --scope, --description, --label, --clear-labels, --allow-sensitive-env, --expires-at or --no-expires-at",
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
      ...(expiry === "clear" ? { clearExpiresAt: true } : expiry ? { expiresAt: expiry } : {}),
    });
    const s = res.secret;
    if (json) printJson({ secret: secretJson(s), revision: res.revision });
    else line(`updated ${s?.name}: ${s?.env} at ${s?.scope}`);
  },
});

// --- internal ---

/**
 * `--expires-at X` (a time), `--no-expires-at` ("clear"), or neither (undefined). citty reads
 * `--no-expires-at` as `expires-at: false`, whichever order the two come in, so a value seen
 * by the strict scan next to a `false` means both were given.
 */
function expiryUpdate(parsed: unknown, given: readonly string[]) {
  if (parsed === false) {
    if (given.length > 0) throw new UsageError("give --expires-at or --no-expires-at, not both");
    return "clear" as const;
  }
  const raw = given[0];
  return raw === undefined ? undefined : parseExpiresAt(raw);
}
