/**
 * The watch hub: WatchEnv and AckEnv. It opens streams (at most MAX_STREAMS_PER_VM per VM),
 * sends each its first snapshot, ends the streams of a revoked token or a deleted VM, and
 * resyncs a shim that is ahead of the store. What a commit means for the open streams is the
 * fan-out's (fanout.ts); one stream's back-pressure and heartbeats are watcher.ts's; presence
 * and acks presence.ts's; the view and its one decryption path view.ts's.
 */
import { SecretsError } from "../errors.js";
import type { Actor, Deps } from "./context.js";
import { vmOf } from "./env.js";
import { createFanout, Slots } from "./fanout.js";
import type { AckInput, Presence } from "./presence.js";
import { applyAck, checkAck, checkClientVersion } from "./presence.js";
import type { ViewEntry } from "./view.js";
import { computeView, digestOf, missingOf, openPlan, planView } from "./view.js";
import type { StreamSnapshot, WatchSink } from "./watcher.js";
import { startHeartbeats, Watcher } from "./watcher.js";

export type { AckInput, Presence, PresenceInfo } from "./presence.js";
export type { StreamSnapshot, WatchSink } from "./watcher.js";

/**
 * At most this many WatchEnv streams per VM. One more is refused with RESOURCE_EXHAUSTED before
 * any work is done for it, unless the oldest has been open for `streamReplaceAfterMs`: then
 * the oldest is closed instead, so a shim reconnecting over a flaky network is never locked
 * out by its own half-dead streams, while a token opening streams in a loop costs one cheap
 * refusal each (every accepted stream decrypts, encodes and audits a snapshot: ~2.6 ms).
 */
export const MAX_STREAMS_PER_VM = 8;

/** @see MAX_STREAMS_PER_VM */
export const STREAM_REPLACE_AFTER_MS = 30_000;

/** A WatchEnv call as the hub takes it; `vm` as the caller named it ("" for its own). */
export interface WatchRequest {
  vm: string;
  sinceRevision: number;
  appliedDigest: string;
  clientVersion: string;
}

export interface WatchHubOptions {
  heartbeatMs: number;
  /** @default STREAM_REPLACE_AFTER_MS */
  streamReplaceAfterMs?: number;
}

