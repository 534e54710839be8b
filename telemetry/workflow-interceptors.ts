/**
 * Not a workflow: the workflow interceptor module Warden bundles into its workflow code (see
 * `WORKFLOW_INTERCEPTOR_MODULES`). It is Temporal's OpenTelemetry workflow interceptors with two
 * changes:
 * - an agent task's run span is `invoke_agent <agent>` with the GenAI agent attributes (name, id,
 *   conversation = the task's root workflow id) and Warden's task attributes, and records how the
 *   task ended (`warden.outcome`, and `error.type` when it did not complete);
 * - queries make no span: following a task polls it, and a read changes nothing.
 *
 * Runs inside the workflow sandbox: deterministic code only (no Node APIs, no clock, no I/O);
 * renaming a span or setting attributes issues no Temporal command, so histories are unaffected.
 */
import { trace } from '@opentelemetry/api';
import { OpenTelemetryInboundInterceptor, OpenTelemetryInternalsInterceptor, OpenTelemetryOutboundInterceptor } from '@temporalio/interceptors-opentelemetry/lib/workflow';
import { ApplicationFailure, CancelledFailure, workflowInfo, type Next, type QueryInput, type WorkflowExecuteInput, type WorkflowInboundCallsInterceptor, type WorkflowInterceptorsFactory } from '@temporalio/workflow';
import { GEN_AI_ATTR, GEN_AI_OPERATION, genAiSpanName, OTEL_ATTR, WARDEN_ATTR } from '../custody/attributes';
import { AGENT_TASK_WORKFLOW } from '../workflows/definitions';

interface AgentTaskArgs {
  task?: { user?: unknown; agent?: { name?: unknown; model?: { id?: unknown; version?: unknown } } };
}

/** The status a task ended with, from its result or from the failure it closed with (the result rides in its details). */
function statusOf(outcome: unknown): string | undefined {
  const status = (outcome as { status?: unknown } | undefined)?.status;
  if (typeof status === 'string') return status;
  if (outcome instanceof ApplicationFailure || outcome instanceof CancelledFailure) return statusOf(outcome.details?.[0]);
  return undefined;
}

/** Names the active (run) span after the agent and sets the attributes known at start. */
function nameAgentRun(args: unknown[]): boolean {
  const span = trace.getActiveSpan();
  const task = (args[0] as AgentTaskArgs | undefined)?.task;
  const agent = task?.agent?.name;
  if (span === undefined || typeof agent !== 'string') return false;
  const info = workflowInfo();
  const rootWorkflowId = info.root?.workflowId ?? info.workflowId;
  span.updateName(genAiSpanName.invokeAgent(agent));
  span.setAttributes({
    [GEN_AI_ATTR.operationName]: GEN_AI_OPERATION.invokeAgent,
    [GEN_AI_ATTR.agentName]: agent,
    [GEN_AI_ATTR.agentId]: info.workflowId,
    [GEN_AI_ATTR.conversationId]: rootWorkflowId,
    [WARDEN_ATTR.taskId]: rootWorkflowId,
    [WARDEN_ATTR.agentId]: `agent:${agent}@${info.workflowId}`,
    // Sub-agents are `<parent>/<sub-agent>-<n>`: the depth is the number of slashes.
    [WARDEN_ATTR.agentDepth]: info.workflowId.split('/').length - 1,
  });
  if (typeof task?.user === 'string') span.setAttribute(WARDEN_ATTR.user, task.user);
  if (typeof task?.agent?.model?.id === 'string') span.setAttribute(GEN_AI_ATTR.requestModel, task.agent.model.id);
  return true;
}

function recordOutcome(outcome: unknown): void {
  const status = statusOf(outcome);
  const span = trace.getActiveSpan();
  if (span === undefined || status === undefined) return;
  span.setAttribute(WARDEN_ATTR.outcome, status);
  if (status !== 'completed') span.setAttribute(OTEL_ATTR.errorType, status);
}

class AgentTaskInboundInterceptor extends OpenTelemetryInboundInterceptor {
  override async execute(input: WorkflowExecuteInput, next: Next<WorkflowInboundCallsInterceptor, 'execute'>): Promise<unknown> {
    if (workflowInfo().workflowType !== AGENT_TASK_WORKFLOW) return super.execute(input, next);
    return super.execute(input, async (inner) => {
      const named = nameAgentRun(inner.args as unknown[]);
      try {
        const result = await next(inner);
        if (named) recordOutcome(result);
        return result;
      } catch (error) {
        if (named) recordOutcome(error);
        throw error;
      }
    });
  }

  override async handleQuery(input: QueryInput, next: Next<WorkflowInboundCallsInterceptor, 'handleQuery'>): Promise<unknown> {
    return next(input);
  }
}

export const interceptors: WorkflowInterceptorsFactory = () => ({
  inbound: [new AgentTaskInboundInterceptor()],
  outbound: [new OpenTelemetryOutboundInterceptor()],
  internals: [new OpenTelemetryInternalsInterceptor()],
});
