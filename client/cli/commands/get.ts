import { defineClientCommand } from "../command.js";
import { out, printJson } from "../output.js";
import { parseCount } from "../parse.js";

/**
 * `get NAME [--version N]`: prints a value exactly as stored. A newline is added only on a
 * terminal, so `$(secretsctl get x)` and pipes get the bytes and nothing else.
 */
export default defineClientCommand({
  meta: { name: "get", description: "print a secret's value" },
  args: {
    name: { type: "positional", required: true, description: "secret name" },
    version: { type: "string", valueHint: "n", description: "this version (default: current)" },
  },
  async run({ args, client, json }) {
    const version = parseCount("--version", args.version) ?? 0;
    const res = await client.secrets.getSecretValue({ name: args.name, version });
    if (json) {
      printJson({
        name: res.secret?.name ?? args.name,
        env: res.secret?.env ?? "",
        scope: res.secret?.scope ?? "",
        version: res.version,
        value: res.value,
      });
      return;
    }
    out(process.stdout.isTTY ? `${res.value}\n` : res.value);
  },
});
