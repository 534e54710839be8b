/**
 * Names shared by workflows, workers and clients. Defined once here so a client script, the CLI
 * and the workflow cannot disagree on a query, update or signal name or a task queue.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import { z } from 'zod';
import { isWellFormed } from '../cut-text';
import { sharedOnce } from './shared-modules';
import type { StepRecord, TaskState } from '../task/task-run';

/** The task queue Warden's workers poll for agent tasks. */
export const TASK_QUEUE = 'warden-agent-tasks';

/** Workflow type name of an agent task (the exported function is `agentTask`). */
export const AGENT_TASK_WORKFLOW = 'agentTask';

/** The workflow id of the sub-agent a spawn step starts: `<parent>/<sub-agent>-<step index>`. */
export function subagentWorkflowId(parentWorkflowId: string, subagent: string, stepIndex: number): string {
  return `${parentWorkflowId}/${subagent}-${stepIndex}`;
}

/**
 * The separators Warden puts between a task's workflow id and an id or key it derives from it
 * that is read back by splitting or by prefix. A workflow id a user chooses for a new task holds
 * none of them (client/workflow-id.ts `newWorkflowIdProblem`), so no task's id is another's derived
 * one: `/` is how a tree's ids are read back to their root (rollback and snapshots fall back to the
 * nearest ancestor's records, the custody summary and spans group by the part before the first `/`).
 * Keys that end in a fixed form (call keys `<id>:<run>:<step>:<digest>`, step and claim references
 * `<id>#<n>`) are read from the right and cannot collide whatever the id holds; the MCP session key
 * `<root>#<run>` can (a tree from before runs were kept apart is keyed by its root id alone), so `#`
 * is refused too.
 */
export const DERIVED_ID_SEPARATORS = [
  { separator: '/', derives: "a sub-agent's workflow id (<parent>/<sub-agent>-<step>)" },
  { separator: '#', derives: "the key of a task tree's MCP sessions (<root>#<run>)" },
] as const;

/** Current state of a running task: steps so far, children, status. */
export const taskStateQuery = defineQuery<TaskState>('warden.taskState');

/**
 * A human's decision on an action held for approval, as sent with `approvalUpdate`: the pending
 * request's id and the approver's signature over exactly this decision
 * (identity/approval-decision.ts; made by `client/approvals.ts`).
 */
/**
 * Free text a client sends into a task (an approval's or a kill's reason): well-formed Unicode
 * only, so what the approver signed is what the task stores and its receipt's canonical JSON
 * (RFC 8785) can hold it. Warden's clients mend it before signing (client/approvals.ts,
 * client/kill-task.ts); another client's lone surrogate is rejected by the validator, unstored.
 */
const clientText = () =>
  z
    .string()
    .max(2000)
    .refine(isWellFormed, { error: 'holds a lone UTF-16 surrogate (not well-formed Unicode); send String.prototype.toWellFormed() of it' });

/**
 * A schema built the first time it is asked for on this workflow thread, then the same one, in
 * every later run of the thread too (workflows/shared-modules.ts `sharedOnce`, under `key`). Each
 * workflow run evaluates this module afresh and most runs never see an approval or a kill: their
 * schemas are built by the first run that validates one (issue 17: a run's module evaluation is a
 * quarter of its workflow-thread CPU).
 */
function builtOnUse<T>(key: string, build: () => T): () => T {
  return () => sharedOnce(key, build);
}

const buildApprovalDecisionSchema = () =>
  z.strictObject({
    requestId: z.string().min(1).max(128),
    approved: z.boolean(),
    reason: clientText().optional(),
    /** A flattened JWS by a registered approver's key; verified in an activity, never trusted here. */
    signature: z.unknown(),
  });
/** The approval Update's argument schema (built on first use). */
export const approvalDecisionSchema = builtOnUse('workflows/definitions/approval-decision', buildApprovalDecisionSchema);
export type ApprovalDecision = z.infer<ReturnType<typeof buildApprovalDecisionSchema>>;

/** What an accepted decision returns to the approver. */
export interface ApprovalOutcome {
  requestId: string;
  status: 'approved' | 'denied';
  /** The registered approver whose key signed the decision. */
  approver: string;
}

/**
 * Decides an action held for approval. Its validator accepts only a request that is pending now
 * (no early, late or repeated decision is ever stored); its handler verifies the approver's
 * signature in an activity before the decision counts.
 */
export const approvalUpdate = defineUpdate<ApprovalOutcome, [ApprovalDecision]>('warden.decideApproval');

/** The unauthenticated decision of workflows started before approvals were Updates (kept for their replay only). */
export interface LegacyApprovalDecision {
  requestId: string;
  approved: boolean;
  approver: string;
  reason?: string;
}

/** @deprecated Ignored by tasks started since approvals became an authenticated Update; kept so older histories replay. */
export const approvalSignal = defineSignal<[LegacyApprovalDecision]>('warden.approval');

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

/**
 * `warden kill`: block the task now (no more actions; its credentials and its sub-agents' stop
 * verifying) and remediate it (run its compensations). Signed like an approval decision by a
 * registered approver's key (identity/approval-decision.ts) over this run, the request id
 * `KILL_REQUEST_ID`, the action `KILL_ACTION` and the reason; verified in an activity
 * (`authorizeKill`) before anything happens.
 */
export interface KillRequest {
  reason?: string;
  /** When the operator sent it (ISO 8601), for the kill-to-block time. */
  requestedAt: string;
  /** A flattened JWS by a registered approver's key; verified in an activity, never trusted here. */
  signature: unknown;
}

/** The request id and action a kill's signature names (no held action can have them: those ids are random UUIDs). */
export const KILL_REQUEST_ID = 'warden.kill';
export const KILL_ACTION = 'warden.kill';

/** What a kill did. */
export interface KillOutcome {
  workflowId: string;
  /** `blocked`: it stopped now; `already-blocked`: it was blocked before (now remediating); `ended`: it had already finished its work. */
  status: 'blocked' | 'already-blocked' | 'ended';
  /** The registered approver whose key signed the kill. */
  operator: string;
  alertId?: string;
  /** When its credentials stopped verifying (ISO 8601). */
  blockedAt?: string;
}

/** The shape the kill Update's validator accepts (anything else is rejected before it is stored). */
const buildKillRequestSchema = () =>
  z.strictObject({
    reason: clientText().optional(),
    requestedAt: z.iso.datetime({ offset: true }),
    signature: z.strictObject({ protected: z.string(), payload: z.string(), signature: z.string() }, { error: 'a kill must be signed with a registered approver key (warden kill --key)' }),
  });
/** The kill Update's argument schema (built on first use). */
export const killRequestSchema = builtOnUse('workflows/definitions/kill-request', buildKillRequestSchema);

export const killUpdate = defineUpdate<KillOutcome, [KillRequest]>('warden.kill');

/** A parent's block reaching a running sub-agent; honoured only once the sub-agent's grant is revoked. */
export interface BlockNotice {
  reason: string;
  remediate: boolean;
}

export const blockSignal = defineSignal<[BlockNotice]>('warden.block');
