/** Summary statistics shared by the bench sections. */

/** The `p`-th percentile (nearest rank) of `sorted`, ascending. NaN when empty. */
export function percentile(sorted: readonly number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? Number.NaN;
}

export interface Summary {
  n: number;
  median: number;
  p99: number;
  min: number;
  max: number;
}

/** Median, p99 (nearest rank), min and max of `samples`. */
export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  return { n: sorted.length, median: percentile(sorted, 50), p99: percentile(sorted, 99), min: sorted[0] ?? Number.NaN, max: sorted.at(-1) ?? Number.NaN };
}

/**
 * Times each operation `samples` times after `warmup` untimed rounds, interleaving them (a, b,
 * a, b, ...; the order alternates each round) so that load on a shared machine falls on all of
 * them alike. Operations get the round's sequence number (0, 1, ... including warm-up rounds).
 * Returns the samples of each operation in milliseconds.
 */
export async function interleave<K extends string>(
  warmup: number,
  samples: number,
  operations: Record<K, (i: number) => unknown>,
): Promise<Record<K, number[]>> {
  const names = Object.keys(operations) as K[];
  const out = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>;
  for (let round = -warmup; round < samples; round += 1) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const started = performance.now();
      const result = operations[name](round + warmup);
      if (result instanceof Promise) await result;
      const elapsed = performance.now() - started;
      if (round >= 0) out[name].push(elapsed);
    }
  }
  return out;
}

/** Like `interleave`, for synchronous operations (no await between samples). */
export function interleaveSync<K extends string>(warmup: number, samples: number, operations: Record<K, (i: number) => unknown>): Record<K, number[]> {
  const names = Object.keys(operations) as K[];
  const out = Object.fromEntries(names.map((name) => [name, [] as number[]])) as Record<K, number[]>;
  for (let round = -warmup; round < samples; round += 1) {
    const order = round % 2 === 0 ? names : [...names].reverse();
    for (const name of order) {
      const started = performance.now();
      operations[name](round + warmup);
      const elapsed = performance.now() - started;
      if (round >= 0) out[name].push(elapsed);
    }
  }
  return out;
}
