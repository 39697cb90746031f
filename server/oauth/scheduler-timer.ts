/**
 * One precise timer for many due times (issue #10): items wait in a min-heap keyed by due time
 * and a single clock timer is armed for the head, instead of one timer per credential.
 */
import { createIndexedHeap, type HeapItem } from "./scheduler-heap.js";

/** Time and timers; the default is the real ones, tests pass a fake. */
export interface SchedulerClock {
  /** Milliseconds since the epoch. */
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Something with a due time; `seq` breaks ties in insertion order (determinism). */
export interface Timed extends HeapItem {
  due: number;
  seq: number;
}

/** A due-time heap plus the one timer armed for its head. */
export interface DueTimer<T extends Timed> {
  readonly size: number;
  /** Times the timer was (re)armed since creation. */
  readonly arms: number;
  push(item: T): void;
  remove(item: T): boolean;
  /** Removes and returns the head if it is due at `now`. */
  popDue(now: number): T | undefined;
  /** Arms the timer for the head, unless it is already armed no later than the head. */
  arm(): void;
  /** Clears the timer. */
  disarm(): void;
}

/** Node's setTimeout holds at most 2^31-1 ms; a longer wait fires early and re-arms. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Creates an empty, disarmed timer heap that calls `onFire` when its timer fires. */
export function createDueTimer<T extends Timed>(
  clock: SchedulerClock,
  onFire: () => void,
): DueTimer<T> {
  const heap = createIndexedHeap<T>((a, b) => a.due < b.due || (a.due === b.due && a.seq < b.seq));
  let handle: unknown;
  let armedFor: number | undefined;
  let arms = 0;

  const disarm = () => {
    if (handle !== undefined) clock.clearTimeout(handle);
    handle = undefined;
    armedFor = undefined;
  };
  const fire = () => {
    handle = undefined;
    armedFor = undefined;
    onFire();
  };

  return {
    get size() {
      return heap.size;
    },
    get arms() {
      return arms;
    },
    push: (item) => heap.push(item),
    remove: (item) => heap.remove(item),
    popDue(now) {
      const head = heap.peek();
      return head !== undefined && head.due <= now ? heap.pop() : undefined;
    },
    arm() {
      const head = heap.peek();
      if (head === undefined) return disarm();
      // A timer that fires no later than the head is kept: firing early only re-arms, which
      // is cheaper than re-arming on every removal of the head.
      if (armedFor !== undefined && armedFor <= head.due) return;
      disarm();
      const now = clock.now();
      const ms = Math.min(MAX_TIMER_MS, Math.max(0, head.due - now));
      armedFor = now + ms;
      arms++;
      handle = clock.setTimeout(fire, ms);
    },
    disarm,
  };
}
