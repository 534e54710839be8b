/**
 * The client side of approvals, for every front end (the CLI, a web console, a webhook): list
 * what waits, and decide one request with a registered approver's key. A decision is signed here
 * over exactly this run, request, action and verdict, and sent as the task's approval Update,
 * whose validator and verifying activity decide whether it counts (workflows/approval-gate.ts).
 *
 * Invariant: the approver's private key never leaves this process; what travels (and lands in
 * history) is the signature over one decision.
 */
import { describeTask } from './task-not-found';
import { readUserFile, UserFileError } from '../regular-file';
import { join } from 'node:path';
import { WorkflowUpdateFailedError, WorkflowUpdateRPCTimeoutOrCancelledError, type Client } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { ApproverError, CredentialError, isErrorCode, WardenError } from '../errors';
import { jsonProblemText } from '../json-syntax';
import { ApproverKeyFileSchema, signApprovalDecision, type ApproverKeyFile } from '../identity/approval-decision';
import { ApproverNameSchema, defaultApproverKeyDir } from '../identity/approver-registry';
import { wellFormed } from '../custody/span-record';
import { callDigestOf } from '../recovery/call-key';
import type { PendingApproval } from '../task/task-run';
import { AGENT_TASK_WORKFLOW, approvalUpdate, taskStateQuery, type ApprovalOutcome } from '../workflows/definitions';

/** One action waiting for a human, with the task it belongs to. */
export interface PendingApprovalEntry extends PendingApproval {
  workflowId: string;
}

/** How long one task may take to answer the listing's query. */
const QUERY_DEADLINE_MS = 2000;

/** A running task that did not answer the listing's query: its waiting actions, if any, are not in the list. */
export interface UnansweredTask {
  workflowId: string;
  /** Why, in a few words: the query's error (e.g. its deadline passed: a busy or absent worker). */
  reason: string;
}

/** What {@link readPendingApprovals} found: the actions waiting, and the running tasks it could not ask. */
export interface PendingApprovalsReading {
  approvals: PendingApprovalEntry[];
  unanswered: UnansweredTask[];
}

/**
 * Every action waiting for approval across running agent tasks, and the running tasks that did
 * not answer. Each task is asked in parallel, for at most QUERY_DEADLINE_MS (2 s): one whose
 * worker is gone must not hold up the list. A task that did not answer may still be waiting for a
 * human, so it is named, never read as "nothing waits" (a console would otherwise drop its card,
 * and what the approver typed, while its worker is busy).
 */
export async function readPendingApprovals(client: Client): Promise<PendingApprovalsReading> {
  const ids: string[] = [];
  for await (const execution of client.workflow.list({ query: `WorkflowType = "${AGENT_TASK_WORKFLOW}" AND ExecutionStatus = "Running"` })) ids.push(execution.workflowId);
  const answers = await Promise.all(
    ids.map(async (workflowId): Promise<{ approvals: PendingApprovalEntry[] } | { unanswered: UnansweredTask }> => {
      const deadline = Date.now() + QUERY_DEADLINE_MS;
      try {
        const state = await client.withDeadline(deadline, () => client.workflow.getHandle(workflowId).query(taskStateQuery));
        return { approvals: (state.pendingApprovals ?? []).map((p) => ({ workflowId, ...p })) };
      } catch (error) {
        return { unanswered: { workflowId, reason: unansweredReason(error, deadline) } };
      }
    }),
  );
  return {
    approvals: answers.flatMap((a) => ('approvals' in a ? a.approvals : [])),
    unanswered: answers.flatMap((a) => ('unanswered' in a ? [a.unanswered] : [])),
  };
}

/**
 * The query's failure in a few words. Past its `deadline` (epoch ms), or with gRPC
 * DEADLINE_EXCEEDED (4) anywhere in the cause chain, it is the deadline, whatever shape the error
 * took: under load the SDK's "Failed to query Workflow" came with no deadline in its chain (a local
 * CI run at load 13). Else the outermost message's first line
 * and, when the outermost says little, the innermost cause's.
 */
export function unansweredReason(error: unknown, deadline: number): string {
  const deadlineReason = `no answer within ${QUERY_DEADLINE_MS / 1000} s (its worker is busy or not running)`;
  if (Date.now() >= deadline) return deadlineReason;
  // Duck-typed: the gRPC cause need not be an Error of this realm.
  let innermost: string | undefined;
  for (let e = error as { code?: unknown; message?: unknown; cause?: unknown } | undefined, depth = 0; typeof e === 'object' && e !== null && depth < 8; e = e.cause as typeof e, depth++) {
    if (e.code === 4 || (typeof e.message === 'string' && /deadline/i.test(e.message))) return deadlineReason;
    if (typeof e.message === 'string' && e.message !== '') innermost = e.message.split('\n')[0]!;
  }
  const outermost = error instanceof Error ? error.message.split('\n')[0]! : String(error);
  return innermost === undefined || innermost === outermost ? outermost : `${outermost}: ${innermost}`;
}

/**
 * Every action waiting for approval across running agent tasks that answered in time
 * ({@link readPendingApprovals}, whose `unanswered` names the tasks left out).
 */
