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

/**
 * How many timed rounds fit in `budgetMs` when one round costs `perRoundMs` (measured on the
 * warm-up rounds), held between `min` and `max`. `min` is what makes the figure worth reading
 * (a p99 needs at least 100 samples to be more than the maximum), so a slow or loaded machine
 * takes longer rather than reporting a thinner figure; `max` is what a quiet machine runs. A
 * per-round cost that is not a positive finite number (no warm-up measured) gives `max`.
 */
export function samplesWithin(budgetMs: number, perRoundMs: number, min: number, max: number): number {
  if (!(min >= 1) || !(max >= min) || !Number.isInteger(min) || !Number.isInteger(max)) throw new RangeError(`samplesWithin: need integers 1 <= min <= max (got ${min}, ${max})`);
  if (!(perRoundMs > 0) || !Number.isFinite(perRoundMs)) return max;
  return Math.max(min, Math.min(max, Math.floor(budgetMs / perRoundMs)));
}

/** Sample bounds of a budgeted measurement: at least `min` and at most `max` rounds, as many as fit `budgetMs`. */
export interface SampleBudget {
  budgetMs: number;
  min: number;
  max: number;
}

/**
 * `interleave` with the number of timed rounds sized by `budget` (samplesWithin) from the wall
 * time of the `warmup` rounds (at least one). Operations get the round's sequence number, warm-up
 * rounds included, as with `interleave`. Returns the samples of each operation and the count.
 */
export async function interleaveWithin<K extends string>(
  warmup: number,
  budget: SampleBudget,
  operations: Record<K, (i: number) => unknown>,
): Promise<{ samples: Record<K, number[]>; n: number }> {
  const rounds = Math.max(1, warmup);
  const started = performance.now();
  await interleave(0, rounds, operations);
  const n = samplesWithin(budget.budgetMs, (performance.now() - started) / rounds, budget.min, budget.max);
  const shifted = Object.fromEntries(Object.entries(operations).map(([name, op]) => [name, (i: number) => (op as (i: number) => unknown)(i + rounds)])) as Record<K, (i: number) => unknown>;
  return { samples: await interleave(0, n, shifted), n };
}
