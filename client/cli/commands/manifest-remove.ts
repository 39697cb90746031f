import { defineClientCommand } from "../command.js";
import { confirm, yesArg } from "../confirm.js";
import { line, printJson } from "../output.js";

/**
 * `manifest remove NAME [--delete-secrets]`: forgets a manifest, so no VM counts as missing
 * its entries any more. The secrets it made stay (VMs keep their env) unless
 * `--delete-secrets`. Asks first on a terminal.
 */
export default defineClientCommand({
  meta: {
    name: "remove",
    alias: ["rm"],
    description: "forget a manifest; its secrets stay unless --delete-secrets",
  },
  args: {
    name: { type: "positional", required: true, description: "the manifest's name" },
    "delete-secrets": { type: "boolean", description: "also delete the secrets it made" },
    yes: yesArg,
  },
  async run({ args, client, json }) {
    const also = args["delete-secrets"] === true ? " and delete the secrets it made" : "";
    await confirm(`remove manifest ${args.name}${also}?`, args.yes);
    const res = await client.manifests.removeManifest({
      name: args.name,
      deleteSecrets: args["delete-secrets"] === true,
    });
    if (json) {
      printJson({
        name: args.name,
        removed: true,
        deletedSecrets: [...res.deletedSecrets],
        revision: res.revision,
      });
      return;
    }
    line(`removed manifest ${args.name}`);
    if (res.deletedSecrets.length > 0) line(`deleted secrets: ${res.deletedSecrets.join(", ")}`);
    else if (args["delete-secrets"] !== true)
      line("its secrets stay (--delete-secrets deletes them)");
  },
});
