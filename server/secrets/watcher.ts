/**
 * One WatchEnv stream as the hub sees it: messages written in order with back-pressure (while
 * one write is pending only the newest message waits, so a slow stream never queues stale
 * snapshots), and heartbeats spread over the interval.
 */
import type { EnvSnapshotValue } from "./view.js";

/** One open stream, from the transport's point of view. */
export interface WatchSink<T> {
  /** Encodes a snapshot once; the result is passed to `write` of every stream that gets it. */
  encode(snapshot: StreamSnapshot): T;
  heartbeat(revision: number): T;
  /** Undefined when the message was taken at once; else settles when the stream can take more. */
  write(message: T): Promise<void> | undefined;
}

/** A snapshot as sent on streams: `vm` empty, `digest` set. */
export interface StreamSnapshot extends EnvSnapshotValue {
  digest: string;
}

/** Heartbeats are spread over this many slices of the interval. */
const HEARTBEAT_BUCKETS = 16;

let watcherSeq = 0;

/** One stream: writes messages in order; while one is in flight only the newest waits. */
export class Watcher<T> {
  /** Which heartbeat bucket this stream is in. */
  readonly bucket = watcherSeq++ % HEARTBEAT_BUCKETS;
  readonly openedAt = performance.now();
  /** Settles when the stream ends: resolved when the client left, rejected with the reason. */
  readonly done: Promise<void>;
  private inFlight = false;
  private pending: T | undefined;
  private finish!: (err?: unknown) => void;
  private closed = false;

  constructor(
    readonly sink: WatchSink<T>,
    /** The VM token that opened the stream. */
    readonly tokenId: string | undefined,
    /** The admin token that opened the stream: its name, id and record revision then. */
    readonly admin:
      | { name: string; id: string | undefined; modRevision: number | undefined }
      | undefined = undefined,
  ) {
    this.done = new Promise<void>((resolve, reject) => {
      this.finish = (err) => (err === undefined ? resolve() : reject(err));
    });
    // The stream may be closed (the per-VM cap, a revocation) before watch() awaits `done`:
    // never an unhandled rejection, which would end the process. watch() still gets the error.
    this.done.catch(() => {});
  }

  push(message: T) {
    if (this.closed) return;
    if (this.inFlight) {
      this.pending = message;
      return;
    }
    let wrote: Promise<void> | undefined;
    try {
      wrote = this.sink.write(message);
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

  /** Ends the stream: cleanly without `err`, else with it as the stream's status. */
  close(err?: unknown) {
    if (this.closed) return;
    this.closed = true;
    this.finish(err);
  }
}

/**
 * Sends each stream a heartbeat every `intervalMs`, one bucket of streams every
 * intervalMs/HEARTBEAT_BUCKETS: 5,000 streams in one burst held the event loop for ~70 ms
 * every interval. Each sink's heartbeat is encoded once per tick. Returns the stop function.
 */
export function startHeartbeats(
  intervalMs: number,
  streams: () => Iterable<Watcher<unknown>>,
  revision: () => number,
): () => void {
  let tick = 0;
  const timer = setInterval(() => {
    const bucket = tick++ % HEARTBEAT_BUCKETS;
    const encoded = new Map<WatchSink<unknown>["heartbeat"], unknown>();
    for (const w of streams()) {
      if (w.bucket !== bucket) continue;
      let message = encoded.get(w.sink.heartbeat);
      if (message === undefined) {
        message = w.sink.heartbeat(revision());
        encoded.set(w.sink.heartbeat, message);
      }
      w.push(message);
    }
  }, intervalMs / HEARTBEAT_BUCKETS);
  timer.unref();
  return () => clearInterval(timer);
}
