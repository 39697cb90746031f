import { describe, expect, test } from "vitest";
import { createTurnScheduler } from "./turns.js";

const spin = (ms: number) => {
  const until = performance.now() + ms;
  while (performance.now() < until) {
    // burn CPU, as decryption would
  }
};

describe("turn scheduler", () => {
  test("within the budget, work starts at once", async () => {
    const turns = createTurnScheduler(50);
    const started: number[] = [];
    const done = [1, 2, 3].map((i) =>
      turns.run(async () => {
        started.push(i);
        return i * 10;
      }),
    );
    expect(started).toEqual([1, 2, 3]);
    expect(await Promise.all(done)).toEqual([10, 20, 30]);
  });

  test("once a turn's budget is spent, the rest start in later turns, in arrival order", async () => {
    const turns = createTurnScheduler(2);
    const started: { i: number; turn: number }[] = [];
    let turn = 0;
    const bump = () =>
      setImmediate(() => {
        turn++;
        if (turn < 50) bump();
      });
    bump();
    const done = Array.from({ length: 12 }, (_, i) =>
      turns.run(async () => {
        started.push({ i, turn });
        spin(1);
        if (i === 5) throw new Error("five");
        return i;
      }),
    );
    // Only what fits in one turn's budget started synchronously.
    expect(started.length).toBeGreaterThanOrEqual(1);
    expect(started.length).toBeLessThan(12);
    const results = await Promise.allSettled(done);
    expect(started.map((s) => s.i)).toEqual(Array.from({ length: 12 }, (_, i) => i));
    expect(new Set(started.map((s) => s.turn)).size).toBeGreaterThan(2);
    for (let k = 1; k < started.length; k++) {
      expect((started[k] as { turn: number }).turn).toBeGreaterThanOrEqual(
        (started[k - 1] as { turn: number }).turn,
      );
    }
    expect(results[5]).toMatchObject({ status: "rejected", reason: new Error("five") });
    expect(results[11]).toEqual({ status: "fulfilled", value: 11 });
  });

  test("a call arriving while others wait queues behind them", async () => {
    const turns = createTurnScheduler(1);
    const order: string[] = [];
    const a = turns.run(async () => {
      order.push("a");
      spin(2);
    });
    const b = turns.run(async () => {
      order.push("b");
    });
    expect(order).toEqual(["a"]);
    await a;
    const c = turns.run(async () => {
      order.push("c");
    });
    await Promise.all([b, c]);
    expect(order).toEqual(["a", "b", "c"]);
  });
});
