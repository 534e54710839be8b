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
  /** Workflow time (ms since the epoch) at which each tool step began. */
  startedAt: number[];
  outputs: unknown[];
  final: string;
}

/** Runs `steps` tool steps and a final turn, like a scripted Warden task of `steps` tool calls. */
export async function bareAgentTask(steps: number): Promise<BareTaskResult> {
  const startedAt: number[] = [];
  const outputs: unknown[] = [];
  for (let turn = 0; ; turn += 1) {
    if (turn < steps) startedAt.push(Date.now());
    const result = await bareAgentStep(turn, steps);
    if (result.final !== undefined) return { startedAt, outputs, final: result.final };
    outputs.push(result.output);
  }
}
