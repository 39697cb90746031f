/**
 * A StoreDriver in memory, for unit tests. It keeps each record as JSON text, as a file or a
 * remote store would: what it loads is a new copy, so a test cannot pass because a record
 * was shared with the store, and a change nobody committed is not in it.
 */
import { SecretsError } from "../../errors.js";
import type { ChangeSet, Section, StoreData, StoreDriver } from "../types.js";
import { emptyStore, SECTIONS } from "../types.js";

/** Options of the memory driver. */
export interface MemoryDriverOptions {
  /** The document it holds from the start, as if committed before. @default none */
  data?: StoreData;
}

/** The memory driver: a StoreDriver, plus what a test needs to look at it. */
export interface MemoryDriver extends StoreDriver {
  /** How many commits it has made durable. */
  readonly commits: number;
  /** A new driver over the same stored state: what a restart of the process would load. */
  reopen(): MemoryDriver;
}

/** A StoreDriver holding the committed records in memory. */
export function createMemoryDriver(opts: MemoryDriverOptions = {}): MemoryDriver {
  return driverOver(opts.data ? stateOf(opts.data) : undefined);
}

// --- internal ---

/** What is "on disk": each record as JSON, by section and name. */
interface State {
  schemaVersion: number;
  revision: number;
  keyring: string;
  sections: Record<Section, Map<string, string>>;
}

interface Shared {
  state: State | undefined;
}

function driverOver(initial: State | undefined, shared: Shared = { state: initial }): MemoryDriver {
  let commits = 0;
  return {
    get commits() {
      return commits;
    },
    reopen: () => driverOver(undefined, shared),
    async load() {
      return shared.state && documentOf(shared.state);
    },
    async commit(set: ChangeSet) {
      const state = shared.state ?? stateOf(emptyStore());
      if (set.revision <= state.revision) {
        throw new SecretsError(
          "internal",
          `commit at revision ${set.revision} is not after revision ${state.revision}`,
        );
      }
      // Everything encoded first: a record that cannot be encoded leaves the state as it was.
      const puts = set.puts.map((p) => [p.section, p.name, JSON.stringify(p.record)] as const);
      const keyring = set.keyring && JSON.stringify(set.keyring);
      for (const d of set.deletes) state.sections[d.section].delete(d.name);
      for (const [section, name, json] of puts) state.sections[section].set(name, json);
      if (keyring !== undefined) state.keyring = keyring;
      state.revision = set.revision;
      shared.state = state;
      commits++;
    },
    async close() {},
  };
}

function stateOf(doc: StoreData): State {
  const sections = {} as State["sections"];
  for (const s of SECTIONS) {
    sections[s] = new Map(Object.entries(doc[s]).map(([n, r]) => [n, JSON.stringify(r)]));
  }
  return {
    schemaVersion: doc.schemaVersion,
    revision: doc.revision,
    keyring: JSON.stringify(doc.keyring),
    sections,
  };
}

function documentOf(state: State): StoreData {
  const doc = emptyStore();
  doc.schemaVersion = state.schemaVersion;
  doc.revision = state.revision;
  doc.keyring = JSON.parse(state.keyring) as StoreData["keyring"];
  for (const s of SECTIONS) {
    const sec = doc[s] as Record<string, unknown>;
    for (const [name, json] of state.sections[s]) sec[name] = JSON.parse(json);
  }
  return doc;
}
