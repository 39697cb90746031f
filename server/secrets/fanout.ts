/**
 * The fan-out: what each committed change means for the open WatchEnv streams. Commits mark
 * VMs dirty; one flush per commit (a group commit's mutations share it, as a microtask)
 * computes each dirty VM's view once per view class (VMs with the same groups and no
 * VM-scoped secret share a view), skips VMs whose view digest did not change, and hands one
 * snapshot per class, encoded once per encoder, to all of its streams (DESIGN.md: per-stream
 * serialisation doubles the server's loop). Deliveries are audited in batches after the
 * snapshots are on their way. Also the per-VM slots the hub keeps (presence, digest, streams).
 * A little over 250 lines: the flush is one loop whose bookkeeping (classes, encoders, the
 * class of the previous VM) only reads right together; splitting it would scatter that state.
 */
import { SecretsError } from "../errors.js";
import type { Change, StoreView } from "../store/store.js";
import type { VmRecord } from "../store/types.js";
import type { Deps } from "./context.js";
import type { PresenceInfo } from "./presence.js";
import { newPresenceInfo } from "./presence.js";
import type { ViewEntry } from "./view.js";
import { computeView, digestOf, missingOf } from "./view.js";
import type { StreamSnapshot, Watcher } from "./watcher.js";

/** What the hub keeps of one VM. */
export interface Slot {
  info: PresenceInfo;
  /** Digest of the view last sent (or known applied); undefined until known. */
  digest: string | undefined;
  /** Open streams, oldest first. */
  watchers: Set<Watcher<unknown>>;
  /** The group list `classKey` was made from (lists are replaced, never edited in place). */
  groups: string[] | undefined;
  classKey: string;
}

/** Every VM's slot, made on first use. */
export class Slots {
  private readonly byVm = new Map<string, Slot>();

  /** The slot of `vm`, made empty if there is none. */
  of(vm: string): Slot {
    let s = this.byVm.get(vm);
    if (!s) {
      s = {
        info: newPresenceInfo(),
        digest: undefined,
        watchers: new Set(),
        groups: undefined,
        classKey: "",
      };
      this.byVm.set(vm, s);
    }
    return s;
  }

  /** The slot of `vm` if there is one. */
  peek(vm: string): Slot | undefined {
    return this.byVm.get(vm);
  }

  delete(vm: string): void {
    this.byVm.delete(vm);
  }

  all(): IterableIterator<Slot> {
    return this.byVm.values();
  }

  /** Every open stream. */
  *streams(): Iterable<Watcher<unknown>> {
    for (const s of this.byVm.values()) yield* s.watchers;
  }
}

/**
 * Starts the fan-out over `slots`. `snapshotOf` decrypts a view (FAILED_PRECONDITION for a
 * damaged secret: the streams that need it are closed with that error, nothing else).
 */