export async function listPendingApprovals(client: Client): Promise<PendingApprovalEntry[]> {
  return (await readPendingApprovals(client)).approvals;
}

/**
 * Reads an approver key file (`warden approvers add` wrote it). Throws ApproverError
 * ERR_APPROVER_INVALID naming the file when it is missing or not a key file; the key itself is
 * never quoted.
 */
export async function readApproverKeyFile(file: string): Promise<ApproverKeyFile> {
  let text: string;
  try {
    // The reader of every user's file (../regular-file.ts): a FIFO is refused, not waited on.
    text = await readUserFile(file, { what: 'the approver key file' });
  } catch (error) {
    if (!(error instanceof UserFileError)) throw error;
    throw new ApproverError('ERR_APPROVER_INVALID', error.message, { details: { file } });
  }
  let parsed: ReturnType<typeof ApproverKeyFileSchema.safeParse>;
  try {
    parsed = ApproverKeyFileSchema.safeParse(JSON.parse(text));
  } catch {
    // Located, never quoted: the file holds a private key.
    throw new ApproverError('ERR_APPROVER_INVALID', `${file} is not an approver key file (not JSON at ${jsonProblemText(text, false)})`, { details: { file } });
  }
  if (!parsed.success) throw new ApproverError('ERR_APPROVER_INVALID', `${file} is not an approver key file (made by \`warden approvers add\`)`, { details: { file } });
  return parsed.data;
}

/**
 * The key file to decide with: `file` when given, else `WARDEN_APPROVER_KEY`, else
 * `<approver key folder>/<WARDEN_APPROVER>.json`. Throws ApproverError ERR_APPROVER_INVALID
 * saying what to do when none is found.
 */
export async function findApproverKeyFile(env: NodeJS.ProcessEnv, file?: string): Promise<ApproverKeyFile> {
  if (file !== undefined) return readApproverKeyFile(file);
  if (env.WARDEN_APPROVER_KEY) return readApproverKeyFile(env.WARDEN_APPROVER_KEY);
  const name = env.WARDEN_APPROVER?.trim().replace(/^user:/, '');
  if (name && ApproverNameSchema.safeParse(name).success) return readApproverKeyFile(join(defaultApproverKeyDir(env), `${name}.json`));
  throw new ApproverError(
    'ERR_APPROVER_INVALID',
    'no approver key: pass --key <file>, or set WARDEN_APPROVER_KEY, or WARDEN_APPROVER=<name> for the key `warden approvers add <name>` wrote',
  );
}

export interface DecideApprovalOptions {
  workflowId: string;
  requestId: string;
  approved: boolean;
  reason?: string;
  key: ApproverKeyFile;
}

/** A rejected or failed Update as the Warden error it stands for. */
function decisionError(error: unknown): WardenError {
  const cause = error instanceof WorkflowUpdateFailedError ? error.cause : error;
  if (cause instanceof ApplicationFailure && isErrorCode(cause.type)) return new CredentialError(cause.type, cause.message);
  if (error instanceof WorkflowUpdateRPCTimeoutOrCancelledError) return new CredentialError('ERR_APPROVAL_NOT_PENDING', 'the task did not take the decision in time; see `warden approvals`');
  return new CredentialError('ERR_APPROVAL_NOT_PENDING', (cause as Error)?.message ?? String(cause));
}

/**
 * Signs and sends one decision. Resolves with the outcome the task recorded; throws a
 * WardenError `ERR_APPROVAL_NOT_PENDING` (no such request waits now) or
 * `ERR_APPROVAL_UNAUTHENTICATED` (the key is not a registered approver's, or was removed).
 */
export async function decideApproval(client: Client, options: DecideApprovalOptions): Promise<ApprovalOutcome> {
  const described = await describeTask(client, options.workflowId);
  // An ended task holds nothing (and its state query needs a worker to replay it): said plainly.
  if (described.status.name !== 'RUNNING') {
    throw new CredentialError('ERR_APPROVAL_NOT_PENDING', `${options.workflowId} has ended (${described.status.name.toLowerCase()}): no action of it waits for approval`, { details: { workflowId: options.workflowId, status: described.status.name } });
  }
  const handle = client.workflow.getHandle(options.workflowId, described.runId);
  const state = await handle.query(taskStateQuery);
  const pending = (state.pendingApprovals ?? []).find((p) => p.requestId === options.requestId);
  if (pending === undefined) {
    throw new CredentialError('ERR_APPROVAL_NOT_PENDING', `${options.workflowId} has no action ${options.requestId} waiting for approval (see warden approvals)`);
  }
  // Mended before it is signed (a lone surrogate becomes U+FFFD), so what is signed is what the task stores.
  const reason = options.reason === undefined ? undefined : wellFormed(options.reason);
  const signature = await signApprovalDecision(options.key, {
    workflowId: options.workflowId,
    runId: described.runId,
    requestId: options.requestId,
    action: callDigestOf(pending.tool, pending.args),
    approved: options.approved,
    ...(reason === undefined ? {} : { reason }),
  });
  try {
    return await handle.executeUpdate(approvalUpdate, {
      args: [{ requestId: options.requestId, approved: options.approved, ...(reason === undefined ? {} : { reason }), signature }],
    });
  } catch (error) {
    throw decisionError(error);
  }
}
