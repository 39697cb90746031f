import { defineClientCommand } from "../command.js";
import { confirm, yesArg } from "../confirm.js";
import { line, printJson } from "../output.js";
import { parseCount } from "../parse.js";
import { secretJson } from "../views.js";

/**
 * `rollback NAME VERSION`: makes an earlier version current again; nothing is lost. Asks
 * first on a terminal: every VM that uses it gets the older value.
 */
export default defineClientCommand({
  meta: { name: "rollback", description: "make an earlier version current" },
  args: {
    name: { type: "positional", required: true, description: "secret name" },
    version: { type: "positional", required: true, description: "the version to make current" },
    yes: yesArg,
  },
  async run({ args, client, json }) {
    const version = parseCount("VERSION", args.version) ?? 0;
    await confirm(
      `make version ${version} of ${args.name} current (VMs get that value)?`,
      args.yes,
    );
    const res = await client.secrets.rollbackSecret({ name: args.name, version });
    const s = res.secret;
    if (json) printJson({ secret: secretJson(s), revision: res.revision });
    else line(`rolled back ${s?.name}: version ${s?.currentVersion} is current`);
  },
});
