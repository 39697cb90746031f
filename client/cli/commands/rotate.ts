import { defineClientCommand } from "../command.js";
import { readValue } from "../input.js";
import { line, printJson } from "../output.js";
import { secretJson } from "../views.js";

/** `rotate NAME [VALUE]`: stores a new version and makes it current (value sources as `add`). */
export default defineClientCommand({
  meta: { name: "rotate", description: "store a new value as a new version" },
  args: {
    name: { type: "positional", required: true, description: "secret name" },
    value: {
      type: "positional",
      required: false,
      description:
        "the new value; omit it to read stdin or be prompted; '-' reads stdin; a value starting with '-' goes after '--'",
    },
  },
  async run({ args, client, json }) {
    const value = await readValue(args.value, `New value for ${args.name}`);
    const res = await client.secrets.rotateSecret({ name: args.name, value });
    const s = res.secret;
    if (json) printJson({ secret: secretJson(s), revision: res.revision });
    else line(`rotated ${s?.name}: version ${s?.currentVersion} is current`);
  },
});
