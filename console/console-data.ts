/**
 * What the console shows, gathered from Temporal (tasks, their state or result, pending
 * approvals) and the custody ledger (records, their verification). The same sources `warden
 * trace`, `warden approvals` and `warden audit verify` read; nothing here writes anything except
 * {@link ConsoleData.decide}, which signs and sends an approval decision with the approver's key
 * through the one call `warden approve|deny` makes (`client/approvals.ts`).
 */
import type { Client } from '@temporalio/client';
import { z } from 'zod';
import { agentTaskResult } from '../client/start-agent-task';
import { decideApproval, readPendingApprovals, type DecideApprovalOptions, type PendingApprovalsReading } from '../client/approvals';
import type { ApproverKeyFile } from '../identity/approval-decision';
import { LedgerReader } from '../custody/ledger-reader';
import type { LedgerRecord } from '../custody/ledger-record';
import { buildTaskTimeline, type TimelineEntry } from '../custody/task-timeline';
import { verifyLedger, type VerifyReport } from '../custody/verify-ledger';
import { CustodyError, WardenError } from '../errors';
import type { TaskResult, TaskState } from '../task/task-run';
import { rootWorkflowIdOf, sha256OfJson } from '../telemetry/warden-span-attributes';
import { AGENT_TASK_WORKFLOW, taskStateQuery, type ApprovalOutcome } from '../workflows/definitions';
import { WARDEN_SEARCH_ATTRIBUTES } from '../workflows/search-attributes';

/** How many tasks the list shows (newest first). */
export const TASK_LIST_LIMIT = 100;
/** Longest time a whole-ledger verification is shown before it is redone, even if the ledger's head did not move. */
const REVERIFY_MS = 15_000;
/** How many tasks' verifications are kept at once. */
const VERIFY_CACHE_TASKS = 8;
/** How long a running task may take to answer its state query. */
const STATE_QUERY_MS = 3000;

export interface TaskListItem {
  workflowId: string;
  /** Temporal's execution status (`RUNNING`, `COMPLETED`, `FAILED`, ...). */
  execution: string;
  /** Warden's status (`WardenStatus`), else derived from the execution status. */
  status: string;
  user: string | null;
  agent: string | null;
  model: string | null;
  startTime: string | null;
  closeTime: string | null;
}

/** How far a custody record is verified: under a signed checkpoint, signed and chained only, after a break, or absent. */
export type RecordVerification = 'checkpointed' | 'signed' | 'broken' | 'no-record';

export interface ConsoleTimelineEntry extends TimelineEntry {
  verification: RecordVerification;
  /** Hex hash of the record (its id in the chain), when there is one. */
  hash: string | null;
}

export interface TaskDetail {
  workflowId: string;
  execution: string;
  status: string;
  summary: string | null;
  user: string | null;
  agent: string | null;
  model: string | null;
  startTime: string | null;
  closeTime: string | null;
  reason: string | null;
  final: TaskResult['final'];
  /** Sub-agents, depth first: id, agent and status. */
  subagents: { workflowId: string; agent: string; status: string; depth: number }[];
  timeline: ConsoleTimelineEntry[];
  custody: {
    /** Records of the task in the ledger. */
    records: number;
    /** Whole-ledger verification: signatures, hash chain, checkpoints. */
    ok: boolean | null;
    problem: { seq: number; kind: string; message: string } | null;
    /** The latest checkpoint covers every record of the task. */
    checkpointed: boolean;
    latestCheckpoint: { treeSize: number; timestamp: string } | null;
    /** Why there is no verification (no ledger yet). */
    note: string | null;
    /** When the ledger was verified (redone when its head moves, and at least every 15 s even if it does not). */
    verifiedAt: string | null;
  };
  /** This task in the Temporal UI, when it is the embedded server's. */
  temporalUiUrl: string | null;
}

/** What the page may send to decide an approval; anything else is refused with its issues. */
export const DecisionRequestSchema = z.strictObject({
  workflowId: z.string().min(1).max(1000),
  requestId: z.string().min(1).max(100),
  approved: z.boolean(),
  reason: z.string().max(2000).optional(),
});
export type DecisionRequest = z.infer<typeof DecisionRequestSchema>;

/** The approval call (`client/approvals.ts` `decideApproval`; tests may watch it). */
export type DecideApproval = (client: Client, options: DecideApprovalOptions) => Promise<ApprovalOutcome>;

export interface ConsoleDataOptions {
  client: Client;
  /** State folder whose custody ledger is read. */
  stateDir: string;
  /**
   * The key of the registered approver this console decides as (`warden approvers add`); without
   * one the console shows approvals and decides none.
   */
  approverKey?: ApproverKeyFile;
  /** Base of the Temporal web UI (embedded server), for links. */
  temporalUiUrl?: string;
  namespace?: string;
  /** The approval call (default: the CLI's, `decideApproval`). */
  decideApproval?: DecideApproval;
}

