import type { AuditBroker } from "../audit/audit.js";
import type { Barrier } from "../barrier/barrier.js";
import type { Logger } from "../logger.js";
import type { Store } from "../store/store.js";
import type { Caller } from "./caller.js";
import type { DamageRegistry } from "./damage.js";

/** What every use case depends on; main.ts builds it. */
export interface Deps {
  readonly store: Store;
  readonly barrier: Barrier;
  readonly audit: AuditBroker;
  readonly log: Logger;
  /** Ciphertexts known to be damaged: named, never fatal. */
  readonly damage: DamageRegistry;
}

/** Who asked, for authorization, audit and `created_by`. */
export interface Actor {
  readonly caller: Caller;
  readonly requestId: string;
}

/** The associated data that binds a ciphertext to its secret and version. */
export function secretAad(name: string, version: number): string {
  return `vmauth/secret/${name}/v${version}`;
}
