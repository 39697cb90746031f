/**
 * `usage NAME [--window 7d]` (issue #13, "Usage"): which VMs hold a secret now (by their shims'
 * acks), when each last applied it, whether it is connected, how often its env was delivered
 * or read within the window, and which host-side callers read the value. Changes nothing and
 * reads no value.
 */
import { SecretHolding } from "../../../proto/gen/vmauth/v1/secrets_pb.js";
import { defineClientCommand } from "../command.js";
import { UsageError } from "../errors.js";
import { ago, iso, line, printJson, printTable } from "../output.js";

/** secretsd's bound on the window: 30 days. */
const MAX_WINDOW_SECONDS = 30 * 86_400;
const UNIT: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

export default defineClientCommand({
  meta: {
    name: "usage",
    description: "which VMs hold a secret, when they got it, and reads over a window",
  },
  args: {
    name: { type: "positional", required: true, description: "secret name" },
    window: {
      type: "string",
      description: "count deliveries and reads over this span: 30m, 12h, 7d (default), at most 30d",
    },
  },
  async run({ args, client, json }) {
    const windowSeconds = args.window === undefined ? 0 : parseWindow(args.window);
    const res = await client.secrets.getSecretUsage({ name: args.name, windowSeconds });
    if (json) {
      printJson({
        secret: args.name,
        revision: res.revision,
        windowSeconds: res.windowSeconds,
        truncated: res.truncated,
        vms: res.vms.map((v) => ({
          vm: v.vm,
          env: v.env,
          holding: HOLDING[v.holding],
          version: v.version,
          lastReceived: iso(v.lastReceived),
          ackedRevision: v.ackedRevision,
          connected: v.connected,
          deliveries: v.deliveries,
          reads: v.reads,
        })),
        hostReaders: res.hostReaders.map((r) => ({ actor: r.actor, reads: r.reads })),
      });
      return;
    }
    const over = span(res.windowSeconds);
    const more = res.truncated ? "+" : "";
    printTable(
      ["VM", "VERSION", "LAST RECEIVED", "CONNECTED", `READS (${over})`],
      res.vms.map((v) => [
        v.vm,
        v.holding === SecretHolding.CURRENT
          ? String(v.version)
          : v.holding === SecretHolding.BEHIND
            ? "behind"
            : "unknown",
        ago(v.lastReceived),
        v.connected ? "yes" : "no",
        `${v.deliveries}${more} delivered, ${v.reads}${more} GetEnv`,
      ]),
    );
    const host = res.hostReaders.map((r) => `${r.actor} ${r.reads}${more}`).join(", ");
    line(`host-side reads (${over}): ${host || "none"}`);
    if (res.vms.some((v) => v.holding === SecretHolding.UNSPECIFIED)) {
      line("unknown: no ack from that VM's shim since secretsd started or in the audit log");
    }
  },
});

// --- internal ---

const HOLDING: Record<SecretHolding, string> = {
  [SecretHolding.UNSPECIFIED]: "unknown",
  [SecretHolding.CURRENT]: "current",
  [SecretHolding.BEHIND]: "behind",
};

/** Seconds in the largest unit that divides them exactly: 36h stays "36h", not "1d". */
function span(secs: number): string {
  for (const [u, n] of [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
  ] as const) {
    if (secs % n === 0) return `${secs / n}${u}`;
  }
  return `${secs}s`;
}

/** "30m", "12h", "7d", "90s": 1 second to 30 days. */
function parseWindow(raw: string): number {
  const m = /^([1-9][0-9]{0,6})([smhd])$/.exec(raw);
  const secs = m ? Number(m[1]) * (UNIT[m[2] as string] ?? 0) : 0;
  if (secs === 0 || secs > MAX_WINDOW_SECONDS) {
    throw new UsageError(`--window must be a span like 30m, 12h or 7d, at most 30d (got '${raw}')`);
  }
  return secs;
}
