import pkg from "../../../package.json" with { type: "json" };
import * as template from "../../env-render.js";
import { defineClientCommand } from "../command.js";
import { note, out, printJson } from "../output.js";

const FORMATS: Record<string, (vars: template.EnvVars) => template.Rendered> = {
  dotenv: template.renderDotenvPortable,
  shell: template.renderShell,
  json: template.renderJson,
  "environment.d": template.renderEnvironmentD,
  systemd: template.renderEnvironmentFile,
};
/** The formats a person or a script reads back: they never drop a value and exit 0. */
const STRICT = new Set(["dotenv", "shell"]);

/**
 * `export VM [--format F]`: a VM's env.
 * - dotenv (default) and shell are for people and scripts: a header names what wrote them
 *   (`# written by secretsctl export web1 (vm-auth 0.1.0) at …; revision N`), every value
 *   reads back byte for byte (env-render.ts says by what), and a value the format cannot carry
 *   fails the export (exit 1, naming the variable, nothing on stdout) instead of being dropped.
 * - environment.d and systemd are exactly what the shim writes (its header, its renderers); a
 *   variable such a dialect cannot carry is left out as in the shim's file and named on stderr
 *   with the reason (never the value), exit 0.
 * - json carries every value.
 */
export default defineClientCommand({
  meta: {
    name: "export",
    description:
      "print a VM's env as dotenv, shell (export lines for eval), JSON, environment.d or systemd",
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
      description:
        'output format; dotenv and shell fail rather than drop a value; shell is for eval "$(secretsctl export VM --format shell)"',
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
    const render = FORMATS[args.format] ?? template.renderDotenvPortable;
    const { text, omitted } = render(vars);
    if (!STRICT.has(args.format)) {
      out(text);
      for (const o of omitted) note(`${o.name} left out of ${args.format}: ${o.reason}`);
      return;
    }
    if (omitted.length > 0) {
      const names = omitted.map((o) => o.name).join(", ");
      const reasons = [...new Set(omitted.map((o) => o.reason))].join("; ");
      throw new Error(
        `${names}: cannot be written as ${args.format} (${reasons}); nothing was written`,
      );
    }
    const vm = res.snapshot?.vm || args.vm || "";
    const revision = res.snapshot?.revision ?? 0n;
    const header = `# written by secretsctl export ${vm} (vm-auth ${pkg.version}) at ${new Date().toISOString()}; revision ${revision}\n`;
    out(header + (text === "\n" ? "" : text));
  },
});
