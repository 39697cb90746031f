/**
 * The watch hub: fans every change out to the WatchEnv streams of the VMs whose view it
 * touches. Commits mark VMs dirty; one flush per commit (a group commit's mutations share it)
 * computes each dirty VM's view once per view class (VMs with the same groups and no VM-scoped
 * secret share a view), skips VMs whose view digest did not change, and writes one encoded
 * snapshot per class to all of its streams: the same bytes, serialised and framed once
 * (DESIGN.md: per-stream toBinary doubles the server's loop), which the transport hands
 * straight to each HTTP/2 stream. A slow stream keeps only the newest snapshot pending.
 */
import { createHash } from "node:crypto";
import { invalidArgument, SecretsError } from "../errors.js";
import type { Change, StoreView } from "../store/store.js";
import type { SecretRecord, SecretVersionRecord, VmRecord } from "../store/types.js";
import type { Actor, Deps } from "./context.js";
import { secretAad } from "./context.js";
import type { EnvSnapshotValue, ViewEntry } from "./env.js";
import { computeView } from "./env.js";
import { ENV_NAME } from "./validate.js";

/** What is known of a VM's shim; in memory, rebuilt as shims reconnect. */
export interface PresenceInfo {
  connected: boolean;
  appliedRevision: number;
  /** The last revision at which this VM's view changed. */
  viewRevision: number;
  lastSeen: Date | undefined;
  clientVersion: string;
  lastRestartedUnits: string[];
  lastError: string;
  /**
   * The shim reported a revision this store does not have (it applied something the store
   * lost, or the store was restored from a backup): a fresh snapshot was sent, and this stays
   * set until the shim acknowledges one.
   */
  diverged: boolean;
}

export interface Presence {
  of(vm: string): PresenceInfo;
  connectedCount(): number;
  /** Damaged secrets (current version) in the VM's view: its deliveries fail until healed. */
  damagedIn(vm: string): string[];
}

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

/** A snapshot as sent on streams: `vm` empty, `digest` set. */
export interface StreamSnapshot extends EnvSnapshotValue {
  digest: string;
}

/** One open stream, from the transport's point of view. */
export interface WatchSink<T> {
  /** Encodes a snapshot once; the result is passed to `write` of every stream that gets it. */
  encode(snapshot: StreamSnapshot): T;
  heartbeat(revision: number): T;
  /** Undefined when the frame was taken at once; else settles when the stream can take more. */
  write(frame: T): Promise<void> | undefined;
}

export interface WatchRequest {
  vm: string;
  tokenId: string | undefined;
  sinceRevision: number;
  appliedDigest: string;
  clientVersion: string;
}

export interface AckInput {
  vm: string;
  revision: number;
  restartedUnits: string[];
  omitted: string[];
  clientVersion: string;
  error: string;
}

export interface WatchHubOptions {
  heartbeatMs: number;
  /** @default STREAM_REPLACE_AFTER_MS */
  streamReplaceAfterMs?: number;
}

