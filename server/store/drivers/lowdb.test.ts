import { describe, expect, test } from "vitest";
import { createAuditBroker } from "../../audit/audit.js";
import { createBarrier, newMasterKey } from "../../barrier/barrier.js";
import { createLogger } from "../../logger.js";
import { createAccessService } from "../../secrets/access.js";
import { createSecretService } from "../../secrets/secrets.js";
import { openStore } from "../store.js";
import { createStoreSerializer } from "./lowdb.js";
import { createMemoryDriver } from "./memory.js";

describe("createStoreSerializer", () => {
  test("after every kind of change, writes what JSON.stringify would (cache never stale)", async () => {
    const store = await openStore(createMemoryDriver());
    const barrier = await createBarrier(newMasterKey(), null);
    const deps = {
      store,
      barrier,
      audit: createAuditBroker([]),
      log: createLogger({ level: "silent" }),
    };
    const secrets = createSecretService(deps);
    const access = createAccessService(deps);
    const actor = { caller: { kind: "local" } as const, requestId: "t" };
    const serialize = createStoreSerializer();
    const same = () =>
      expect(JSON.parse(serialize(store.data).toString("utf8"))).toEqual(
        JSON.parse(JSON.stringify(store.data)),
      );
    same();
    await access.createGroup(actor, "ml");
    await access.createVm(actor, "vm1", ["ml"]);
    same();
    for (let i = 0; i < 5; i++) await secrets.create(actor, { name: `s${i}`, value: `value-${i}` });
    same();
    await secrets.rotate(actor, "s1", "value-1b");
    same();
    await secrets.update(actor, { name: "s2", env: "OTHER", description: "d", labels: { a: "b" } });
    same();
    await secrets.update(actor, { name: "s3", scope: "group:ml" });
    same();
    await secrets.rollback(actor, "s1", 1);
    same();
    await secrets.remove(actor, "s4");
    same();
    await secrets.create(actor, { name: "s4", value: "again", scope: "vm:vm1" });
    same();
    await access.updateVm(actor, "vm1", [], ["ml"]);
    await access.issueVmToken(actor, "vm1", true);
    same();
    await expect(secrets.create(actor, { name: "s0", value: "dup" })).rejects.toThrow();
    same();
    await access.createGroup(actor, "g2");
    await access.updateVm(actor, "vm1", ["g2"], []);
    same();
    await access.deleteGroup(actor, "g2");
    same();
    await access.revokeVmTokens(actor, "vm1");
    same();
    await secrets.remove(actor, "s4");
    await access.deleteVm(actor, "vm1");
    same();
  });
});
