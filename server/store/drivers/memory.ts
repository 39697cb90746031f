import type { StoreData, StoreDriver } from "../types.js";

/** A StoreDriver in memory, for unit tests. Saves a deep copy, as a file would. */
export function createMemoryDriver(): StoreDriver & { saves: number } {
  let saved: string | undefined;
  const driver = {
    saves: 0,
    async load() {
      return saved === undefined ? undefined : (JSON.parse(saved) as StoreData);
    },
    async save(data: StoreData) {
      saved = JSON.stringify(data);
      driver.saves++;
    },
    async close() {},
  };
  return driver;
}
