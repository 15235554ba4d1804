// "Did you mean ...?": the closest known name by edit distance, for typo'd flags and variables.

/** Damerau-Levenshtein (optimal string alignment): a swap of two neighbours counts as one edit. */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  const at = (i: number, j: number): number => d[i]?.[j] ?? 0;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      (d[i] as number[])[j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * The candidate closest to `word` (case-insensitive), or undefined when none is close enough to be a typo:
 * at most a third of the word's length in edits (at least 1, at most 4).
 */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  const w = word.toLowerCase();
  const limit = Math.min(4, Math.max(1, Math.floor(w.length / 3)));
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const distance = editDistance(w, candidate.toLowerCase());
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  return bestDistance <= limit ? best : undefined;
}

/**
 * yargs' strict-options message ("Unknown argument: recursve", "Unknown arguments: a, b") rewritten to name each
 * flag as typed and suggest the closest known one; undefined for any other message.
 */
export function unknownOptionsMessage(message: string, longOptions: readonly string[]): string | undefined {
  const match = /^Unknown arguments?: (.+)$/.exec(message.trim());
  if (!match?.[1]) return undefined;
  const names = match[1].split(', ').map((n) => n.trim()).filter(Boolean);
  const parts = names.map((name) => {
    const flag = name.length === 1 ? `-${name}` : `--${name}`;
    const near = name.length === 1 ? undefined : closest(name, longOptions);
    return `unknown option ${flag}${near ? ` (did you mean --${near}?)` : ''}`;
  });
  return parts.join('; ');
}
