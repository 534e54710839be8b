/**
 * Deciding on the next action ahead: an activity that brings the model's next turn back (a tool
 * call, or `placeTask` with the first turn) also makes the policy decision on that turn's first
 * action, so the workflow need not ask in a local activity of its own (one fewer hop per step).
 *
 * Only when the decision cannot depend on the workflow's state: the task's rules have no totals
 * or rates (its counters live in the workflow). Such a decision depends on the action, the effect
 * measured here, provenance and the clock, exactly as `checkPolicy` makes it; it is recorded in
 * history with the activity's result, and the workflow uses it only for that very action object
 * (workflows/task-flow.ts `takePolicyCheck`).
 */
import { trace, type AttributeValue } from '@opentelemetry/api';
import { genAiSpanName, TEMPORAL_ATTR } from '../custody/attributes';
import { policyCheckAttributes, rootWorkflowIdOf } from '../telemetry/warden-span-attributes';
import { resolveClaimChecks } from '../dataplane/claim-check';
import { emptyPolicyState } from '../policies/engine/policy-state';
import type { StepRecord } from '../task/task-run';
import type { Task } from '../task/task-schema';
import { decidePolicy, guardedFor, outputsOf, policyNeedsState, type PolicyCheck } from './check-policy';
import { dataPlaneOf } from './flow-deps';
import type { ActivityDeps } from './index';
import type { ProposedTurn } from './next-turn';

/** Where the agent sits in the task tree (for rules on depth and the agent chain). */
export interface PolicyPlace {
  depth: number;
  chain: string[];
}

/** The decision on `next`'s first action, or undefined when it must be made by the workflow. */
export async function precheckPolicy(deps: ActivityDeps, input: { workflowId: string; task: Task; next: ProposedTurn } & PolicyPlace): Promise<PolicyCheck | undefined> {
  const first = input.next.turn.actions[0];
  if (first?.type !== 'tool' || policyNeedsState(input.task)) return undefined;
  const dp = dataPlaneOf(deps);
  const steps = await dp.chains.read<StepRecord>('transcript', input.next.transcriptRef);
  // Provenance on the real values, claim-checked outputs included (as checkPolicy does).
  const priorOutputs = (await resolveClaimChecks(dp.blobs, outputsOf(steps))) as unknown[];
  const args = (await resolveClaimChecks(dp.blobs, first.args)) as Record<string, unknown>;
  const guarded = await guardedFor(deps, input.task, first.tool);
  // A span of its own: the span of the activity this runs in keeps describing that activity.
  const attributes = { ...policyCheckAttributes(input.task, rootWorkflowIdOf(input.workflowId), input.workflowId, first.tool, first.args), [TEMPORAL_ATTR.workflowId]: input.workflowId };
  const defined = Object.fromEntries(Object.entries(attributes).filter(([, value]) => value !== undefined)) as Record<string, AttributeValue>;
  return (deps.tracer ?? trace.getTracer('warden')).startActiveSpan(genAiSpanName.checkPolicy(first.tool), { attributes: defined }, (span) => {
    try {
      // History keeps the arguments as the turn has them (long values as claim checks).
      return decidePolicy({ task: input.task, workflowId: input.workflowId, depth: input.depth, chain: input.chain, tool: first.tool, args, priorOutputs, state: emptyPolicyState(), now: new Date().toISOString() }, first.args, guarded);
    } finally {
      span.end();
    }
  });
}
