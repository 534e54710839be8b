/**
 * The step and throughput sections' baseline: the same scripted agent on Temporal with no guard.
 * Each step is the Temporal minimum for one agent step, one workflow task and one activity that
 * runs the scripted model turn and the same trivial tool in-process (no grant check, policy,
 * credential, sandbox or custody). Deterministic: imports only @temporalio/workflow.
 */
import { proxyActivities } from '@temporalio/workflow';
import type * as activities from './bare-activities';

const { bareAgentStep } = proxyActivities<typeof activities>({ startToCloseTimeout: '1 minute' });

export interface BareTaskResult {
  /** When each tool step's tool started (ms since the epoch, the activity's clock). */
  startedAt: number[];
  outputs: unknown[];
  final: string;
}

/** Runs `steps` tool steps and a final turn, like a scripted Warden task of `steps` tool calls. */
export async function bareAgentTask(steps: number): Promise<BareTaskResult> {
  const startedAt: number[] = [];
  const outputs: unknown[] = [];
  for (let turn = 0; ; turn += 1) {
    const result = await bareAgentStep(turn, steps);
    if (result.final !== undefined) return { startedAt, outputs, final: result.final };
    if (result.toolStartedAt !== undefined) startedAt.push(result.toolStartedAt);
    outputs.push(result.output);
  }
}
