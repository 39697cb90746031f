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
import type { Change } from "../store/store.js";
import type { StoreData, VmRecord } from "../store/types.js";
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
}

export interface Presence {
  of(vm: string): PresenceInfo;
  connectedCount(): number;
}

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

export function createWatchHub(deps: Deps & { heartbeatMs: number }) {
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
    for (const c of changes) if (c.kind === "token" && c.vm) closeRevoked(c.vm);
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

  function decrypt(view: ViewEntry[], revision: number): StreamSnapshot {
    const vars = view.map(({ env, secret }) => {
      const v = secret.versions.find((x) => x.version === secret.currentVersion);
      if (!v) throw new SecretsError("internal", `secret '${secret.name}' has no current version`);
      return {
        name: env,
        value: barrier.openBytes(secretAad(secret.name, v.version), v.ciphertext),
        secret: secret.name,
        version: v.version,
        scope: secret.scope,
      };
    });
    return { vm: "", revision, vars, digest: digestOf(view) };
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
        cls = { view, digest: digestOf(view), snapshot: undefined, frames: new Map() };
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
          cls.snapshot ??= decrypt(cls.view, revision);
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
      const p = s.info;
      p.lastSeen = new Date();
      if (req.clientVersion) p.clientVersion = req.clientVersion;
      if (req.sinceRevision > p.appliedRevision) p.appliedRevision = req.sinceRevision;
      const w = new Watcher<T>(sink, req.tokenId);
      const set = s.watchers;
      set.add(w as Watcher<unknown>);
      const onAbort = () => w.close();
      signal.addEventListener("abort", onAbort, { once: true });
      try {
        const view = computeView(data, req.vm);
        const digest = digestOf(view);
        // A heartbeat first, so that the watcher learns the interval; then the snapshot if
        // the watcher's digest is not the current one.
        w.push(sink.heartbeat(data.revision));
        if (req.appliedDigest !== digest) {
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
      checkAck(a, store.data.revision);
      const p = slot(a.vm).info;
      p.lastSeen = new Date();
      // An ack carrying an error reports a failed apply: the VM still runs what it had.
      if (a.error === "" && a.revision > p.appliedRevision) p.appliedRevision = a.revision;
      p.lastRestartedUnits = a.restartedUnits;
      p.lastError = a.error;
      if (a.clientVersion) p.clientVersion = a.clientVersion;
      await deps.audit.record({
        requestId: actor.requestId,
        actor: `vm:${a.vm}`,
        action: "env.ack",
        vm: a.vm,
        revision: a.revision,
        result: a.error ? "error" : "ok",
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

/** Acks come from VMs: bounded, well-formed, and never ahead of the store. */
function checkAck(a: AckInput, current: number) {
  if (a.revision > current) {
    throw invalidArgument("revision", `${a.revision} is ahead of the store's revision ${current}`);
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
  /** Encoded frame by the sink's encoder (one encoder per transport). */
  frames: Map<unknown, unknown>;
}

/** One stream: writes frames in order; while one is in flight only the newest waits. */
let watcherSeq = 0;

class Watcher<T> {
  /** Which heartbeat bucket this stream is in. */
  readonly bucket = watcherSeq++ % HEARTBEAT_BUCKETS;
  private inFlight = false;
  private pending: T | undefined;
  private finish!: (err?: unknown) => void;
  readonly done: Promise<void>;
  private closed = false;

  constructor(
    readonly sink: WatchSink<T>,
    readonly tokenId: string | undefined,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.finish = (err) => (err === undefined ? resolve() : reject(err));
    });
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

function digestOf(view: ViewEntry[]): string {
  const h = createHash("sha256");
  for (const { env, secret } of view) {
    h.update(`${env}\0${secret.name}\0${secret.currentVersion}\0${secret.createdAt}\n`);
  }
  return h.digest("base64url").slice(0, 22);
}

/** VMs with a VM-scoped secret; all others with the same groups share one view. */
function vmsWithOwnSecrets(data: Readonly<StoreData>): Set<string> {
  const out = new Set<string>();
  for (const s of Object.values(data.secrets))
    if (s.scope.startsWith("vm:")) out.add(s.scope.slice(3));
  return out;
}

/**
 * Adds the VMs whose view `changes` may touch to `out`; true when a global secret changed,
 * which touches every VM (the caller then takes them all without listing them).
 */
function markAffected(
  data: Readonly<StoreData>,
  changes: readonly Change[],
  out: Set<string>,
): boolean {
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
