/**
 * Preloaded (`--import`) into a spawned secretsd run with `--expose-gc`: SIGUSR2 runs two full
 * collections, then prints `{"event":"gc"}` on stderr. A test that then reads VmRSS from
 * /proc/<pid>/status measures what the daemon still holds, not garbage it has yet to collect.
 */
const gc = (globalThis as { gc?: () => void }).gc;
process.on("SIGUSR2", () => {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  const mem = { heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, rss: m.rss };
  process.stderr.write(`${JSON.stringify({ event: "gc", collected: gc !== undefined, ...mem })}\n`);
});
