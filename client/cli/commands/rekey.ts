import { defineClientCommand } from "../command.js";
import { line, printJson } from "../output.js";

/** `rekey`: replaces the master key and re-wraps the data key; no value changes. */
export default defineClientCommand({
  meta: { name: "rekey", description: "replace the master key (values are kept)" },
  args: {},
  async run({ client, json }) {
    const res = await client.system.rotateMasterKey({});
    if (json) printJson({ masterKeyId: res.masterKeyId, revision: res.revision });
    else line(`master key replaced: ${res.masterKeyId} (revision ${res.revision})`);
  },
});