export function createWatchHub(deps: Deps & WatchHubOptions) {
  const replaceAfterMs = deps.streamReplaceAfterMs ?? STREAM_REPLACE_AFTER_MS;
  const { store } = deps;
  // Everything the hub keeps of a VM, found with one lookup per VM in a fan-out.
  const slots = new Slots();
  const slot = (vm: string) => slots.of(vm);
  const fanout = createFanout(deps, slots, snapshotOf);

  // A fresh daemon knows no history: each view's revision starts at its newest entry's, and a
  // watcher without a matching digest is sent a snapshot (idempotent on the shim).
  for (const vm of Object.keys(store.data.vms)) {
    const view = computeView(store.data, vm);
    const s = slot(vm);
    s.digest = digestOf(view, missingOf(store.data, vm));
    s.info.viewRevision = Math.max(0, ...view.map((e) => e.secret.modRevision));
  }

  const unsubscribe = store.onCommit((_revision, changes) => {
    fanout.committed(changes);
    for (const c of changes) {
      if (c.kind !== "token") continue;
      if (c.vm) closeRevoked(c.vm);
      if (c.admin) closeRevokedAdmin(c.admin);
    }
  });

  const stopHeartbeats = startHeartbeats(
    deps.heartbeatMs,
    () => slots.streams(),
    () => store.data.revision,
  );

  /** The snapshot of `view` as streams get it; FAILED_PRECONDITION naming a damaged secret. */
  function snapshotOf(view: ViewEntry[], revision: number, missing: string[]): StreamSnapshot {
    const vars = openPlan(deps, planView(deps, view));
    return { vm: "", revision, vars, missing, digest: digestOf(view, missing) };
  }

  /** Sends the VM's current view to each of its streams, whatever they last got. */
  function resync(vm: string) {
    const s = slots.peek(vm);
    if (!s || s.watchers.size === 0) return;
    const data = store.data;
    let snapshot: StreamSnapshot;
    try {
      snapshot = snapshotOf(computeView(data, vm), data.revision, missingOf(data, vm));
    } catch (err) {
      for (const w of s.watchers) w.close(err);
      return;
    }
    s.digest = snapshot.digest;
    for (const w of s.watchers) w.push(w.sink.encode(snapshot));
  }

  function closeRevoked(vm: string) {
    const valid = new Set((store.data.vms[vm]?.tokens ?? []).map((t) => t.id));
    for (const w of slots.peek(vm)?.watchers ?? []) {
      if (w.tokenId !== undefined && !valid.has(w.tokenId)) {
        w.close(new SecretsError("unauthenticated", "authorization: token revoked"));
      }
    }
  }

  /**
   * An admin token revoked or replaced under its name, or its user's role or teams changed
   * (any put of the record), ends every stream it opened: a stream may not outlive the role
   * that allowed it. The client reconnects and is checked as what it now is.
   */
  function closeRevokedAdmin(name: string) {
    const rec = store.data.adminTokens[name];
    for (const w of slots.streams()) {
      if (
        w.admin !== undefined &&
        w.admin.name === name &&
        (w.admin.id !== rec?.id || w.admin.modRevision !== rec?.modRevision)
      ) {
        const why =
          w.admin.id !== rec?.id ? "token revoked" : "the user's role or teams changed; reconnect";
        w.close(new SecretsError("unauthenticated", `authorization: ${why}`));
      }
    }
  }

  /** Room for one more stream of `vm`, or RESOURCE_EXHAUSTED (see MAX_STREAMS_PER_VM). */
  function makeRoom(vm: string, set: Set<Watcher<unknown>>) {
    if (set.size < MAX_STREAMS_PER_VM) return;
    const oldest = set.values().next().value as Watcher<unknown>;
    if (performance.now() - oldest.openedAt < replaceAfterMs) {
      throw new SecretsError(
        "resource_exhausted",
        `vm: vm '${vm}' already has ${MAX_STREAMS_PER_VM} WatchEnv streams open; close one, or retry in ${Math.ceil(replaceAfterMs / 1000)} s`,
      );
    }
    oldest.close(
      new SecretsError(
        "resource_exhausted",
        `vm: a new WatchEnv stream for vm '${vm}' replaced this one (at most ${MAX_STREAMS_PER_VM})`,
      ),
    );
    set.delete(oldest);
  }

  return {
    presence: {
      of: (vm: string) => {
        const s = slot(vm);
        return { ...s.info, connected: s.watchers.size > 0 };
      },
      connectedCount: () => {
        let n = 0;
        for (const s of slots.all()) if (s.watchers.size > 0) n++;
        return n;
      },
      damagedIn: (vm: string) => {
        const data = store.data;
        const damaged = new Set(deps.damage.currentNames(data));
        if (damaged.size === 0) return [];
        return computeView(data, vm)
          .filter((e) => damaged.has(e.secret.name))
          .map((e) => e.secret.name);
      },
    } satisfies Presence,

    /**
     * Serves one WatchEnv stream until the client goes away (`signal`), the token is
     * revoked or the VM is deleted (rejects with the reason).
     */
    async watch<T>(
      actor: Actor,
      req: WatchRequest,
      sink: WatchSink<T>,
      signal: AbortSignal,
    ): Promise<void> {
      const data = store.data;
      const vm = vmOf(data, actor.caller, req.vm);
      checkClientVersion(req.clientVersion);
      const s = slot(vm);
      const set = s.watchers;
      makeRoom(vm, set);
      const p = s.info;
      p.lastSeen = new Date();
      if (req.clientVersion) p.clientVersion = req.clientVersion;
      // A shim ahead of the store holds something the store does not have: it gets a fresh
      // snapshot whatever its digest says, and the VM shows as diverged until it acks one.
      const ahead = req.sinceRevision > data.revision;
      if (ahead) p.diverged = true;
      else if (req.sinceRevision > p.appliedRevision) p.appliedRevision = req.sinceRevision;
      const c = actor.caller;
      const w = new Watcher<T>(
        sink,
        c.kind === "vm" ? c.tokenId : undefined,
        c.kind === "admin"
          ? {
              name: c.name,
              id: data.adminTokens[c.name]?.id,
              modRevision: data.adminTokens[c.name]?.modRevision,
            }
          : undefined,
      );
      set.add(w as Watcher<unknown>);
      const onAbort = () => w.close();
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        const view = computeView(data, vm);
        const missing = missingOf(data, vm);
        // A heartbeat first, so that the watcher learns the interval; then the snapshot if
        // the watcher's digest is not the current one.
        w.push(sink.heartbeat(data.revision));
        if (ahead || req.appliedDigest !== digestOf(view, missing)) {
          w.push(sink.encode(snapshotOf(view, data.revision, missing)));
          await deps.audit.record("delivery", {
            requestId: actor.requestId,
            actor: `vm:${vm}`,
            action: "env.watch",
            vm,
            revision: data.revision,
            result: "ok",
          });
        }
        await w.done;
      } finally {
        signal.removeEventListener("abort", onAbort);
        set.delete(w as Watcher<unknown>);
        p.lastSeen = new Date();
      }
    },

    /** Records what a shim applied; an ack ahead of the store resyncs the VM. */
    async ack(actor: Actor, input: AckInput): Promise<void> {
      const vm = vmOf(store.data, actor.caller, input.vm);
      const a = { ...input, vm };
      checkAck(a);
      const outcome = applyAck(slot(vm).info, a, store.data.revision);
      if (outcome === "ahead") resync(vm);
      await deps.audit.record("report", {
        requestId: actor.requestId,
        actor: `vm:${vm}`,
        action: "env.ack",
        vm,
        revision: a.revision,
        result: outcome === "ahead" ? "diverged" : outcome,
        detail: [
          a.restartedUnits.length ? `restarted ${a.restartedUnits.join(",")}` : "",
          a.omitted.length ? `omitted ${a.omitted.join(",")}` : "",
          a.missing?.length ? `missing ${a.missing.map((m) => m.split(" ")[0]).join(",")}` : "",
        ]
          .filter(Boolean)
          .join("; "),
      });
    },

    /** Ends every stream with UNAVAILABLE (shutdown): shims reconnect with backoff. */
    close() {
      unsubscribe();
      stopHeartbeats();
      fanout.close();
      const err = new SecretsError("unavailable", "secretsd is shutting down");
      for (const w of slots.streams()) w.close(err);
    },
  };
}

export type WatchHub = ReturnType<typeof createWatchHub>;

// --- internal ---
