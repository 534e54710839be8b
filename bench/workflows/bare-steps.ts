/**
 * The baseline of the step benchmark: a bare Temporal workflow that runs the same trivial
 * activity as the guarded task's tool, one after another, with no model turn, no guard, no
 * sandbox. Deterministic workflow code (bundled on its own for the benchmark's bare worker).
 */
import { proxyActivities } from '@temporalio/workflow';

export interface BareActivities {
  add(input: { a: number; b: number }): Promise<number>;
}

const { add } = proxyActivities<BareActivities>({ startToCloseTimeout: '1 minute' });

/** Runs `steps` activities in sequence; returns their sum. */
export async function bareSteps(steps: number): Promise<number> {
  let total = 0;
  for (let i = 0; i < steps; i += 1) total += await add({ a: i, b: 1 });
  return total;
}