/** Why a decision was not made: no approver key, or what the task said. */
export class DecisionRefused extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const keyValue = (value: unknown): string | null => (typeof value === 'string' ? value : null);
const iso = (date: Date | undefined): string | null => (date === undefined ? null : date.toISOString());

function statusOf(execution: string, wardenStatus: unknown): string {
  if (typeof wardenStatus === 'string' && !(wardenStatus === 'running' && execution !== 'RUNNING')) return wardenStatus;
  return execution === 'RUNNING' ? 'running' : execution.toLowerCase();
}

export class ConsoleData {
  private readonly verifyCache = new Map<string, { head: string; report: VerifyReport | undefined; note: string | null; at: number; verifiedAt: string }>();

  constructor(private readonly options: ConsoleDataOptions) {}

  /** The approver's name, or null when this console decides nothing. */
  get approver(): string | null {
    return this.options.approverKey?.name ?? null;
  }

  /** Root agent tasks, newest first, running and past. */
  async tasks(): Promise<TaskListItem[]> {
    const out: TaskListItem[] = [];
    const { user, agent, model, status } = WARDEN_SEARCH_ATTRIBUTES;
    for await (const execution of this.options.client.workflow.list({ query: `WorkflowType = "${AGENT_TASK_WORKFLOW}"` })) {
      // Sub-agents are shown inside their task.
      if (execution.parentExecution !== undefined) continue;
      const attributes = execution.typedSearchAttributes;
      out.push({
        workflowId: execution.workflowId,
        execution: execution.status.name,
        status: statusOf(execution.status.name, attributes.get(status)),
        user: keyValue(attributes.get(user)),
        agent: keyValue(attributes.get(agent)),
        model: keyValue(attributes.get(model)),
        startTime: iso(execution.startTime),
        closeTime: iso(execution.closeTime),
      });
      if (out.length >= TASK_LIST_LIMIT) break;
    }
    return out;
  }

  /** Actions waiting for a human, across running tasks, oldest request first; and the running tasks that did not answer. */
  async approvals(): Promise<PendingApprovalsReading> {
    const reading = await readPendingApprovals(this.options.client);
    return { approvals: reading.approvals.sort((a, b) => a.requestedAt.localeCompare(b.requestedAt)), unanswered: reading.unanswered };
  }

  /**
   * Decides an approval as this console's approver, signed with its key.
   * @throws DecisionRefused `ERR_CONSOLE_READ_ONLY` without a key, else the code the task gave
   *   (`ERR_APPROVAL_NOT_PENDING`, `ERR_APPROVAL_UNAUTHENTICATED`, ...).
   */
  async decide(request: DecisionRequest): Promise<ApprovalOutcome> {
    const key = this.options.approverKey;
    if (key === undefined) throw new DecisionRefused('ERR_CONSOLE_READ_ONLY', 'this console was started without an approver key (warden console --approver <name>); it decides nothing');
    try {
      return await (this.options.decideApproval ?? decideApproval)(this.options.client, { ...request, key });
    } catch (error) {
      if (error instanceof WardenError) throw new DecisionRefused(error.code, error.message);
      throw error;
    }
  }

