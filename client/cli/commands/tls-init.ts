import { hostname } from "node:os";
import { defineCommand } from "citty";
import { UsageError } from "../errors.js";
import { line, note, printJson } from "../output.js";
import { scanLocalArgs, single } from "../tls/args.js";
import { initTls } from "../tls/init.js";
import { TLS_FILES, tlsDir } from "../tls/paths.js";

const args = {
  san: {
    type: "string",
    valueHint: "ip|dns",
    description:
      "an address or DNS name guests reach secretsd at; repeatable; the first is the guests' default",
  },
  dir: { type: "string", valueHint: "dir", description: "where to write (default <data dir>/tls)" },
  port: {
    type: "string",
    valueHint: "port",
    description: "secretsd's TCP port, for guest.json (default 3090)",
  },
  days: {
    type: "string",
    valueHint: "n",
    description: "server certificate validity in days (default 825)",
  },
  force: {
    type: "boolean",
    description: "re-issue an existing server certificate (the CA is kept)",
  },
  json: { type: "boolean", description: "print JSON" },
} as const;

/**
 * `tls init --san IP|DNS…`: a CA (reused when the dir has one) and a server certificate signed
 * by it, for secretsd's TCP listener, plus guest.json, the address `vm add --bundle` puts in
 * bundles. Local: it runs openssl and never connects to secretsd.
 */
export default defineCommand({
  meta: {
    name: "init",
    description: "make a CA and a server certificate for secretsd (local; no daemon)",
  },
  args,
  async run({ rawArgs }) {
    const got = scanLocalArgs(rawArgs, args, ["san"]);
    const dir = tlsDir(single(got, "dir"));
    const r = await initTls({
      sans: got.get("san") ?? [],
      dir,
      port: intFlag("port", single(got, "port"), 3090, 65535),
      days: intFlag("days", single(got, "days"), 825, 36500),
      force: got.has("force"),
      hostname: hostname(),
    });
    const listen = listenHint(r.server.sans, r.guestAddress);
    const usesDefault = dir === tlsDir(undefined);
    const serve = usesDefault
      ? `secretsd --listen ${listen}   (uses ${dir}/server.pem and server.key)`
      : `secretsd --listen ${listen} --tls-cert ${dir}/${TLS_FILES.serverCert} --tls-key ${dir}/${TLS_FILES.serverKey}`;
    if (got.has("json")) {
      printJson({
        dir,
        caReused: r.caReused,
        caFingerprint: r.ca.fingerprint,
        caNotAfter: r.ca.notAfter.toISOString(),
        serverSans: r.server.sans,
        serverNotAfter: r.server.notAfter.toISOString(),
        guestAddress: r.guestAddress,
        serve,
      });
      return;
    }
    if (r.tightened) note(`${dir}: mode narrowed to 0700`);
    const ca = r.caReused ? "kept CA" : "wrote CA";
    line(`${ca.padEnd(16)}${dir}/ca.pem (0644), ca.key (0600); until ${day(r.ca.notAfter)}`);
    line(
      `wrote server    ${dir}/server.pem (0644), server.key (0600); until ${day(r.server.notAfter)}`,
    );
    line(`                for ${r.server.sans.join(", ")}`);
    line(`wrote guest     ${dir}/guest.json: guests reach secretsd at ${r.guestAddress}`);
    line(`CA fingerprint  ${r.ca.fingerprint}`);
    line("next:");
    line(`  ${serve}`);
    const tlsDirFlag = usesDefault ? "" : ` --tls-dir ${dir}`;
    line(`  secretsctl vm add NAME --bundle NAME.bundle${tlsDirFlag}   (address, token and CA)`);
  },
});

// --- internal ---

/** A whole number flag in 1..max, or the default. @throws UsageError naming the flag */
function intFlag(name: string, raw: string | undefined, dflt: number, max: number): number {
  if (raw === undefined) return dflt;
  if (!/^[0-9]{1,6}$/.test(raw) || Number(raw) < 1 || Number(raw) > max) {
    throw new UsageError(`--${name}: must be a whole number from 1 to ${max}`);
  }
  return Number(raw);
}

/** What secretsd should listen on: the first non-loopback IP SAN, else every address. */
function listenHint(sans: readonly string[], guest: string): string {
  const port = guest.slice(guest.lastIndexOf(":") + 1);
  const ip = sans.find((s) => s.startsWith("IP:") && !s.startsWith("IP:127.") && s !== "IP:::1");
  if (!ip) return `0.0.0.0:${port}`;
  const addr = ip.slice(3);
  return addr.includes(":") ? `[${addr}]:${port}` : `${addr}:${port}`;
}

function day(d: Date): string {
  return d.toISOString().slice(0, 10);
}
