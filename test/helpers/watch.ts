/** A WatchEnv stream in a test: its frames, its snapshots, and a wait for a condition. */
import type { VmAuthClient } from "../../client/index.js";
import type { WatchEnvRequest, WatchEnvResponse } from "../../proto/gen/vmauth/v1/env_pb.js";

export interface TestWatch {
  frames: WatchEnvResponse[];
  snapshots(): WatchEnvResponse["event"]["value"][];
  /** Waits until `pred` holds, polling every 20 ms; throws after `ms`. */
  until(pred: () => boolean, ms?: number): Promise<void>;
  /** Settles when the stream ends: undefined, or the error it ended with. */
  done: Promise<unknown>;
  cancel(): void;
}

/** Opens a WatchEnv stream (`req.vm` for an admin's) and collects its frames. */
export function openWatch(
  client: VmAuthClient,
  req: Partial<Pick<WatchEnvRequest, "vm" | "sinceRevision" | "appliedDigest">> = {},
): TestWatch {
  const ac = new AbortController();
  const frames: WatchEnvResponse[] = [];
  const done = (async () => {
    for await (const f of client.env.watchEnv(req, { signal: ac.signal })) frames.push(f);
  })().catch((err: unknown) => err);
  return {
    frames,
    snapshots: () => frames.filter((f) => f.event.case === "snapshot").map((f) => f.event.value),
    async until(pred, ms = 3000) {
      const end = Date.now() + ms;
      while (!pred()) {
        if (Date.now() > end) throw new Error("timed out waiting for frames");
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    done,
    cancel: () => ac.abort(),
  };
}