export function createFanout(
  deps: Deps,
  slots: Slots,
  snapshotOf: (view: ViewEntry[], revision: number, missing: string[]) => StreamSnapshot,
) {
  const { store } = deps;
  let dirty = new Set<string>();
  /** A global secret changed: every VM is dirty (not 5,000 names added to `dirty`). */
  let dirtyAll = false;
  let flushScheduled = false;
  const auditLater: { revision: number; vms: string[] }[] = [];
  let auditTimer: NodeJS.Timeout | undefined;
  const slot = (vm: string) => slots.of(vm);

  /** Flushes right after the commit that dirtied VMs: a microtask, so every commit of one
   * group commit is in, and the snapshots go out in this event-loop turn, not the next. */
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
    const classes = new Map<string, ViewClass>();
    const delivered: string[] = [];
    const ownScoped = vmsWithOwnSecrets(data);
    // Consecutive VMs mostly share a class, and streams an encoder: remembered, not looked up.
    let lastKey = "";
    let lastClass: ViewClass | undefined;
    let lastEncode: Encoder | undefined;
    let lastMessage: unknown;

    const visit = (rec: VmRecord) => {
      const vm = rec.name;
      const s = slot(vm);
      const key = ownScoped.has(vm) ? `vm:${vm}` : classKeyOf(s, rec);
      let cls = key === lastKey ? lastClass : classes.get(key);
      if (!cls) {
        const view = computeView(data, vm);
        // VMs of one class share their manifests' bindings too (vmsWithOwnSecrets).
        const missing = missingOf(data, vm);
        cls = new ViewClass(view, missing, () => snapshotOf(view, revision, missing));
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
        const encode = w.sink.encode as Encoder;
        const message = encode === lastEncode ? lastMessage : cls.encoded(encode);
        if (message === undefined) {
          // A damaged secret fails the views that need it, never the fan-out (issue #8).
          deps.log.error("delivery failed", { vm, revision, err: cls.error });
          for (const x of [...s.watchers]) x.close(cls.error);
          return;
        }
        lastEncode = encode;
        lastMessage = message;
        w.push(message);
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
      const gone = slots.peek(vm);
      if (gone) {
        slots.delete(vm);
        for (const w of gone.watchers) {
          w.close(new SecretsError("not_found", `vm: vm '${vm}' was deleted`));
        }
      }
    }
    if (delivered.length > 0) auditLater.push({ revision, vms: delivered });
    // Record the deliveries once the snapshots are on their way: stringifying thousands of audit
    // entries first would hold the event loop before the sockets are written.
    if (auditLater.length > 0 && !auditTimer) auditTimer = setTimeout(writeAudit, 50);
  }

  /** The class of a VM without secrets of its own: its groups (lists are replaced, never
   * edited in place, so the same array means the same key). */
  function classKeyOf(s: Slot, rec: VmRecord): string {
    if (s.groups !== rec.groups) {
      s.groups = rec.groups;
      s.classKey = `groups:${rec.groups.join(",")}`;
    }
    return s.classKey;
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
    void deps.audit.recordMany("delivery", entries);
  }

  return {
    /** Marks the VMs `changes` may touch and flushes them after this commit. */
    committed(changes: readonly Change[]) {
      if (markAffected(store.data, changes, dirty)) dirtyAll = true;
      if (dirtyAll || dirty.size > 0) requestFlush();
    },
    /** Writes the deliveries not yet audited; no more are batched after. */
    close() {
      clearTimeout(auditTimer);
      writeAudit();
    },
  };
}

// --- internal ---

/** A sink's encoder, as the cache keys it (one encoder per transport). */
type Encoder = (snapshot: StreamSnapshot) => unknown;

/** VMs sharing a view in one flush: decrypted once, encoded once per encoder. */
class ViewClass {
  readonly digest: string;
  /** Why the view cannot be delivered (a damaged secret), once tried. */
  error: unknown;
  private snapshot: StreamSnapshot | undefined;
  private readonly byEncoder = new Map<Encoder, unknown>();

  constructor(
    view: ViewEntry[],
    missing: readonly string[],
    /** Decrypts the view: called at most once, and only if some stream needs it. */
    private readonly open: () => StreamSnapshot,
  ) {
    this.digest = digestOf(view, missing);
  }

  /** The snapshot encoded by `encode`, or undefined when the view cannot be opened. */
  encoded(encode: Encoder): unknown {
    const hit = this.byEncoder.get(encode);
    if (hit !== undefined) return hit;
    if (this.error !== undefined) return undefined;
    if (!this.snapshot) {
      try {
        this.snapshot = this.open();
      } catch (err) {
        this.error = err;
        return undefined;
      }
    }
    const message = encode(this.snapshot);
    this.byEncoder.set(encode, message);
    return message;
  }
}

/**
 * VMs with a VM-scoped secret or a manifest bound to them alone; all others with the same
 * groups share one view (and the same missing manifest entries: a group's per-VM values are
 * VM-scoped secrets, so a VM that has one is in its own class).
 */
function vmsWithOwnSecrets(data: StoreView): Set<string> {
  const out = new Set<string>();
  for (const s of Object.values(data.secrets))
    if (s.scope.startsWith("vm:")) out.add(s.scope.slice(3));
  for (const m of Object.values(data.manifests))
    if (m.bind.startsWith("vm:")) out.add(m.bind.slice(3));
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
    else if (c.kind === "secret" || c.kind === "manifest") {
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
