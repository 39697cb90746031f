/**
 * "Did you mean": the closest known word to a mistyped command or option, so `secretsctl
 * rotat` and `rotate --plna` say what was probably meant instead of only what was wrong.
 * Close means an optimal-string-alignment (Damerau–Levenshtein) distance of at most 2, or the
 * typed word being a prefix of exactly one candidate; a 1-2 letter word only matches a
 * prefix, since nearly every short word is within 2 edits of another.
 */

/** The largest edit distance still worth suggesting. */
const MAX_DISTANCE = 2;

/**
 * The candidate closest to `word`, or undefined when none is close. Ties go to the candidate
 * listed first, so the result never depends on anything but the inputs.
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const prefixed = candidates.filter((c) => c.startsWith(word) && c !== word);
  if (word.length > 0 && prefixed.length === 1) return prefixed[0];
  if (word.length < 3) return undefined;
  let best: string | undefined;
  let bestDistance = MAX_DISTANCE + 1;
  for (const c of candidates) {
    const d = distance(word, c);
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  return best;
}

/** ` (did you mean X?)` for the closest candidate, else the empty string. */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const hit = closest(word, candidates);
  return hit === undefined ? "" : ` (did you mean ${hit}?)`;
}

/**
 * Optimal string alignment distance: insertions, deletions, substitutions and transpositions
 * of two adjacent letters (`plna` → `plan` is 1) each cost 1.
 */
export function distance(a: string, b: string): number {
  const rows: number[][] = [];
  for (let i = 0; i <= a.length; i++) rows.push([i, ...new Array<number>(b.length).fill(0)]);
  const at = (i: number, j: number): number => rows[i]?.[j] ?? Number.POSITIVE_INFINITY;
  for (let j = 0; j <= b.length; j++) (rows[0] as number[])[j] = j;
  for (let i = 1; i <= a.length; i++) {
    const row = rows[i] as number[];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let d = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        d = Math.min(d, at(i - 2, j - 2) + 1);
      }
      row[j] = d;
    }
  }
  return at(a.length, b.length);
}
