/**
 * A fake clock for the refresh scheduler's tests and bench (not used by the daemon): timers in
 * a heap, time advanced by hand. Unlike vitest's fake timers it lets promise reactions run
 * between two timers, so an async `refresh` resolved by a timer is settled at that instant.
 */
import { createIndexedHeap, type HeapItem } from "./scheduler-heap.js";
import type { SchedulerClock } from "./scheduler-timer.js";

/** A {@link SchedulerClock} over the fake clock, counting its own timers. */
export interface CountingClock extends SchedulerClock {
  /** Timers set through this view and not yet fired or cleared. */
  readonly live: number;
  /** Most timers live at once through this view. */
  readonly maxLive: number;
  /** setTimeout calls through this view. */
  readonly sets: number;
}

/** The fake clock. */
export interface FakeClock extends SchedulerClock {
  /** Timers live across all views. */
  readonly live: number;
  /** A view whose timers are counted apart (e.g. the scheduler's, not the simulation's). */
  view(): CountingClock;
  /** Fires every timer due up to `t`, in order, letting promise reactions run after each. */
  runUntil(t: number): Promise<void>;
  /** Moves time to `t` without firing anything (a host suspend; a clock step). */
  jump(t: number): void;
}

/** Creates a fake clock reading `start` (ms since the epoch). */
export function createFakeClock(start = 0): FakeClock {
  let now = start;
  let seq = 0;
  const heap = createIndexedHeap<FakeTimer>(
    (a, b) => a.at < b.at || (a.at === b.at && a.seq < b.seq),
  );

  const makeView = (): CountingClock & { setTimeout(fn: () => void, ms: number): FakeTimer } => {
    const counts = { live: 0, maxLive: 0, sets: 0 };
    return {
      get live() {
        return counts.live;
      },
      get maxLive() {
        return counts.maxLive;
      },
      get sets() {
        return counts.sets;
      },
      now: () => now,
      setTimeout(fn, ms) {
        const t: FakeTimer = { heapPos: -1, at: now + Math.max(0, ms), seq: ++seq, fn, counts };
        heap.push(t);
        counts.sets++;
        counts.live++;
        if (counts.live > counts.maxLive) counts.maxLive = counts.live;
        return t;
      },
      clearTimeout(h) {
        const t = h as FakeTimer;
        if (heap.remove(t)) t.counts.live--;
      },
    };
  };
  const own = makeView();

  return {
    get live() {
      return heap.size;
    },
    now: () => now,
    setTimeout: own.setTimeout,
    clearTimeout: own.clearTimeout,
    view: makeView,
    async runUntil(end) {
      // A refresh resolved by a timer (or rejected before this call) settles in a promise
      // reaction; let those run, and set their timers, before time moves on. The reactions
      // involved are one or two deep.
      await drain();
      for (let t = heap.peek(); t !== undefined && t.at <= end; t = heap.peek()) {
        heap.pop();
        t.counts.live--;
        if (t.at > now) now = t.at;
        t.fn();
        await drain();
      }
      if (end > now) now = end;
    },
    jump(t) {
      now = t;
    },
  };
}

/** A small, fast, seedable PRNG (mulberry32): uniform [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// --- internal ---

async function drain(): Promise<void> {
  await null;
  await null;
}

interface FakeTimer extends HeapItem {
  at: number;
  seq: number;
  fn: () => void;
  counts: { live: number; maxLive: number; sets: number };
}
