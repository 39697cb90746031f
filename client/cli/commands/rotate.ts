import type { VmAuthClient } from "../../index.js";
import { defineClientCommand } from "../command.js";
import { UsageError } from "../errors.js";
import { expiresAtArg, parseExpiresAt } from "../expires.js";
import { fromFileArg, readValue } from "../input.js";
import { line, note, printJson, printTable } from "../output.js";
import { secretJson } from "../views.js";

/**
 * `rotate NAME [VALUE]`: stores a new version and makes it current (value sources as `add`).
 * `rotate NAME --plan`: changes nothing and reads no value; prints which VMs would see the new
 * value and which of their units would restart or reload.
 */
export default defineClientCommand({
  meta: { name: "rotate", description: "store a new value as a new version (--plan: show who)" },
  args: {
    name: { type: "positional", required: true, description: "secret name" },
    value: {
      type: "positional",
      required: false,
      description:
        "the new value; omit it to read stdin (one trailing newline stripped) or be prompted (a multi-line paste is kept whole); '-' reads stdin; '@PATH' reads a file byte for byte; a value starting with '-' goes after '--'",
    },
    plan: {
      type: "boolean",
      description:
        "change nothing: list the VMs that would see a new value and the units that would restart",
    },
    "expires-at": {
      ...expiresAtArg,
      description: `the new value's expiry (without it, the secret has none): ${expiresAtArg.description}`,
    },
    "from-file": fromFileArg,
  },
  async run({ args, client, json }) {
    if (args.plan) {
      // Never a value: none is read, prompted for or sent.
      if (
        args.value !== undefined ||
        args["expires-at"] !== undefined ||
        args["from-file"] !== undefined
      ) {
        throw new UsageError("--plan changes nothing: give NAME only");
      }
      await printPlan(client, args.name, json);
      return;
    }
    // Checked before the value is read or prompted for.
    const expiresAt =
      args["expires-at"] === undefined ? undefined : parseExpiresAt(args["expires-at"]);
    const value = await readValue(args.value, `New value for ${args.name}`, args["from-file"]);
    const res = await client.secrets.rotateSecret({
      name: args.name,
      value,
      ...(expiresAt ? { expiresAt } : {}),
    });
    const s = res.secret;
    if (json) printJson({ secret: secretJson(s), revision: res.revision });
    else line(`rotated ${s?.name}: version ${s?.currentVersion} is current`);
  },
});

// --- internal ---

/** What a VM whose shim has not reported its units since secretsd started is shown. */
const UNKNOWN = "unit map unknown: the VM's shim has not acked since secretsd started";

async function printPlan(client: VmAuthClient, name: string, json: boolean): Promise<void> {
  const res = await client.secrets.planRotation({ name });
  if (json) {
    printJson({
      secret: name,
      revision: res.revision,
      vms: res.vms.map((t) => ({
        vm: t.vm,
        env: t.env,
        connected: t.connected,
        units: [...t.units],
        unitMapKnown: t.unitMapKnown,
      })),
    });
    return;
  }
  printTable(
    ["VM", "ENV", "CONNECTED", "WOULD RESTART"],
    res.vms.map((t) => [
      t.vm,
      t.env,
      t.connected ? "yes" : "no",
      t.unitMapKnown ? t.units.join(", ") || "none" : UNKNOWN,
    ]),
  );
  if (res.vms.length === 0)
    note(`no VM's view takes an env var from ${name}: a rotation reaches none`);
}
