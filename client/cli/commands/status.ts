import { isClientError } from "../../errors.js";
import { defineClientCommand } from "../command.js";
import { duration, iso, line, printJson } from "../output.js";
import { statusJson } from "../views.js";

/** `status`: whether secretsd answers, and what it holds. */
export default defineClientCommand({
  meta: { name: "status", description: "show whether secretsd is reachable, and its state" },
  args: {},
  async run({ client, json }) {
    let s: Awaited<ReturnType<typeof client.system.getStatus>>;
    try {
      s = await client.system.getStatus({});
    } catch (err) {
      // Scripts get a JSON answer either way; the error line and exit 1 still follow.
      if (json && isClientError(err) && err.code === "unavailable") {
        printJson({ reachable: false, target: client.target });
      }
      throw err;
    }
    if (json) {
      printJson(statusJson(s, client.target));
      return;
    }
    const rows: [string, string][] = [
      ["reachable", `yes (${client.target})`],
      ["version", s.version],
      ["uptime", `${duration(Number(s.uptimeSeconds))} (since ${iso(s.startedAt) ?? "?"})`],
      ["revision", String(s.revision)],
      ["secrets", String(s.secretCount)],
      ["vms", `${s.connectedVmCount} connected / ${s.vmCount} total`],
      ["groups", String(s.groupCount)],
      ["data dir", s.dataDir],
      ["master key", s.masterKeyId],
      ["caller", s.caller],
    ];
    // Damage is named here so an operator sees it before a VM reports it.
    if (s.damagedSecrets.length > 0) rows.push(["damaged", s.damagedSecrets.join(", ")]);
    for (const w of s.storeWarnings) rows.push(["store warning", w]);
    for (const a of s.oauthAttention) rows.push(["oauth", a]);
    for (const e of s.expiringSecrets) rows.push(["expiring", e]);
    printStatus(rows);
  },
});

// --- internal ---

function printStatus(rows: [string, string][]): void {
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) line(`${k.padEnd(w)}  ${v}`);
}
