/**
 * Deciding ahead on the next action (policies/policy-precheck.ts): an activity that brings the
 * model's next turn back (a data-flow tool call with the turn folded in, or `placeTask` with the
 * first turn) also makes the policy decision on the turn's first action, exactly as the workflow's
 * `checkPolicy` local activity would make it, and returns it with the digest of its inputs and the
 * interval of clock times it holds for. The workflow uses it only when its own check's inputs
 * digest the same at a time inside that interval; else it asks the local activity.
 *
 * Custody: the decision is a `check_policy <tool>` span of its own (marked `warden.policy.ahead`),
 * like the local activity's, under the activity that made it.
 */
import { SpanKind, trace } from '@opentelemetry/api';
import { genAiSpanName, TEMPORAL_ATTR, WARDEN_ATTR } from '../custody/attributes';
import type { PolicyState } from '../policies/engine/policy-state';
import { mcpDescriptionsOf, policyInputDigest, taskDigestOf, validityOf, type ClockReading } from '../policies/policy-precheck';
import type { ProvenanceSeed } from '../policies/provenance-seed';
import type { Action } from '../task/task-run';
import type { Task } from '../task/task-schema';
import { policyCheckAttributes, rootWorkflowIdOf } from '../telemetry/warden-span-attributes';
import { decidePolicyCheck, policyEngineFor, type CheckPolicyInput, type PolicyCheck } from './check-policy';
import type { ActivityDeps } from './index';

/** Where the agent sits in the task tree and what it inherited (the check's depth, chain and seed). */
export interface PolicyPlace {
  depth: number;
  chain: string[];
  seed?: ProvenanceSeed;
}

/** Digests of task JSON by task reference (a reference names one content). */
const taskDigests = new Map<string, string>();

function taskDigestByRef(taskRef: string, task: Task): string {
  let digest = taskDigests.get(taskRef);
  if (digest === undefined) {
    digest = taskDigestOf(task);
    if (taskDigests.size >= 1_000) taskDigests.clear();
    taskDigests.set(taskRef, digest);
  }
  return digest;
}

/**
 * How a task's rules read the clock. Conservative: any rule of the time-window or rate form, or
 * whose Cedar text reads `minuteOfDay`, bounds a decision to its minute; every window a rule
 * carries (its stateful spec, its parsed sentence) bounds it by the recent calls.
 */
export function clockReadingOf(task: Task): ClockReading {
  let minute = false;
  const windows = new Set<number>();
  for (const rule of policyEngineFor(task).rules) {
    if (rule.form === 'time-window' || rule.form === 'rate' || (rule.kind === 'cedar' && (rule.measure === 'minuteOfDay' || rule.cedar.includes('minuteOfDay')))) minute = true;
    const parsed = rule.rule as { windowMs?: unknown } | undefined;
    for (const w of [rule.kind === 'stateful' ? (rule.spec as { windowMs?: unknown }).windowMs : undefined, parsed?.windowMs]) {
      if (typeof w === 'number') windows.add(w);
    }
  }
  return { minute, rateWindowsMs: [...windows] };
}

export interface PrecheckInput {
  workflowId: string;
  task: Task;
  taskRef: string;
  /** The first action of the turn the activity brings back. */
  action: Action | undefined;
  /** The transcript head after that turn (every step so far is in it). */
  transcriptRef: string | null;
  place: PolicyPlace;
  /** The policy state the workflow will hold at the check (this step counted). */
  state: PolicyState;
}

/**
 * The decision on `input.action` made ahead, or undefined when there is none to make (not a tool
 * call) or making it failed: the workflow then asks on its own, the activity's own work stands.
 */
export async function precheckPolicy(deps: ActivityDeps, input: PrecheckInput): Promise<PolicyCheck | undefined> {
  const action = input.action;
  if (action?.type !== 'tool') return undefined;
  const atMs = Date.now();
  const check: CheckPolicyInput = {
    task: input.task,
    workflowId: input.workflowId,
    depth: input.place.depth,
    chain: [...input.place.chain],
    tool: action.tool,
    args: action.args,
    priorOutputs: [],
    priorSteps: mcpDescriptionsOf(input.task.tools).map((output) => ({ output })),
    ...(input.transcriptRef === null ? {} : { priorOutputsRef: input.transcriptRef }),
    ...(input.place.seed === undefined ? {} : { seed: input.place.seed }),
    state: input.state,
    now: new Date(atMs).toISOString(),
  };
  const tracer = deps.tracer ?? trace.getTracer('warden');
  const attributes = {
    ...policyCheckAttributes(input.task, rootWorkflowIdOf(input.workflowId), input.workflowId, action.tool, action.args),
    [TEMPORAL_ATTR.workflowId]: input.workflowId,
    [WARDEN_ATTR.policyAhead]: true,
  };
  return tracer.startActiveSpan(genAiSpanName.checkPolicy(action.tool), { kind: SpanKind.INTERNAL, attributes }, async (span) => {
    try {
      const decided = await decidePolicyCheck(deps, check);
      const digest = policyInputDigest({ ...check, taskDigest: taskDigestByRef(input.taskRef, input.task) });
      return { ...decided, precheck: { digest, atMs, ...validityOf(atMs, input.state, clockReadingOf(input.task)) } };
    } catch {
      // The call this rides on did its work; the workflow's own check decides instead.
      return undefined;
    } finally {
      span.end();
    }
  });
}
