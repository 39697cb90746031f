/**
 * A binary min-heap whose items remember their own position, so that an item can be removed
 * or re-keyed in O(log n) without lazy deletion: the refresh scheduler keeps one timer for the
 * earliest of 10,000 due times (issue #10), and the fake clock of its simulation uses the same
 * structure for its timers.
 */

/** An item that can sit in at most one {@link IndexedHeap} at a time. */
export interface HeapItem {
  /** Position in the heap's array; -1 when the item is in no heap. Owned by the heap. */
  heapPos: number;
}

/** A min-heap ordered by `less`; every operation is O(log n) except `peek` and `size`. */
export interface IndexedHeap<T extends HeapItem> {
  readonly size: number;
  /** The smallest item, without removing it. */
  peek(): T | undefined;
  /** Adds `item`; throws if it already sits in a heap (its `heapPos` is not -1). */
  push(item: T): void;
  /** Removes and returns the smallest item. */
  pop(): T | undefined;
  /** Removes `item` if it is in this heap; returns whether it was. */
  remove(item: T): boolean;
  /** Restores the order after `item`'s key changed in place. */
  update(item: T): void;
  /** True when `item` sits in this heap. */
  has(item: T): boolean;
}

/** Creates an empty heap ordered by `less` (which must be a strict weak order). */
export function createIndexedHeap<T extends HeapItem>(
  less: (a: T, b: T) => boolean,
): IndexedHeap<T> {
  const a: T[] = [];
  const place = (item: T, i: number) => {
    a[i] = item;
    item.heapPos = i;
  };
  const up = (i: number) => {
    const item = a[i] as T;
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = a[p] as T;
      if (!less(item, parent)) break;
      place(parent, i);
      i = p;
    }
    place(item, i);
  };
  const down = (i: number) => {
    const item = a[i] as T;
    const n = a.length;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && less(a[r] as T, a[l] as T) ? r : l;
      const child = a[c] as T;
      if (!less(child, item)) break;
      place(child, i);
      i = c;
    }
    place(item, i);
  };
  const removeAt = (i: number): T => {
    const item = a[i] as T;
    const last = a.pop() as T;
    if (last !== item) {
      place(last, i);
      up(i);
      down(last.heapPos);
    }
    item.heapPos = -1;
    return item;
  };
  const has = (item: T) => item.heapPos >= 0 && a[item.heapPos] === item;

  return {
    get size() {
      return a.length;
    },
    peek: () => a[0],
    push(item) {
      if (item.heapPos !== -1) throw new Error("heap item is already in a heap");
      a.push(item);
      up(a.length - 1);
    },
    pop: () => (a.length === 0 ? undefined : removeAt(0)),
    remove(item) {
      if (!has(item)) return false;
      removeAt(item.heapPos);
      return true;
    },
    update(item) {
      if (!has(item)) return;
      up(item.heapPos);
      down(item.heapPos);
    },
    has,
  };
}
