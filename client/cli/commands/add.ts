import { defineClientCommand } from "../command.js";
import { expiresAtArg, parseExpiresAt } from "../expires.js";
import { fromFileArg, readValue } from "../input.js";
import { line, printJson } from "../output.js";
import { parseLabels } from "../parse.js";
import { secretJson } from "../views.js";

/**
 * `add NAME [VALUE]`: stores a new secret as version 1. Without VALUE the value comes from
 * stdin or a prompt without echo, which keeps it out of shell history and `ps`;
 * `--from-file PATH` (or `@PATH`) reads a PEM or JSON key byte for byte (input.ts).
 */
export default defineClientCommand({
  meta: { name: "add", description: "store a new secret (version 1)" },
  args: {
    name: {
      type: "positional",
      required: true,
      description: "secret name: ^[a-z][a-z0-9_.-]{0,62}$",
    },
    value: {
      type: "positional",
      required: false,
      description:
        "the value; omit it to read stdin (one trailing newline stripped) or be prompted (keeps it out of shell history; a multi-line paste is kept whole); '-' reads stdin; '@PATH' reads a file byte for byte; a value starting with '-' goes after '--'",
    },
    env: {
      type: "string",
      description: "env var (default: the provider preset's, else NAME upper-cased)",
    },
    scope: {
      type: "string",
      valueHint: "global|group:G|vm:V",
      description: "who sees it (default global)",
    },
    provider: { type: "string", description: "provider preset (openai, anthropic, …)" },
    description: { type: "string", description: "free text" },
    label: { type: "string", valueHint: "k=v", description: "a label; repeatable" },
    "allow-sensitive-env": {
      type: "boolean",
      description: "allow an env var that changes how programs run (PATH, LD_*, NODE_OPTIONS, …)",
    },
    "expires-at": expiresAtArg,
    "from-file": fromFileArg,
  },
  repeatable: ["label"],
  async run({ args, client, json, all }) {
    const labels = parseLabels(all("label"));
    // Checked before the value is read or prompted for.
    const expiresAt =
      args["expires-at"] === undefined ? undefined : parseExpiresAt(args["expires-at"]);
    const value = await readValue(args.value, `Value for ${args.name}`, args["from-file"]);
    const res = await client.secrets.createSecret({
      name: args.name,
      value,
      env: args.env ?? "",
      scope: args.scope ?? "",
      provider: args.provider ?? "",
      description: args.description ?? "",
      labels,
      allowSensitiveEnv: args["allow-sensitive-env"] === true,
      ...(expiresAt ? { expiresAt } : {}),
    });
    const s = res.secret;
    if (json) printJson({ secret: secretJson(s), revision: res.revision });
    else line(`created ${s?.name}: ${s?.env} at ${s?.scope}, version ${s?.currentVersion}`);
  },
});
