import { defineCommand } from "citty";
import { line, note, printJson } from "../output.js";
import { scanLocalArgs, single } from "../tls/args.js";
import { daysUntil, readCert, signedBy } from "../tls/inspect.js";
import { readGuestAddress, TLS_FILES, tlsDir } from "../tls/paths.js";

const args = {
  dir: { type: "string", valueHint: "dir", description: "the TLS dir (default <data dir>/tls)" },
  json: { type: "boolean", description: "print JSON" },
} as const;

/** Days before the server certificate's end from which `tls show` warns. */
const WARN_DAYS = 30;

/**
 * `tls show [--dir DIR]`: the CA's fingerprint (what a guest's CA must match), the server
 * certificate's SANs and expiry, and the guests' address. Warns on stderr when the server
 * certificate ends within 30 days, has ended, or was not signed by the dir's CA. Local.
 */
export default defineCommand({
  meta: { name: "show", description: "show the CA and server certificate (local; no daemon)" },
  args,
  async run({ rawArgs }) {
    const got = scanLocalArgs(rawArgs, args);
    const dir = tlsDir(single(got, "dir"));
    const ca = await readCert(`${dir}/${TLS_FILES.caCert}`).catch((err: Error) => {
      throw new Error(
        err.message.includes("ENOENT")
          ? `no CA in ${dir} (make one with 'secretsctl tls init --san ADDRESS')`
          : err.message,
      );
    });
    const server = await readCert(`${dir}/${TLS_FILES.serverCert}`);
    const guest = await readGuestAddress(dir);
    const left = daysUntil(server.notAfter);
    const trusted = signedBy(server, ca);
    if (got.has("json")) {
      printJson({
        dir,
        ca: {
          subject: ca.subject,
          fingerprint: ca.fingerprint,
          notAfter: ca.notAfter.toISOString(),
        },
        server: {
          subject: server.subject,
          sans: server.sans,
          notAfter: server.notAfter.toISOString(),
          signedByCa: trusted,
        },
        guestAddress: guest ?? null,
      });
    } else {
      line(`dir             ${dir}`);
      line(`CA              ${ca.subject}, until ${day(ca.notAfter)} (${daysUntil(ca.notAfter)}d)`);
      line(`CA fingerprint  ${ca.fingerprint}`);
      line(`server cert     ${server.subject}, until ${day(server.notAfter)} (${left}d)`);
      line(`server SANs     ${server.sans.join(", ")}`);
      line(`guest address   ${guest ?? "- (no guest.json)"}`);
    }
    if (!trusted)
      note(
        `warning: ${dir}/server.pem was not signed by ${dir}/ca.pem; guests trusting ca.pem will refuse it`,
      );
    if (left < 0)
      note(`warning: the server certificate expired on ${day(server.notAfter)}; ${reissue}`);
    else if (left < WARN_DAYS)
      note(
        `warning: the server certificate expires in ${left}d (${day(server.notAfter)}); ${reissue}`,
      );
  },
});

// --- internal ---

const reissue = "re-issue it with 'secretsctl tls init --san … --force' (the CA is kept)";

function day(d: Date): string {
  return d.toISOString().slice(0, 10);
}
