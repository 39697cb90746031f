import { testStoreDriver } from "../contract.js";
import { createMemoryDriver } from "./memory.js";

testStoreDriver("memory", {
  async create() {
    const storage = createMemoryDriver();
    return {
      // Each driver is a restart over the same stored records.
      open: () => storage.reopen(),
      async cleanup() {},
    };
  },
  lacks: {
    tornTail: "no files: a commit is applied whole or not at all",
    compaction: "it keeps one entry per record, so there is nothing to compact",
    killMidWrite: "it lives in the test's process: a killed process takes it along",
  },
});
