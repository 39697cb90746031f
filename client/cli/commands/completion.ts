/**
 * `completion bash|zsh|fish`: prints a completion script generated from the live command
 * tree, so it completes exactly the commands, options and enum values this secretsctl has;
 * names of secrets, VMs, groups, tokens, manifests and OAuth credentials come from secretsd
 * at tab time (nothing when it does not answer). How to install it is in the examples.
 */
import pkg from "../../../package.json" with { type: "json" };
import { defineLocalCommand } from "../command.js";
import { completionSpec, SHELLS } from "../completion.js";
import { fishScript } from "../completion-fish.js";
import { bashScript, zshScript } from "../completion-sh.js";
import { UsageError } from "../errors.js";
import { out } from "../output.js";

export default defineLocalCommand({
  meta: {
    name: "completion",
    description: "print a shell completion script (bash, zsh or fish); see EXAMPLES to install it",
  },
  args: {
    shell: { type: "positional", required: true, description: SHELLS.join("|") },
  },
  async run({ args }) {
    const shell = args.shell;
    if (shell !== "bash" && shell !== "zsh" && shell !== "fish") {
      throw new UsageError(`SHELL must be one of ${SHELLS.join(", ")}`);
    }
    const spec = await completionSpec();
    const render = { bash: bashScript, zsh: zshScript, fish: fishScript }[shell];
    out(render(spec, pkg.version));
  },
});
