/**
 * The watch hub's per-VM stream cap, over the real store (memory driver), barrier and
 * services, with sinks that record frames: refusal while the streams are young, and
 * replacement of the oldest once it is older than `streamReplaceAfterMs`.
 */
import { describe, expect, test } from "vitest";
import { createMemoryDriver } from "../store/drivers/memory.js";
import { openStore } from "../store/store.js";
import { createAccessUseCases } from "./access.js";
import { testDeps } from "./test-deps.js";
import type { WatchSink } from "./watch.js";
import { createWatchHub, MAX_STREAMS_PER_VM } from "./watch.js";

describe("watch hub: streams per VM", () => {
  test("refused while the oldest is young; the oldest replaced once it is old", async () => {
    const deps = await testDeps(await openStore(createMemoryDriver()));
    const actor = { caller: { kind: "local" } as const, requestId: "t" };
    await createAccessUseCases(deps).createVm(actor, "vm1", []);
    const hub = createWatchHub({ ...deps, heartbeatMs: 60_000, streamReplaceAfterMs: 200 });
    const open = () => {
      const ac = new AbortController();
      const frames: string[] = [];
      const sink: WatchSink<string> = {
        encode: () => "snapshot",
        heartbeat: () => "heartbeat",
        write: (f) => {
          frames.push(f);
          return undefined;
        },
      };
      const req = {
        vm: "vm1",
        tokenId: undefined,
        sinceRevision: 0,
        appliedDigest: "",
        clientVersion: "",
      };
      const done = hub.watch(actor, req, sink, ac.signal).then(
        () => undefined,
        (err: unknown) => err,
      );
      return { frames, done, close: () => ac.abort() };
    };
    try {
      const streams = Array.from({ length: MAX_STREAMS_PER_VM }, open);
      await new Promise((r) => setImmediate(r));
      expect(streams.every((s) => s.frames.includes("snapshot"))).toBe(true);
      const refused = open();
      expect(await refused.done).toMatchObject({ code: "resource_exhausted" });
      expect(refused.frames).toEqual([]);
      expect(hub.presence.of("vm1").connected).toBe(true);

      await new Promise((r) => setTimeout(r, 250));
      const replacing = open();
      expect(await streams[0]?.done).toMatchObject({
        code: "resource_exhausted",
        message: expect.stringContaining("replaced this one"),
      });
      await new Promise((r) => setImmediate(r));
      expect(replacing.frames).toContain("snapshot");
      for (const s of [...streams, replacing]) s.close();
      await Promise.all([...streams, replacing].map((s) => s.done));
      expect(hub.presence.of("vm1").connected).toBe(false);
    } finally {
      hub.close();
    }
  });
});
