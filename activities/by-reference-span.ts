/**
 * The data flow sends activities their task by reference (`taskRef`), so the activity
 * interceptor cannot give their span its GenAI shape (telemetry/gen-ai-spans.ts reads
 * `input.task`) and they run in Temporal's `RunActivity:<type>` span. Once the activity has its
 * task, this gives that span the name and attributes the interceptor would have given it
 * (`chat <model>`, `execute_tool <tool>`, with `temporalActivityType`), so custody, the timeline
 * and GenAI telemetry read both workflow paths alike.
 */
import { trace } from '@opentelemetry/api';
import { Context } from '@temporalio/activity';
import type { Task } from '../task/task-schema';
import { activitySpanOf } from '../telemetry/gen-ai-spans';

export interface ByReferenceSpanInput {
  task: Task;
  workflowId: string;
  rootWorkflowId?: string;
  tool?: string;
  args?: unknown;
  modelCallId?: string;
}

/** Shapes the active activity span as `activityType` with `input` (no-op outside an activity or span). */
export function shapeActivitySpan(activityType: 'proposeTurn' | 'runTool', input: ByReferenceSpanInput): void {
  const span = trace.getActiveSpan();
  if (span === undefined) return;
  let activityId: string;
  try {
    activityId = Context.current().info.activityId;
  } catch {
    return;
  }
  const shape = activitySpanOf(activityType, input, activityId);
  if (shape === undefined) return;
  span.updateName(shape.name);
  span.setAttributes(shape.attributes);
}
