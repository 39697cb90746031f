import { defineClientCommand } from "../command.js";
import { ago, printJson, printTable } from "../output.js";
import { vmJson } from "../views.js";

/**
 * `vm list`: VMs and how current their shims are. COMPLETE is `no: MANIFEST/ID,…` while a
 * required manifest entry has no good value for the VM.
 */
export default defineClientCommand({
  meta: { name: "list", alias: ["ls"], description: "list VMs and their delivery status" },
  args: {},
  async run({ client, json }) {
    const res = await client.access.listVms({});
    if (json) {
      printJson({ vms: res.vms.map(vmJson) });
      return;
    }
    printTable(
      ["NAME", "GROUPS", "CONNECTED", "APPLIED", "BEHIND", "COMPLETE", "LAST-SEEN", "VERSION"],
      res.vms.map((v) => [
        v.name,
        v.groups.join(","),
        v.connected ? "yes" : "no",
        v.appliedRevision === 0n ? "" : String(v.appliedRevision),
        v.damagedSecrets.length > 0
          ? `damaged: ${v.damagedSecrets.join(",")}`
          : v.diverged
            ? "diverged"
            : v.behind
              ? "yes"
              : "no",
        v.missingRequired.length > 0 ? `no: ${v.missingRequired.join(",")}` : "yes",
        ago(v.lastSeen),
        v.clientVersion,
      ]),
    );
  },
});
