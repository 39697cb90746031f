/** Small parsers for option values; each throws UsageError naming the option. */
import { UsageError } from "./errors.js";

/** `k=v` pairs from repeated `--label` options. */
export function parseLabels(pairs: readonly string[]): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new UsageError("--label must be KEY=VALUE");
    labels[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return labels;
}

/** A whole number from `min` up, for versions and limits. */
export function parseCount(what: string, raw: string | undefined, min = 1): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^[0-9]{1,9}$/.test(raw) || Number(raw) < min) {
    throw new UsageError(`${what} must be a whole number of at least ${min}`);
  }
  return Number(raw);
}
