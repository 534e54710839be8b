/**
 * Every `patched()` decision of the agent workflow, taken once, in its first activation.
 *
 * Why at the start: during replay `patched()` only returns true for a marker in the workflow task
 * being replayed. Asked later (say, right after a local activity), the original run and a replay
 * from scratch can disagree on which workflow task the question falls in (a slow local activity
 * makes the server start a new one), and the replay then fails with a nondeterminism error. The
 * first activation is the same in every run.
 */
import { patched, workflowInfo } from '@temporalio/workflow';
import { WARDEN_SEARCH_ATTRIBUTES } from './search-attributes';
import { CLOSE_PATCHES } from './task-close';

/** Approvals are an authenticated Update (older runs take the unauthenticated signal). */
export const APPROVAL_UPDATE_PATCH = 'approval-update';
/** Call keys name the run and the call (older runs keep `<workflowId>:<step>`). */
export const CALL_KEY_PATCH = 'call-key-run-and-call';
/**
 * The data flow (agent-task-flow.ts): data-plane affinity, references in history, one round trip
 * per step, continue-as-new. Decided in `agentTask` itself, first thing, from the input.
 */
export const DATA_FLOW_PATCH = 'warden-data-flow-1';
/** A sub-agent's file writes are undone per call. */
export const SUBAGENT_FS_UNDO_PATCH = 'subagent-fs-undo';
/** Held actions and their decisions are announced (`notifyApproval`, the approval webhook). */
export const APPROVAL_NOTICE_PATCH = 'warden-approval-notice';

export interface WorkflowPatches {
  approvalUpdate: boolean;
  callKeys: boolean;
  subagentFsUndo: boolean;
  approvalNotices: boolean;
  /** Set `WardenStatus` at the end (only when the task started with it: the namespace has it). */
  statusSearchAttribute: boolean;
  /** A task that did not complete closes as failed, carrying its result (task-close.ts). */
  closeAsFailed: boolean;
}

/** Decides every patch; call once, before the workflow's first command. */
export function decidePatches(isRoot: boolean): WorkflowPatches {
  return {
    approvalUpdate: patched(APPROVAL_UPDATE_PATCH),
    callKeys: patched(CALL_KEY_PATCH),
    // Only sub-agents have a use for it; a root task records no marker.
    subagentFsUndo: !isRoot && patched(SUBAGENT_FS_UNDO_PATCH),
    approvalNotices: patched(APPROVAL_NOTICE_PATCH),
    // Upserting an attribute the namespace does not know would fail the task: only when the starter set it.
    statusSearchAttribute: workflowInfo().typedSearchAttributes.get(WARDEN_SEARCH_ATTRIBUTES.status) !== undefined && patched(CLOSE_PATCHES.statusSearchAttribute),
    closeAsFailed: patched(CLOSE_PATCHES.closeAsFailed),
  };
}

/** Decides the data flow; `agentTask` asks first thing, and only for inputs that can take it. */
export function decideDataFlow(): boolean {
  return patched(DATA_FLOW_PATCH);
}