  /**
   * One task (a root workflow id, or a sub-agent's, which shows its root) with its timeline and
   * custody. Undefined when Temporal does not know the workflow.
   */
  async task(workflowId: string): Promise<TaskDetail | undefined> {
    const taskId = rootWorkflowIdOf(workflowId);
    const handle = this.options.client.workflow.getHandle(taskId);
    let description;
    try {
      description = await handle.describe();
    } catch (error) {
      if ((error as { name?: string }).name === 'WorkflowNotFoundError') return undefined;
      throw error;
    }
    const execution = description.status.name;
    const outcome = await this.outcomeOf(handle, execution);
    const records = this.records(taskId);
    const timeline = buildTaskTimeline(taskId, records, { ...(outcome === undefined ? {} : { result: outcome }), argsSha256: sha256OfJson });
    const { report, note, verifiedAt } = this.verification(taskId);
    const bySeq = new Map(records.map((r) => [r.seq, r]));
    const attributes = description.typedSearchAttributes;
    const { user, agent, model, status } = WARDEN_SEARCH_ATTRIBUTES;
    const subagents: TaskDetail['subagents'] = [];
    const walk = (state: TaskResult | TaskState, depth: number) => {
      for (const child of state.children) {
        subagents.push({ workflowId: child.workflowId, agent: child.agent, status: child.status, depth });
        walk(child, depth + 1);
      }
    };
    if (outcome !== undefined) walk(outcome, 1);
    return {
      workflowId: taskId,
      execution,
      status: outcome !== undefined && 'status' in outcome ? outcome.status : statusOf(execution, attributes.get(status)),
      summary: (await description.staticSummary().catch(() => undefined)) ?? null,
      user: keyValue(attributes.get(user)),
      agent: keyValue(attributes.get(agent)) ?? outcome?.agent ?? null,
      model: keyValue(attributes.get(model)) ?? outcome?.model.id ?? null,
      startTime: iso(description.startTime),
      closeTime: iso(description.closeTime),
      reason: outcome?.reason ?? null,
      final: outcome?.final ?? null,
      subagents,
      timeline: timeline.entries.map((entry) => ({
        ...entry,
        hash: entry.seq === null ? null : (bySeq.get(entry.seq)?.hash ?? null),
        verification: verificationOf(entry.seq, report),
      })),
      custody: {
        records: records.length,
        ok: report?.ok ?? null,
        problem: report?.firstProblem === undefined ? null : { seq: report.firstProblem.seq, kind: report.firstProblem.kind, message: report.firstProblem.message },
        checkpointed: report?.taskCheckpointed === true,
        latestCheckpoint: report?.latestCheckpoint == null ? null : { treeSize: report.latestCheckpoint.treeSize, timestamp: report.latestCheckpoint.timestamp },
        note,
        verifiedAt,
      },
      temporalUiUrl:
        this.options.temporalUiUrl === undefined ? null : `${this.options.temporalUiUrl}/namespaces/${encodeURIComponent(this.options.namespace ?? 'default')}/workflows/${encodeURIComponent(taskId)}`,
    };
  }

  /** A running task's state (asked briefly), or a closed task's result; undefined when neither can be had. */
  private async outcomeOf(handle: ReturnType<Client['workflow']['getHandle']>, execution: string): Promise<TaskResult | TaskState | undefined> {
    try {
      if (execution === 'RUNNING') return await this.options.client.withDeadline(Date.now() + STATE_QUERY_MS, () => handle.query(taskStateQuery));
      if (execution === 'COMPLETED' || execution === 'FAILED') return await agentTaskResult(handle);
    } catch {
      // A running task whose worker is gone, or a workflow that failed before it had a result.
    }
    return undefined;
  }

  private records(taskId: string): LedgerRecord[] {
    let reader: LedgerReader;
    try {
      reader = LedgerReader.open({ stateDir: this.options.stateDir });
    } catch (error) {
      if (error instanceof CustodyError) return [];
      throw error;
    }
    try {
      return reader.records(taskId);
    } finally {
      reader.close();
    }
  }

  /**
   * The ledger verified for `taskId`. Verification reads the whole chain (a gap anywhere could
   * hide the task's records). A result is reused only while the ledger's head (hash and seq of
   * its last record, and the latest checkpoint) is the same and for at most {@link REVERIFY_MS}:
   * a record edited in place leaves the head as it was, so age alone forces the re-verification.
   * `verifiedAt` says how fresh it is.
   */
  private verification(taskId: string): { report: VerifyReport | undefined; note: string | null; verifiedAt: string | null } {
    let head: string;
    try {
      const reader = LedgerReader.open({ stateDir: this.options.stateDir });
      try {
        head = reader.head();
      } finally {
        reader.close();
      }
    } catch {
      return { report: undefined, note: 'no custody ledger in this state folder', verifiedAt: null };
    }
    const cached = this.verifyCache.get(taskId);
    if (cached !== undefined && cached.head === head && Date.now() - cached.at < REVERIFY_MS) return cached;
    let report: VerifyReport | undefined;
    let note: string | null = null;
    try {
      report = verifyLedger({ stateDir: this.options.stateDir }, { taskId });
    } catch (error) {
      note = error instanceof CustodyError ? error.message : String(error);
    }
    const at = Date.now();
    const entry = { head, report, note, at, verifiedAt: new Date(at).toISOString() };
    // A few tasks (tabs) at once; the oldest entry goes first.
    this.verifyCache.delete(taskId);
    this.verifyCache.set(taskId, entry);
    if (this.verifyCache.size > VERIFY_CACHE_TASKS) this.verifyCache.delete(this.verifyCache.keys().next().value as string);
    return entry;
  }
}

/** How far the record `seq` is verified by `report`. */
export function verificationOf(seq: number | null, report: VerifyReport | undefined): RecordVerification {
  if (seq === null || report === undefined) return 'no-record';
  if (report.firstProblem !== undefined && seq >= report.firstProblem.seq) return 'broken';
  if (report.latestCheckpoint !== null && seq < report.latestCheckpoint.treeSize) return 'checkpointed';
  return 'signed';
}
