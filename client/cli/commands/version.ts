/**
 * `version`: secretsctl's version and, when secretsd answers, the server's (GetStatus), so a
 * mismatch between the CLI and the daemon is one command away. secretsd not answering is not
 * an error here (the client's version is still the answer): it is said on stderr, and the
 * JSON has `"server": null`. `--version` stays, printing the client's version alone.
 */
import pkg from "../../../package.json" with { type: "json" };
import { isClientError } from "../../errors.js";
import { defineClientCommand } from "../command.js";
import { currentTarget } from "../connect.js";
import { describeError } from "../errors.js";
import { line, note, printJson } from "../output.js";

export default defineClientCommand({
  meta: { name: "version", description: "print the versions of secretsctl and of secretsd" },
  args: {},
  async run({ client, json }) {
    let server: { version: string; target: string } | null = null;
    try {
      const s = await client.system.getStatus({});
      server = { version: s.version, target: client.target };
    } catch (err) {
      // Only "could not ask": anything else (a bug, a bad reply) is an error as usual.
      if (!isClientError(err)) throw err;
      note(`server version unknown: ${describeError(err, currentTarget()).message}`);
    }
    const clientInfo = { version: pkg.version, node: process.version };
    if (json) {
      printJson({ client: clientInfo, server });
      return;
    }
    line(`client  ${clientInfo.version} (node ${clientInfo.node})`);
    line(`server  ${server ? `${server.version} (${server.target})` : "unknown"}`);
  },
});
