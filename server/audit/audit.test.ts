import { describe, expect, test } from "vitest";
import { createLogger } from "../logger.js";
import type { AuditDevice, AuditEntry, AuditKind } from "./audit.js";
import { createAuditBroker } from "./audit.js";

const entry = { requestId: "r1", actor: "local", action: "secret.read", result: "ok" };

/** A device that fails every write, like a full disk. */
const broken: AuditDevice = {
  log: () => Promise.reject(new Error("ENOSPC")),
  close: async () => {},
};

/** A device that keeps what it is given. */
function memory(): AuditDevice & { entries: AuditEntry[] } {
  const entries: AuditEntry[] = [];
  return {
    entries,
    log: async (e) => {
      entries.push(e);
    },
    close: async () => {},
  };
}

function logged() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: "error", write: (l) => lines.push(JSON.parse(l)) });
  return { log, lines };
}

describe("audit broker: a lost entry's effect follows its kind", () => {
  test.each<[AuditKind, boolean]>([
    ["read", true],
    ["report", true],
    ["delivery", false],
    ["change", false],
    ["refusal", false],
  ])("%s: fails the call %s, and is logged either way", async (kind, fails) => {
    const { log, lines } = logged();
    const audit = createAuditBroker([broken], log);
    const one = audit.record(kind, entry);
    const many = audit.recordMany(kind, [entry, entry]);
    if (fails) {
      await expect(one).rejects.toMatchObject({ code: "unavailable" });
      await expect(many).rejects.toMatchObject({ code: "unavailable" });
    } else {
      await expect(one).resolves.toBeUndefined();
      await expect(many).resolves.toBeUndefined();
    }
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ msg: "audit write failed", kind, action: "secret.read" });
  });

  test("one device recording the entry is enough; no device at all is not a loss", async () => {
    const { log, lines } = logged();
    const kept = memory();
    await createAuditBroker([broken, kept], log).record("read", entry);
    expect(kept.entries).toMatchObject([entry]);
    await createAuditBroker([], log).record("read", entry);
    expect(lines).toEqual([]);
  });

  test("reopen reaches every device that has a file, and throws the first failure after trying all", () => {
    const { log } = logged();
    const reopened: string[] = [];
    const device = (name: string, fails: boolean): AuditDevice => ({
      ...memory(),
      reopen: () => {
        reopened.push(name);
        if (fails) throw new Error(`EACCES ${name}`);
      },
    });
    const audit = createAuditBroker([device("a", true), memory(), device("b", false)], log);
    expect(() => audit.reopen()).toThrow("EACCES a");
    expect(reopened).toEqual(["a", "b"]);
  });
});
