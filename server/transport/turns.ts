/**
 * Runs request work in slices of the event loop, so that answers leave while later requests
 * of the same burst are still being worked on.
 *
 * A client with many calls in flight sends them in bursts; grpc-js hands the whole burst to
 * the handlers in one event-loop turn, and HTTP/2 puts the answers on the socket only when
 * that turn ends. Decrypting 64 GetEnvs in one turn therefore held every answer back until
 * the last was ready (~6 ms), while the client, with nothing to read, sat idle: client and
 * server took turns instead of working at the same time. With a budget per turn, the first
 * answers go out after about one budget and the client works on them while the server goes
 * on with the rest. Work is started in arrival order; the budget bounds only how much starts
 * in one turn (the work itself is never cut). Measured in BENCHMARKS.md (GetEnv).
 */
export interface TurnScheduler {
  /**
   * Starts `fn` now if this turn's budget is not spent and nothing waits before it; else in
   * a later turn, in arrival order. `fn`'s synchronous part is what the budget counts.
   */
  run<T>(fn: () => Promise<T>): Promise<T>;
}

export function createTurnScheduler(budgetMs: number): TurnScheduler {
  const waiting: (() => void)[] = [];
  // Start of the current turn's work; -1 when no turn is open.
  let turnStart = -1;

  const nextTurn = () => {
    turnStart = performance.now();
    while (waiting.length > 0 && performance.now() - turnStart < budgetMs) {
      (waiting.shift() as () => void)();
    }
    if (waiting.length > 0) setImmediate(nextTurn);
    else turnStart = -1;
  };

  return {
    run<T>(fn: () => Promise<T>): Promise<T> {
      const now = performance.now();
      if (turnStart < 0) {
        turnStart = now;
        setImmediate(nextTurn);
      }
      if (waiting.length === 0 && now - turnStart < budgetMs) return fn();
      return new Promise<T>((resolve, reject) => {
        waiting.push(() => {
          fn().then(resolve, reject);
        });
      });
    },
  };
}
