/**
 * Reconnect delays: capped exponential backoff with full jitter (a uniformly random delay
 * between 0 and min(max, initial·2^attempt)), so that a fleet of shims that lost the server at
 * the same moment does not come back in lockstep.
 */

export interface BackoffConfig {
  readonly initialMs: number;
  readonly maxMs: number;
}

/**
 * The delay before reconnect attempt `attempt` (0 = the first retry).
 * @param random a number in [0, 1), injectable for tests
 */
export function backoffDelay(
  attempt: number,
  cfg: BackoffConfig,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * backoffCap(attempt, cfg));
}

/** The upper bound of the jittered delay of `attempt`: min(max, initial·2^attempt). */
export function backoffCap(attempt: number, cfg: BackoffConfig): number {
  // 2^attempt overflows to Infinity past ~1023; clamp the exponent first.
  const exp = Math.min(Math.max(0, attempt), 52);
  return Math.min(cfg.maxMs, cfg.initialMs * 2 ** exp);
}

/** Resolves after `ms`, or at once when `signal` aborts (never rejects). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done, { once: true });
  });
}
