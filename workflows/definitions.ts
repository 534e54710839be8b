/**
 * Names shared by workflows, workers and clients. Defined once here so a client script, the CLI
 * and the workflow cannot disagree on a query name or a task queue.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { StepRecord, TaskState } from '../task/task-run';

/** The task queue Warden's workers poll for agent tasks. */
export const TASK_QUEUE = 'warden-agent-tasks';

/** Workflow type name of an agent task (the exported function is `agentTask`). */
export const AGENT_TASK_WORKFLOW = 'agentTask';

/** Current state of a running task: steps so far, children, status. */
export const taskStateQuery = defineQuery<TaskState>('warden.taskState');

/** A human's decision on an action held for approval. */
export interface ApprovalDecision {
  requestId: string;
  approved: boolean;
  /** Who decided, e.g. `user:alice`. */
  approver: string;
  reason?: string;
}

/** Decides an action the policy engine held for approval. */
export const approvalSignal = defineSignal<[ApprovalDecision]>('warden.approval');

/** A tool call an external agent makes through `warden mcp serve`. */
export interface SessionCall {
  tool: string;
  args: Record<string, unknown>;
  /** The MCP request id, for the record. */
  callId?: string;
}

/**
 * Runs one tool call of an `mcp-client` task as a step (guards, approval, execution) and returns
 * the step. Rejected (by the validator, before anything is recorded) when the session has ended
 * or the call is malformed.
 */
export const sessionCallUpdate = defineUpdate<StepRecord, [SessionCall]>('warden.sessionCall');

/** Ends an `mcp-client` task: its client disconnected. */
export const endSessionSignal = defineSignal<[{ reason?: string }]>('warden.endSession');

/** A tool an `mcp-client` task offers its client. */
export interface SessionTool {
  name: string;
  description: string;
  inputSchema: Record<string, unknown>;
  annotations: { readOnlyHint: boolean; destructiveHint: boolean; idempotentHint: boolean; openWorldHint: boolean };
}

/** The granted tools of an `mcp-client` task, or null until the task has begun (its MCP servers are pinned). */
export const sessionToolsQuery = defineQuery<SessionTool[] | null>('warden.sessionTools');
