/** Summary statistics shared by the benchmarks. */
export function percentile(sorted: readonly number[], p: number): number {
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return sorted[Math.max(0, index)] ?? Number.NaN;
}

export function summarize(label: string, samples: readonly number[]): string {
  const sorted = [...samples].sort((a, b) => a - b);
  const ms = (v: number) => `${v.toFixed(2)} ms`;
  return `${label}: n=${sorted.length}, median ${ms(percentile(sorted, 50))}, p99 ${ms(percentile(sorted, 99))}, min ${ms(sorted[0] ?? Number.NaN)}, max ${ms(sorted.at(-1) ?? Number.NaN)}`;
}
