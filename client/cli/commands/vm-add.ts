import { defineClientCommand } from "../command.js";
import { redact } from "../errors.js";
import { line, note, printJson } from "../output.js";
import { bundleArgs, bundleNote, prepareBundle } from "../tls/bundle-file.js";
import { vmJson } from "../views.js";

/**
 * `vm add NAME [--group G]…`: registers a VM and prints its first token, once, alone on
 * stdout (so `TOKEN=$(secretsctl vm add web1)` works); the reminder goes to stderr. With
 * `--bundle FILE` the token goes into a guest bundle instead (address, token, CA): every
 * bundle flag is checked and FILE claimed before the VM exists, and if FILE cannot be
 * written after all, the VM is removed again, so a failed command changes nothing.
 */
export default defineClientCommand({
  meta: { name: "add", description: "register a VM and print its token (shown once)" },
  args: {
    name: {
      type: "positional",
      required: true,
      description: "VM name: ^[a-z0-9][a-z0-9_.-]{0,62}$",
    },
    group: { type: "string", description: "a group it joins; repeatable" },
    ...bundleArgs,
  },
  repeatable: ["group"],
  async run({ args, client, json, all }) {
    const bundle = await prepareBundle(args, json);
    const res = await client.access
      .createVm({ name: args.name, groups: all("group") })
      .catch(async (err: unknown) => {
        await bundle?.discard();
        throw err;
      });
    redact(res.token);
    if (bundle) {
      await bundle.write(res.token).catch(async (err: Error) => {
        await bundle.discard();
        await client.access.deleteVm({ name: args.name }).catch(() => {});
        throw new Error(`${err.message}; vm ${args.name} was removed again`);
      });
    }
    if (json) {
      printJson(
        bundle
          ? { vm: vmJson(res.vm), bundle: bundle.target }
          : { vm: vmJson(res.vm), token: res.token },
      );
    } else if (!bundle) line(res.token);
    note(
      bundle
        ? `vm ${args.name} added; ${bundleNote(bundle)}`
        : `vm ${args.name} added; its token is shown once and cannot be retrieved again`,
    );
  },
});
