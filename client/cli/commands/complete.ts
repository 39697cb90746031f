/**
 * `__complete KIND`: the names a completion script offers for a positional or an option (a
 * secret, VM, group, admin token, manifest or OAuth credential), one per line, read from
 * secretsd. Hidden: only the scripts `secretsctl completion` prints call it. Tab completion
 * must never print an error into the user's line, so any failure (secretsd unreachable, no
 * permission) prints nothing and exits 0. `__complete commands` prints the command tree, one
 * JSON object per command, for the test that checks every command's examples.
 */
import type { VmAuthClient } from "../../index.js";
import { defineClientCommand } from "../command.js";
import { NAME_KINDS } from "../completion.js";
import { walkCommands } from "../completion-tree.js";
import { UsageError } from "../errors.js";
import { line } from "../output.js";

type Kind = (typeof NAME_KINDS)[number];

export default defineClientCommand({
  meta: { name: "__complete", hidden: true, description: "names for shell completion" },
  args: {
    kind: { type: "positional", required: true, description: NAME_KINDS.join("|") },
  },
  async run({ args, client }) {
    if (args.kind === "commands") {
      // The command tree, for the test that every command has examples.
      for (const c of await walkCommands()) line(JSON.stringify(c));
      return;
    }
    const kind = args.kind as Kind;
    if (!NAME_KINDS.includes(kind)) {
      throw new UsageError(`KIND must be one of ${NAME_KINDS.join(", ")}`);
    }
    let names: string[] = [];
    try {
      names = await namesOf(client, kind);
    } catch {
      return; // nothing to offer: see the module comment
    }
    for (const n of [...new Set(names)].sort()) line(n);
  },
});

// --- internal ---

async function namesOf(client: VmAuthClient, kind: Kind): Promise<string[]> {
  switch (kind) {
    case "secret":
      return (await client.secrets.listSecrets({ scope: "" })).secrets.map((s) => s.name);
    case "vm":
      return (await client.access.listVms({})).vms.map((v) => v.name);
    case "group":
      return (await client.access.listGroups({})).groups.map((g) => g.name);
    case "token":
      return (await client.access.listAdminTokens({})).adminTokens.map((t) => t.name);
    case "manifest":
      return (await client.manifests.listManifests({})).manifests.map((m) => m.name);
    case "oauth":
      return (await client.oauth.listOAuth({})).credentials.map((c) => c.name);
  }
}
