import { defineClientCommand } from "../command.js";
import { redact } from "../errors.js";
import { line, note, printJson } from "../output.js";
import { bundleArgs, bundleNote, prepareBundle } from "../tls/bundle-file.js";

/**
 * `vm token NAME [--keep]`: issues a new token, revoking the VM's others unless --keep. With
 * `--bundle FILE` the token goes into a guest bundle (see vm-add.ts); the flags are checked
 * and FILE claimed before the token is issued.
 */
export default defineClientCommand({
  meta: { name: "token", description: "issue a new token for a VM (shown once)" },
  args: {
    name: { type: "positional", required: true, description: "VM name" },
    keep: { type: "boolean", description: "keep the VM's other tokens valid" },
    ...bundleArgs,
  },
  async run({ args, client, json }) {
    const keep = args.keep === true;
    const bundle = await prepareBundle(args, json);
    const res = await client.access
      .issueVmToken({ name: args.name, keepExisting: keep })
      .catch(async (err: unknown) => {
        await bundle?.discard();
        throw err;
      });
    redact(res.token);
    if (bundle) {
      // The token exists now and cannot be taken back: say what state the VM is in.
      await bundle.write(res.token).catch(async (err: Error) => {
        await bundle.discard();
        throw new Error(
          `${err.message}; the new token is lost${keep ? "" : " and the VM's other tokens are revoked"}: run vm token again`,
        );
      });
    }
    if (json) {
      printJson(
        bundle
          ? { name: args.name, bundle: bundle.target, keptOthers: keep }
          : { name: args.name, token: res.token, keptOthers: keep },
      );
    } else if (!bundle) line(res.token);
    const revoked = keep ? "" : "; its other tokens are revoked";
    note(
      bundle
        ? `new token for vm ${args.name}${revoked}; ${bundleNote(bundle)}`
        : `new token for vm ${args.name}${revoked}; it is shown once and cannot be retrieved again`,
    );
  },
});
