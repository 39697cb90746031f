import * as template from "../../env-render.js";
import { defineClientCommand } from "../command.js";
import { note, out, printJson } from "../output.js";

const FORMATS: Record<string, (vars: template.EnvVars) => template.Rendered> = {
  dotenv: template.renderDotenv,
  json: template.renderJson,
  "environment.d": template.renderEnvironmentD,
  systemd: template.renderEnvironmentFile,
};

/**
 * `export VM [--format F]`: a VM's env rendered as the shim renders it. A variable a format
 * cannot carry byte for byte is left out and named on stderr with the reason (never the
 * value); that is not an error, the exit code stays 0.
 */
export default defineClientCommand({
  meta: {
    name: "export",
    description: "print a VM's env as dotenv, JSON, environment.d or systemd",
  },
  args: {
    vm: {
      type: "positional",
      required: false,
      description: "VM name (may be omitted with a VM token)",
    },
    format: {
      type: "enum",
      options: Object.keys(FORMATS),
      default: "dotenv",
      description: "output format",
    },
  },
  async run({ args, client, json }) {
    const res = await client.env.getEnv({ vm: args.vm ?? "" });
    const vars = new Map((res.snapshot?.vars ?? []).map((v) => [v.name, v.value]));
    if (json) {
      // --json is the snapshot with provenance; --format json is the plain name → value object.
      printJson({
        vm: res.snapshot?.vm ?? args.vm ?? "",
        revision: res.snapshot?.revision ?? 0n,
        vars: (res.snapshot?.vars ?? []).map((v) => ({
          name: v.name,
          value: v.value,
          secret: v.secret,
          version: v.version,
          scope: v.scope,
        })),
      });
      return;
    }
    const render = FORMATS[args.format] ?? template.renderDotenv;
    const { text, omitted } = render(vars);
    out(text);
    for (const o of omitted) note(`${o.name} left out of ${args.format}: ${o.reason}`);
  },
});
