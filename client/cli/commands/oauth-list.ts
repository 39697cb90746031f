import type { Timestamp } from "@bufbuild/protobuf/wkt";
import { defineClientCommand } from "../command.js";
import { ago, iso, printJson, printTable } from "../output.js";
import { oauthJson, oauthStateText } from "../views.js";

/** How much of a last error the table shows; `--json` has all of it. */
const ERROR_WIDTH = 48;

/** `oauth list`: every oauth credential's state and refresh schedule. Never a token. */
export default defineClientCommand({
  meta: {
    name: "list",
    alias: ["ls"],
    description: "list OAuth credentials: state, expiry, refreshes, last error (never a token)",
  },
  args: {},
  async run({ client, json }) {
    const res = await client.oauth.listOAuth({});
    if (json) {
      printJson({ credentials: res.credentials.map(oauthJson) });
      return;
    }
    printTable(
      ["NAME", "PRESET", "STATE", "EXPIRES", "LAST-REFRESH", "NEXT-REFRESH", "SCOPE", "LAST-ERROR"],
      res.credentials.map((c) => [
        c.name,
        c.preset,
        oauthStateText(c.state),
        when(c.expiresAt),
        ago(c.lastRefreshAt),
        when(c.nextRefreshAt),
        c.scope,
        truncate(c.lastError, ERROR_WIDTH),
      ]),
    );
  },
});

// --- internal ---

/** A relative time, or empty (shown as `-`) when unset. */
function when(ts: Timestamp | undefined): string {
  return iso(ts) === null ? "" : ago(ts);
}

function truncate(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join("")}…`;
}
