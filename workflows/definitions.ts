/**
 * Names shared by workflows, workers and clients. Defined once here so a client script, the CLI
 * and the workflow cannot disagree on a query name or a task queue.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import type { TaskState } from '../task/task-run';

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

/**
 * `warden kill`: block the task now (no more actions; its credentials and its sub-agents' stop
 * verifying) and remediate it (run its compensations). The operator is checked in an activity
 * before anything happens (activities/monitor-activities.ts `authorizeKill`).
 */
export interface KillRequest {
  /** Who asks, as they claim it (`user:alice`); checked by `authorizeKill`. */
  operator: string;
  reason?: string;
  /** When the operator sent it (ISO 8601), for the kill-to-block time. */
  requestedAt: string;
  /** Reserved for the operator's signature over this request (approver keys, issue 9). */
  signature?: unknown;
}

/** What a kill did. */
export interface KillOutcome {
  workflowId: string;
  /** `blocked`: it stopped now; `already-blocked`: it was blocked before (now remediating); `ended`: it had already finished its work. */
  status: 'blocked' | 'already-blocked' | 'ended';
  operator: string;
  alertId?: string;
  /** When its credentials stopped verifying (ISO 8601). */
  blockedAt?: string;
}

/** The shape the kill Update's validator accepts (anything else is rejected before it is stored). */
export const KillRequestSchema = z.strictObject({
  operator: z.string().min(1).max(256),
  reason: z.string().max(2000).optional(),
  requestedAt: z.iso.datetime({ offset: true }),
  signature: z.unknown().optional(),
});

export const killUpdate = defineUpdate<KillOutcome, [KillRequest]>('warden.kill');

/** A parent's block reaching a running sub-agent; honoured only once the sub-agent's grant is revoked. */
export interface BlockNotice {
  reason: string;
  remediate: boolean;
}

export const blockSignal = defineSignal<[BlockNotice]>('warden.block');
