/**
 * What a recorded span stands for in a task: an agent's run, a model turn, a tool call, a policy
 * check, the start of a (sub-)task, or something else. One place decides it, for the timeline,
 * the history cross-check and the exporter's end-of-task test.
 *
 * Spans are recognised by attributes, not names alone: since the GenAI naming (`chat <model>`,
 * `execute_tool <tool>`, `invoke_agent <agent>`) the name carries the model, tool or agent, and
 * the Temporal activity type is in `temporalActivityType`. Records written before that
 * (`RunActivity:<type>`, `RunWorkflow:<type>`) are still recognised, so older ledgers keep
 * cross-checking against their histories.
 *
 * Plain functions of `(name, attributes)` with no imports but constants: usable on a live span
 * and on a stored record body alike.
 */
import { GEN_AI_ATTR, GEN_AI_OPERATION, TEMPORAL_ATTR, WARDEN_ATTR, WARDEN_OPERATION } from './attributes';

export type SpanRole = 'agent-run' | 'model-turn' | 'tool-call' | 'policy-check' | 'task-start' | 'other';

/** Legacy span name prefixes of `@temporalio/interceptors-opentelemetry`. */
const RUN_ACTIVITY_PREFIX = 'RunActivity:';
const RUN_WORKFLOW_PREFIX = 'RunWorkflow:';
const START_PREFIXES = ['StartWorkflow:', 'StartChildWorkflow:'];

/** Activity types whose runs are a model turn, a tool call and a policy check. */
export const ACTIVITY_ROLES: Readonly<Record<string, SpanRole>> = {
  proposeTurn: 'model-turn',
  runTool: 'tool-call',
  checkPolicy: 'policy-check',
};

/**
 * The Temporal activity type a span ran (activity execution spans only, never the workflow's
 * `StartActivity:*` spans): `temporalActivityType`, else the legacy `RunActivity:<type>` name.
 */
export function activityTypeOfSpan(name: string, attributes: Readonly<Record<string, unknown>>): string | undefined {
  const type = attributes[TEMPORAL_ATTR.activityType];
  if (typeof type === 'string' && type !== '') return type;
  return name.startsWith(RUN_ACTIVITY_PREFIX) ? name.slice(RUN_ACTIVITY_PREFIX.length) : undefined;
}

/** The role of a span, from its name and attributes (see the module header). */
export function spanRoleOf(name: string, attributes: Readonly<Record<string, unknown>>): SpanRole {
  const activityType = activityTypeOfSpan(name, attributes);
  if (activityType !== undefined) return ACTIVITY_ROLES[activityType] ?? 'other';
  // The data flow folds a model call into the activity that brings its turn (a tool call, or
  // placing the task): a GenAI `chat` span of its own inside that activity.
  if (attributes[GEN_AI_ATTR.operationName] === GEN_AI_OPERATION.chat) return 'model-turn';
  // Likewise a policy decision made ahead on the turn's first action (policies/policy-precheck.ts).
  if (attributes[WARDEN_ATTR.operationName] === WARDEN_OPERATION.checkPolicy) return 'policy-check';
  if (attributes[GEN_AI_ATTR.operationName] === GEN_AI_OPERATION.invokeAgent || name.startsWith(RUN_WORKFLOW_PREFIX)) return 'agent-run';
  if (START_PREFIXES.some((prefix) => name.startsWith(prefix))) return 'task-start';
  return 'other';
}
