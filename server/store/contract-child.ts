/**
 * The writer the driver contract's kill -9 test runs in a child process (contract.ts):
 * opens a store over the driver named on its command line and commits in a loop from a few
 * concurrent writers (so group commits happen), printing each acknowledged revision on its
 * own line. stdout is a pipe, which Node writes synchronously on Linux: a revision the parent
 * has read was acknowledged before the kill.
 *
 *   node --import tsx contract-child.ts <module URL> <export name> <options JSON>
 *
 * Each mutation at revision r puts group `g<r>` and replaces the secret `counter`, so the
 * parent can tell exactly which commits a reload holds, and in what order.
 */

import { openStore } from "./store.js";
import type { StoreDriver } from "./types.js";

const [moduleUrl, exportName, options] = process.argv.slice(2);
if (!moduleUrl || !exportName || options === undefined) {
  throw new Error("usage: contract-child.ts <module URL> <export name> <options JSON>");
}
const mod = (await import(moduleUrl)) as Record<string, (opts: unknown) => StoreDriver>;
const create = mod[exportName];
if (typeof create !== "function") throw new Error(`${moduleUrl} exports no ${exportName}`);
const store = await openStore(create(JSON.parse(options)));
process.stdout.write(`ready ${store.data.revision}\n`);

// ~300 bytes a record: long enough that a kill often lands inside a write.
const pad = "x".repeat(300);
const writer = async () => {
  for (;;) {
    const rev = await store.mutate((_d, tx) => {
      tx.put("groups", { name: `g${tx.revision}`, createdAt: pad });
      tx.put("secrets", {
        name: "counter",
        env: "COUNTER",
        scope: "global",
        kind: "static",
        provider: "",
        description: String(tx.revision),
        labels: {},
        currentVersion: 1,
        versions: [],
        createdAt: "t",
        updatedAt: "t",
      });
      return tx.revision;
    });
    process.stdout.write(`${rev}\n`);
  }
};
await Promise.all([writer(), writer(), writer(), writer()]);
