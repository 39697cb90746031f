/**
 * The use cases' dependencies for unit tests: the real barrier (a fresh master key), an audit
 * broker with no device, a silent logger, and a damage registry, over the given store.
 */
import { createAuditBroker } from "../audit/audit.js";
import { createBarrier, newMasterKey } from "../barrier/barrier.js";
import { createLogger } from "../logger.js";
import type { Store } from "../store/store.js";
import type { Deps } from "./context.js";
import { createDamageRegistry } from "./damage.js";

/** Real dependencies for `store`; nothing is mocked. */
export async function testDeps(store: Store): Promise<Deps> {
  const barrier = await createBarrier(newMasterKey(), null);
  const log = createLogger({ level: "silent" });
  return {
    store,
    barrier,
    audit: createAuditBroker([], log),
    log,
    damage: createDamageRegistry(barrier),
  };
}