export function createWatchHub(deps: Deps & WatchHubOptions) {
  const replaceAfterMs = deps.streamReplaceAfterMs ?? STREAM_REPLACE_AFTER_MS;
  const { store, barrier } = deps;
  // Everything the hub keeps of a VM, found with one lookup per VM in a fan-out.
  const slots = new Map<string, Slot>();
  let dirty = new Set<string>();
  /** A global secret changed: every VM is dirty (not 5,000 names added to `dirty`). */
  let dirtyAll = false;
  let flushScheduled = false;
  const auditLater: { revision: number; vms: string[] }[] = [];
  let auditTimer: NodeJS.Timeout | undefined;

  // A fresh daemon knows no history: each view's revision starts at its newest entry's, and a
  // watcher without a matching digest is sent a snapshot (idempotent on the shim).
  for (const vm of Object.keys(store.data.vms)) {
    const view = computeView(store.data, vm);
    const s = slot(vm);
    s.digest = digestOf(view);
    s.info.viewRevision = Math.max(0, ...view.map((e) => e.secret.modRevision));
  }

  const unsubscribe = store.onCommit((_revision, changes) => {
    if (markAffected(store.data, changes, dirty)) dirtyAll = true;
    for (const c of changes) {
      if (c.kind !== "token") continue;
      if (c.vm) closeRevoked(c.vm);
      if (c.admin) closeRevokedAdmin(c.admin);
    }
    if (dirtyAll || dirty.size > 0) requestFlush();
  });

  // Each stream gets a heartbeat every heartbeatMs, but not all in the same turn: streams are
  // dealt into HEARTBEAT_BUCKETS buckets and one bucket is served every heartbeatMs/buckets.
  // 5,000 streams in one burst held the event loop for ~70 ms every interval.
  let bucketTick = 0;
  const heartbeat = setInterval(() => {
    const bucket = bucketTick++ % HEARTBEAT_BUCKETS;
    const frames = new Map<WatchSink<unknown>["heartbeat"], unknown>();
    for (const { watchers } of slots.values()) {
      for (const w of watchers) {
        if (w.bucket !== bucket) continue;
        let frame = frames.get(w.sink.heartbeat);
        if (frame === undefined) {
          frame = w.sink.heartbeat(store.data.revision);
          frames.set(w.sink.heartbeat, frame);
        }
        w.push(frame);
      }
    }
  }, deps.heartbeatMs / HEARTBEAT_BUCKETS);
  heartbeat.unref();

  function slot(vm: string): Slot {
    let s = slots.get(vm);
    if (!s) {
      s = {
        info: {
          connected: false,
          appliedRevision: 0,
          viewRevision: 0,
          lastSeen: undefined,
          clientVersion: "",
          lastRestartedUnits: [],
          lastError: "",
          diverged: false,
        },
        digest: undefined,
        watchers: new Set(),
        groups: undefined,
        classKey: "",
      };
      slots.set(vm, s);
    }
    return s;
  }

  /** Decrypts a view; FAILED_PRECONDITION naming the secret when a ciphertext is damaged. */
  function decrypt(view: ViewEntry[], revision: number): StreamSnapshot {
    const vars = view.map(({ env, secret }) => {
      const v = currentVersion(secret);
      if (deps.damage.has(secret.name, v)) throw deps.damage.error(secret.name, v.version);
      let value: Buffer;
      try {
        value = barrier.openBytes(secretAad(secret.name, v.version), v.ciphertext);
      } catch {
        throw deps.damage.found(secret.name, v);
      }
      return { name: env, value, secret: secret.name, version: v.version, scope: secret.scope };
    });
    return { vm: "", revision, vars, digest: digestOf(view) };
  }

  /** Sends the VM's current view to each of its streams, whatever they last got. */
  function resync(vm: string) {
    const s = slots.get(vm);
    if (!s || s.watchers.size === 0) return;
    const data = store.data;
    const view = computeView(data, vm);
    let snapshot: StreamSnapshot;
    try {
      snapshot = decrypt(view, data.revision);
    } catch (err) {
      for (const w of s.watchers) w.close(err);
      return;
    }
    s.digest = snapshot.digest;
    for (const w of s.watchers) w.push(w.sink.encode(snapshot));
  }

  /** Flushes right after the commit that dirtied VMs: a microtask, so every commit of one
   * group commit is in, and the frames go out in this event-loop turn's sends, not the next. */
  function requestFlush() {
    if (flushScheduled) return;
    flushScheduled = true;
    queueMicrotask(flush);
  }

  function flush() {
    flushScheduled = false;
    const names = dirty;
    const all = dirtyAll;
    dirty = new Set();
    dirtyAll = false;
    const data = store.data;
    const revision = data.revision;
    // One view, digest and frame per class of VMs (same groups, no VM-scoped secret).
    const classes = new Map<string, ViewClass>();
    const delivered: string[] = [];
    const ownScoped = vmsWithOwnSecrets(data);
    // Consecutive VMs mostly share a class, and streams an encoder: remembered, not looked up.
    let lastKey = "";
    let lastClass: ViewClass | undefined;
    let lastEncode: unknown;
    let lastFrame: unknown;

    const visit = (rec: VmRecord) => {
      const vm = rec.name;
      const s = slot(vm);
      let key: string;
      if (ownScoped.size > 0 && ownScoped.has(vm)) {
        key = `vm:${vm}`;
      } else {
        // Group lists are replaced, never edited in place (access.ts): same array, same key.
        if (s.groups !== rec.groups) {
          s.groups = rec.groups;
          s.classKey = `groups:${rec.groups.join(",")}`;
        }
        key = s.classKey;
      }
      let cls = key === lastKey ? lastClass : classes.get(key);
      if (!cls) {
        const view = computeView(data, vm);
        cls = {
          view,
          digest: digestOf(view),
          snapshot: undefined,
          error: undefined,
          frames: new Map(),
        };
        classes.set(key, cls);
      }
      if (cls !== lastClass) {
        lastKey = key;
        lastClass = cls;
        lastEncode = undefined;
      }
      if (s.digest === cls.digest) return;
      s.digest = cls.digest;
      s.info.viewRevision = revision;
      if (s.watchers.size === 0) return;
      for (const w of s.watchers) {
        const encode = w.sink.encode;
        let frame = encode === lastEncode ? lastFrame : cls.frames.get(encode);
        if (frame === undefined) {
          if (cls.error === undefined && cls.snapshot === undefined) {
            // A damaged secret fails the views that need it, never the fan-out (issue #8).
            try {
              cls.snapshot = decrypt(cls.view, revision);
            } catch (err) {
              cls.error = err;
              deps.log.error("delivery failed", { vm, revision, err });
            }
          }
          if (cls.error !== undefined || cls.snapshot === undefined) {
            for (const x of [...s.watchers]) x.close(cls.error);
            return;
          }
          frame = encode(cls.snapshot);
          cls.frames.set(encode, frame);
        }
        lastEncode = encode;
        lastFrame = frame;
        w.push(frame);
      }
      delivered.push(vm);
    };

    // A global change: every VM, straight from the records, in the store's order.
    if (all) for (const rec of Object.values(data.vms)) visit(rec);
    for (const vm of names) {
      const rec = data.vms[vm];
      if (rec) {
        if (!all) visit(rec);
        continue;
      }
      const gone = slots.get(vm);
      if (gone) {
        slots.delete(vm);
        for (const w of gone.watchers) {
          w.close(new SecretsError("not_found", `vm: vm '${vm}' was deleted`));
        }
      }
    }
    if (delivered.length > 0) auditLater.push({ revision, vms: delivered });
    // Record the reads once the frames are on their way: stringifying thousands of audit
    // entries first would hold the event loop before the sockets are written.
    if (auditLater.length > 0 && !auditTimer) auditTimer = setTimeout(writeAudit, 50);
  }

  function writeAudit() {
    auditTimer = undefined;
    const batch = auditLater.splice(0);
    if (batch.length === 0) return;
    const entries = [];
    for (const { revision, vms } of batch) {
      for (const vm of vms) {
        entries.push({
          requestId: "watch",
          actor: `vm:${vm}`,
          action: "env.watch",
          vm,
          revision,
          result: "ok",
        });
      }
    }
    deps.audit.recordMany(entries).catch((err) => deps.log.error("audit write failed", { err }));
  }

  function closeRevoked(vm: string) {
    const valid = new Set((store.data.vms[vm]?.tokens ?? []).map((t) => t.id));
    for (const w of slots.get(vm)?.watchers ?? []) {
      if (w.tokenId !== undefined && !valid.has(w.tokenId)) {
        w.close(new SecretsError("unauthenticated", "authorization: token revoked"));
      }
    }
  }

  /** An admin token revoked (or replaced under its name) ends every stream it opened. */
  function closeRevokedAdmin(name: string) {
    const id = store.data.adminTokens[name]?.id;
    for (const s of slots.values()) {
      for (const w of s.watchers) {
        if (w.admin !== undefined && w.admin.name === name && w.admin.id !== id) {
          w.close(new SecretsError("unauthenticated", "authorization: token revoked"));
        }
      }
    }
  }

  return {
    presence: {
      of: (vm: string) => {
        const s = slot(vm);
        return { ...s.info, connected: s.watchers.size > 0 };
      },
      connectedCount: () => {
        let n = 0;
        for (const s of slots.values()) if (s.watchers.size > 0) n++;
        return n;
      },
      damagedIn: (vm: string) => {
        const data = store.data;
        const damaged = deps.damage.currentNames(data);
        if (damaged.length === 0) return [];
        const names = new Set(damaged);
        return computeView(data, vm)
          .filter((e) => names.has(e.secret.name))
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
      if (!data.vms[req.vm]) throw new SecretsError("not_found", `vm: vm '${req.vm}' not found`);
      if (req.clientVersion.length > 128) {
        throw invalidArgument("client_version", "must be at most 128 characters");
      }
      const s = slot(req.vm);
      const set = s.watchers;
      if (set.size >= MAX_STREAMS_PER_VM) {
        const oldest = set.values().next().value as Watcher<unknown>;
        if (performance.now() - oldest.openedAt < replaceAfterMs) {
          throw new SecretsError(
            "resource_exhausted",
            `vm: vm '${req.vm}' already has ${MAX_STREAMS_PER_VM} WatchEnv streams open; close one, or retry in ${Math.ceil(replaceAfterMs / 1000)} s`,
          );
        }
        oldest.close(
          new SecretsError(
            "resource_exhausted",
            `vm: a new WatchEnv stream for vm '${req.vm}' replaced this one (at most ${MAX_STREAMS_PER_VM})`,
          ),
        );
        set.delete(oldest);
      }
      const p = s.info;
      p.lastSeen = new Date();
      if (req.clientVersion) p.clientVersion = req.clientVersion;
      // A shim ahead of the store holds something the store does not have: it gets a fresh
      // snapshot whatever its digest says, and the VM shows as diverged until it acks one.
      const ahead = req.sinceRevision > data.revision;
      if (ahead) p.diverged = true;
      else if (req.sinceRevision > p.appliedRevision) p.appliedRevision = req.sinceRevision;
      const admin =
        actor.caller.kind === "admin"
          ? { name: actor.caller.name, id: data.adminTokens[actor.caller.name]?.id }
          : undefined;
      const w = new Watcher<T>(sink, req.tokenId, admin);
      set.add(w as Watcher<unknown>);
      const onAbort = () => w.close();
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        const view = computeView(data, req.vm);
        const digest = digestOf(view);
        // A heartbeat first, so that the watcher learns the interval; then the snapshot if
        // the watcher's digest is not the current one.
        w.push(sink.heartbeat(data.revision));
        if (ahead || req.appliedDigest !== digest) {
          w.push(sink.encode(decrypt(view, data.revision)));
          await deps.audit.record({
            requestId: actor.requestId,
            actor: `vm:${req.vm}`,
            action: "env.watch",
            vm: req.vm,
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

    /** Records what a shim applied. */
    async ack(actor: Actor, a: AckInput): Promise<void> {
      if (!store.data.vms[a.vm]) throw new SecretsError("not_found", `vm: vm '${a.vm}' not found`);
      checkAck(a);
      const p = slot(a.vm).info;
      p.lastSeen = new Date();
      const ahead = a.revision > store.data.revision;
      if (ahead) {
        // The shim applied a revision this store never committed (or lost): send it what the
        // store has, and show the VM as diverged until it acknowledges that.
        p.diverged = true;
        resync(a.vm);
      } else if (a.error === "" && (p.diverged || a.revision > p.appliedRevision)) {
        // An ack carrying an error reports a failed apply: the VM still runs what it had.
        p.appliedRevision = a.revision;
        p.diverged = false;
      }
      p.lastRestartedUnits = a.restartedUnits;
      p.lastError = a.error;
      if (a.clientVersion) p.clientVersion = a.clientVersion;
      await deps.audit.record({
        requestId: actor.requestId,
        actor: `vm:${a.vm}`,
        action: "env.ack",
        vm: a.vm,
        revision: a.revision,
        result: ahead ? "diverged" : a.error ? "error" : "ok",
        detail: [
          a.restartedUnits.length ? `restarted ${a.restartedUnits.join(",")}` : "",
          a.omitted.length ? `omitted ${a.omitted.join(",")}` : "",
        ]
          .filter(Boolean)
          .join("; "),
      });
    },

    /** Ends every stream with UNAVAILABLE (shutdown): shims reconnect with backoff. */
    close() {
      unsubscribe();
      clearInterval(heartbeat);
      clearTimeout(auditTimer);
      writeAudit();
      const err = new SecretsError("unavailable", "secretsd is shutting down");
      for (const s of slots.values()) for (const w of s.watchers) w.close(err);
    },
  };
}

export type WatchHub = ReturnType<typeof createWatchHub>;

// --- internal ---

/** Heartbeats are spread over this many slices of the interval. */
const HEARTBEAT_BUCKETS = 16;

const UNIT_NAME = /^[A-Za-z0-9:_.@\\-]{1,255}$/;

/** Acks come from VMs: bounded and well-formed. */
function checkAck(a: AckInput) {
  if (!Number.isSafeInteger(a.revision) || a.revision < 0) {
    throw invalidArgument("revision", "must be a revision number");
  }
  if (a.restartedUnits.length > 256 || !a.restartedUnits.every((u) => UNIT_NAME.test(u))) {
    throw invalidArgument("restarted_units", "must be at most 256 systemd unit names");
  }
  if (a.omitted.length > 1024 || !a.omitted.every((n) => ENV_NAME.test(n))) {
    throw invalidArgument("omitted", "must be at most 1024 env var names");
  }
  if (a.error.length > 1024) throw invalidArgument("error", "must be at most 1024 characters");
  if (a.clientVersion.length > 128) {
    throw invalidArgument("client_version", "must be at most 128 characters");
  }
}

/** What the hub keeps of one VM. */
interface Slot {
  info: PresenceInfo;
  /** Digest of the view last sent (or known applied); undefined until known. */
  digest: string | undefined;
  /** Open streams, oldest first. */
  watchers: Set<Watcher<unknown>>;
  /** The group list `classKey` was made from (lists are replaced, never edited in place). */
  groups: string[] | undefined;
  classKey: string;
}

/** VMs sharing a view in one flush: decrypted and encoded at most once. */
interface ViewClass {
  view: ViewEntry[];
  digest: string;
  snapshot: StreamSnapshot | undefined;
  /** Why the view cannot be delivered (a damaged secret), once tried. */
  error: unknown;
  /** Encoded frame by the sink's encoder (one encoder per transport). */
  frames: Map<unknown, unknown>;
}

/** One stream: writes frames in order; while one is in flight only the newest waits. */
let watcherSeq = 0;

class Watcher<T> {
  /** Which heartbeat bucket this stream is in. */
  readonly bucket = watcherSeq++ % HEARTBEAT_BUCKETS;
  readonly openedAt = performance.now();
  private inFlight = false;
  private pending: T | undefined;
  private finish!: (err?: unknown) => void;
  readonly done: Promise<void>;
  private closed = false;

  constructor(
    readonly sink: WatchSink<T>,
    /** The VM token that opened the stream. */
    readonly tokenId: string | undefined,
    /** The admin token that opened the stream: its name and id then. */
    readonly admin: { name: string; id: string | undefined } | undefined = undefined,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.finish = (err) => (err === undefined ? resolve() : reject(err));
    });
    // The stream may be closed (the per-VM cap, a revocation) before watch() awaits `done`:
    // never an unhandled rejection, which would end the process. watch() still gets the error.
    this.done.catch(() => {});
  }

  push(frame: T) {
    if (this.closed) return;
    if (this.inFlight) {
      this.pending = frame;
      return;
    }
    let wrote: Promise<void> | undefined;
    try {
      wrote = this.sink.write(frame);
    } catch (err) {
      this.close(err);
      return;
    }
    // Taken at once (the common case in a fan-out): no promise per stream.
    if (wrote === undefined) return;
    this.inFlight = true;
    wrote.then(
      () => {
        this.inFlight = false;
        const next = this.pending;
        this.pending = undefined;
        if (next !== undefined) this.push(next);
      },
      (err: unknown) => this.close(err),
    );
  }

  close(err?: unknown) {
    if (this.closed) return;
    this.closed = true;
    this.finish(err);
  }
}

/**
 * What a shim's applied view is compared with on reconnect. It covers each value's ciphertext
 * header and nonce (random per seal), not only names and versions: a version number that a
 * crash let the store hand out again, or a store restored from a backup, can never match a
 * value the shim already holds (issue #8). The nonce is public (it is stored beside the
 * ciphertext) and says nothing about the value.
 */
function digestOf(view: ViewEntry[]): string {
  const h = createHash("sha256");
  for (const { env, secret } of view) {
    const v = currentVersion(secret);
    h.update(`${env}\0${secret.name}\0${v.version}\0${v.ciphertext.slice(0, 40)}\n`);
  }
  return h.digest("base64url").slice(0, 22);
}

function currentVersion(secret: SecretRecord): SecretVersionRecord {
  const v = secret.versions.find((x) => x.version === secret.currentVersion);
  if (!v) throw new SecretsError("internal", `secret '${secret.name}' has no current version`);
  return v;
}

/** VMs with a VM-scoped secret; all others with the same groups share one view. */
function vmsWithOwnSecrets(data: StoreView): Set<string> {
  const out = new Set<string>();
  for (const s of Object.values(data.secrets))
    if (s.scope.startsWith("vm:")) out.add(s.scope.slice(3));
  return out;
}

/**
 * Adds the VMs whose view `changes` may touch to `out`; true when a global secret changed,
 * which touches every VM (the caller then takes them all without listing them).
 */
function markAffected(data: StoreView, changes: readonly Change[], out: Set<string>): boolean {
  let all = false;
  for (const c of changes) {
    if (c.kind === "vm") out.add(c.vm);
    else if (c.kind === "group") for (const v of c.vms) out.add(v);
    else if (c.kind === "secret") {
      for (const scope of c.scopes) {
        if (scope === "global") all = true;
        else if (scope.startsWith("vm:")) out.add(scope.slice(3));
        else if (scope.startsWith("group:")) {
          const g = scope.slice(6);
          for (const v of Object.values(data.vms)) if (v.groups.includes(g)) out.add(v.name);
        }
      }
    }
  }
  return all;
}
