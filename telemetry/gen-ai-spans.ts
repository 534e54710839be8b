/**
 * The span an activity of a task runs in, in the OpenTelemetry GenAI conventions' terms rather
 * than Temporal's (`RunActivity:<type>`):
 *
 * | activity      | span name               | kind     | operation                          |
 * |---------------|-------------------------|----------|------------------------------------|
 * | `proposeTurn` | `chat <model id>`       | CLIENT   | `gen_ai.operation.name=chat`       |
 * | `runTool`     | `execute_tool <tool>`   | INTERNAL | `gen_ai.operation.name=execute_tool` |
 * | `checkPolicy` | `check_policy <tool>`   | INTERNAL | `warden.operation.name=check_policy` |
 *
 * The agent's own span (`invoke_agent <agent>`) is the workflow run (`workflow-interceptors.ts`).
 * Other activities (grants, recovery) keep Temporal's names. Every span made here carries
 * `temporalActivityType` and `temporalActivityId`, which the history cross-check matches on.
 */
import { SpanKind, type AttributeValue } from '@opentelemetry/api';
import { genAiSpanName, TEMPORAL_ATTR } from '../custody/attributes';
import type { Task } from '../task/task-schema';
import { modelCallAttributes, policyCheckAttributes, rootWorkflowIdOf, toolCallAttributes } from './warden-span-attributes';

export interface ActivitySpanShape {
  name: string;
  kind: SpanKind;
  /** Attributes known at start (the GenAI conventions want these for sampling decisions). */
  attributes: Record<string, AttributeValue>;
}

/** The fields of a task activity's input this module reads; anything else is ignored. */
interface TaskActivityInput {
  task?: Task;
  workflowId?: string;
  rootWorkflowId?: string;
  tool?: string;
  args?: unknown;
  modelCallId?: string;
}

function defined(attributes: Record<string, AttributeValue | undefined>): Record<string, AttributeValue> {
  return Object.fromEntries(Object.entries(attributes).filter((entry): entry is [string, AttributeValue] => entry[1] !== undefined));
}

function looksLikeTask(value: unknown): value is Task {
  const task = value as Partial<Task> | undefined;
  return typeof task?.agent?.name === 'string' && typeof task.agent.model?.id === 'string' && typeof task.user === 'string';
}

/**
 * The GenAI span for one execution of `activityType` with input `input`, or undefined for
 * activities that are no GenAI operation (or an input that is not a task activity's).
 */
export function activitySpanOf(activityType: string, input: unknown, activityId: string): ActivitySpanShape | undefined {
  const given = (typeof input === 'object' && input !== null ? input : {}) as TaskActivityInput;
  if (!looksLikeTask(given.task) || typeof given.workflowId !== 'string') return undefined;
  const { task, workflowId } = given;
  const rootWorkflowId = given.rootWorkflowId ?? rootWorkflowIdOf(workflowId);
  const temporal = { [TEMPORAL_ATTR.activityType]: activityType, [TEMPORAL_ATTR.activityId]: activityId, [TEMPORAL_ATTR.workflowId]: workflowId };
  switch (activityType) {
    case 'proposeTurn':
      return { name: genAiSpanName.chat(task.agent.model.id), kind: SpanKind.CLIENT, attributes: defined({ ...modelCallAttributes(task, rootWorkflowId, workflowId), ...temporal }) };
    case 'runTool':
      if (typeof given.tool !== 'string') return undefined;
      return {
        name: genAiSpanName.executeTool(given.tool),
        kind: SpanKind.INTERNAL,
        attributes: defined({ ...toolCallAttributes(task, rootWorkflowId, workflowId, given.tool, given.args ?? {}, given.modelCallId), ...temporal }),
      };
    case 'checkPolicy':
      if (typeof given.tool !== 'string') return undefined;
      return {
        name: genAiSpanName.checkPolicy(given.tool),
        kind: SpanKind.INTERNAL,
        attributes: defined({ ...policyCheckAttributes(task, rootWorkflowId, workflowId, given.tool, given.args ?? {}), ...temporal }),
      };
    default:
      return undefined;
  }
}
