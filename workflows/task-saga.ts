/**
 * The task's saga: after each effect, how to undo it; when the task ends, either the root commits
 * the task tree's files (a completed sub-agent hands its compensations to its parent instead), or
 * every compensation runs, newest first, and a pre-task snapshot is restored if something could
 * not be undone.
 */
import { compensationFor, compensationOf, overlayCompensation, type Compensation } from '../recovery/compensation';
import { resolveTool } from '../tools/tool-catalog';
import type { TaskRecovery, TaskResult } from '../task/task-run';
import type { Task } from '../task/task-schema';
import { summarized } from './activity-stubs';
import type { AgentRun } from './agent-run';
import { stepErrorOf, TaskEnded } from './task-ended';
import { DataPlaneLost, SAGA_CALL } from './task-flow';
import type { FileWrite } from '../task/data-refs';
import { DataPlaneAffinity } from './data-plane-affinity';

/** Where the saga's effects live: the task tree and this task's grant. */
export interface SagaScope {
  task: Task;
  /** The task as the saga's activities receive it (MCP lists by digest), when it differs from `task`. */
  activityTask?: Task;
  rootWorkflowId: string;
  /** The root's first run id, when the tree's recovery state is keyed by run. */
  rootRunId?: string;
  /** True for the task the user started (it owns the tree's overlay and snapshot). */
  isRoot: boolean;
}

export { SUBAGENT_FS_UNDO_PATCH } from './workflow-patches';
import type { WorkflowPatches } from './workflow-patches';

export class TaskSaga {
  /** How to undo each effect so far, oldest first. */
  readonly compensations: Compensation[] = [];
  /** Effects that cannot be undone, as `#<step> <tool>: <why>`. */
  readonly notUndoable: string[] = [];
  /** Whether the root took a pre-task snapshot (`snapshot: true`). */
  snapshotTaken = false;
  /** The data flow revoked the task's grant together with its commit. */
  revoked = false;
  /**
   * Every file this task's calls (and its completed sub-agents) reported writing, in order: what
   * the root's commit must find in the overlay (commit-proof patch).
   */
  readonly writes: FileWrite[] = [];

  constructor(
    private readonly scope: SagaScope,
    private readonly patches: Pick<WorkflowPatches, 'subagentFsUndo'> & Partial<Pick<WorkflowPatches, 'commitFailureResult' | 'subagentProgramUndo' | 'commitProof' | 'toolUndoStarted'>>,
  ) {}

  /** This task's calls registered in doubt of their start (patch `warden-tool-undo-started`): call id -> step index. */
  private readonly inDoubt = new Map<string, number>();

  /** The task with its MCP tool lists pinned: compensation reads those tools' descriptors; activities get `activityTask`. */
  useTask(task: Task, activityTask: Task = task): void {
    this.scope.task = task;
    this.scope.activityTask = activityTask;
  }

  /** The task tree's overlay is thrown away as a whole when the task does not complete. */
  registerOverlay(taskKey: string): void {
    this.compensations.push(overlayCompensation(taskKey));
  }

  /**
   * Registers how to undo one tool call, also a failed one: it may have changed rows before failing.
   * @param callId the call's idempotency key (`<workflowId>:<stepIndex>`)
   * @param startInDoubt registered without a result (lost, ended, failed): with patch
   *   `warden-tool-undo-started` its compensating tool runs only if the call's start record says it started
   */
  registerToolCall(tool: string, stepIndex: number, callId: string, args: Record<string, unknown>, output: unknown, startInDoubt = false): void {
    // The tool's descriptor says how it is undone (and when it cannot be), whatever runs it.
    const descriptor = resolveTool(this.scope.task, tool);
    // A sub-agent's file writes are undone per call; histories from before keep their commands.
    const context = { callId, args, journaled: true, ...(this.patches.subagentFsUndo ? { overlayUndo: true } : {}) };
    const plan = descriptor === undefined ? compensationFor(tool, output, context) : compensationOf(descriptor, output, context);
    if (descriptor?.executor.kind === 'process' && this.patches.subagentProgramUndo === true) {
      // A sub-agent's program: what it changed in the overlay was recorded per call (run-tool).
      this.compensations.push({ kind: 'fs-overlay-undo', callId, forTool: tool });
      return;
    }
    const doubted = startInDoubt && this.patches.toolUndoStarted === true;
    // Journal undo (SQL, overlay) of a call that never started finds nothing under its id: only a compensating tool acts regardless.
    this.compensations.push(...(doubted ? plan.compensations.map((c) => (c.kind === 'tool' ? { ...c, startedOnly: true as const } : c)) : plan.compensations));
    if (doubted) this.inDoubt.set(callId, stepIndex);
    if (!plan.undoable) this.notUndoable.push(`#${stepIndex} ${tool}: ${plan.note}`);
  }

  /**
   * A compensation that ran nothing because its call's start record says it never started
   * (`not-run`: this task's step is then recorded not run) or because this worker could not say
   * (`unknown`: listed as possibly run and not undone). False for any other outcome, which is reported.
   */
  private ranNothing(result: TaskResult, compensation: Compensation, outcome: { status: string; detail: string }): boolean {
    if (compensation.kind !== 'tool' || (outcome.status !== 'not-run' && outcome.status !== 'unknown')) return false;
    const stepIndex = this.inDoubt.get(compensation.callId);
    const step = stepIndex === undefined ? undefined : result.steps.find((s) => s.index === stepIndex);
    if (outcome.status === 'unknown') {
      this.notUndoable.push(`#${stepIndex ?? compensation.callId} ${compensation.forTool}: may or may not have run, not undone (${outcome.detail})`);
      return true;
    }
    if (step !== undefined) {
      step.executed = false;
      const why = step.error?.code === 'ERR_TOOL_CANCELLED' ? 'cancelled before it ran' : step.error === undefined ? 'not run' : `${step.error.message}; its tool never started`;
      step.error = { code: step.error?.code ?? 'ERR_TOOL_CANCELLED', message: `${why}: its start record says no worker started it, so nothing was undone for it` };
    }
    return true;
  }

  /**
   * The call `callId` was stopped but not confirmed stopped (it may complete after its undo ran):
   * its compensations are reported `unconfirmed`, never `done` (patch `warden-undo-what-ran`).
   */
  markUnconfirmed(callId: string): void {
    this.compensations.forEach((c, i) => {
      if (c.kind !== 'fs-overlay-discard' && c.callId === callId) this.compensations[i] = { ...c, unconfirmed: true };
    });
  }

  /** Files a call left in the overlay (also a failed call's). */
  recordWrites(writes: readonly FileWrite[] | undefined): void {
    if (writes !== undefined) this.writes.push(...writes);
  }

  /** A completed sub-agent's effects become the parent's to undo, and its writes the parent's to commit. */
  adoptChild(subagent: string, child: TaskResult): void {
    this.recordWrites(child.writes);
    this.compensations.push(...((child.compensations ?? []) as Compensation[]));
    this.notUndoable.push(...(child.recovery?.notUndoable ?? []).map((n) => `${subagent} ${n}`));
  }

  /** Commits or rolls back, as the task's status says; never cancelled (run it non-cancellable). */
  async settle(result: TaskResult, grantId: string | undefined, affinity: DataPlaneAffinity = new DataPlaneAffinity(false)): Promise<TaskRecovery> {
    const { isRoot } = this.scope;
    const task = this.scope.activityTask ?? this.scope.task;
    const tree = { rootWorkflowId: this.scope.rootWorkflowId, ...(this.scope.rootRunId === undefined ? {} : { rootRunId: this.scope.rootRunId }) };
    if (result.status === 'completed') {
      if (!isRoot) return { rolledBack: [], notUndoable: this.notUndoable };
      // With the proof, the commit writes nothing unless the overlay holds exactly what the steps wrote.
      const expected = this.patches.commitProof === true ? { expected: this.writes } : {};
      if (this.patches.commitFailureResult !== true) {
        const { files, skipped } = await summarized.commitTask('commit workspace changes')({ ...tree, task, ...expected });
        return { committed: files, ...(skipped === undefined ? {} : { notCommitted: skipped }), rolledBack: [], notUndoable: this.notUndoable };
      }
      try {
        // On the data plane's worker (affinity); a worker that is gone commits nothing (ERR_DATA_PLANE_LOST).
        const { files, skipped } = await affinity.saga((on) => summarized.commitTask('commit workspace changes', on)({ ...tree, task, ...expected }), true);
        return { committed: files, ...(skipped === undefined ? {} : { notCommitted: skipped }), rolledBack: [], notUndoable: this.notUndoable };
      } catch (error) {
        // The commit is all or nothing (it undid what it had applied): the task failed, and
        // its effects are rolled back like any failed task's, so it still ends with a result.
        const failure = error instanceof TaskEnded ? { code: 'ERR_DATA_PLANE_LOST', message: error.reason.slice('ERR_DATA_PLANE_LOST: '.length) } : stepErrorOf(error);
        result.status = 'failed';
        result.reason = `the task's files could not be committed: ${failure.code}: ${failure.message}`;
      }
    }
    const rolledBack: TaskRecovery['rolledBack'] = [];
    for (const compensation of [...this.compensations].reverse()) {
      const of = compensation.kind === 'fs-overlay-discard' ? {} : { forTool: compensation.forTool, callId: compensation.callId };
      try {
        const undo = compensation.kind === 'fs-overlay-discard' ? 'discard workspace changes' : `undo ${compensation.forTool} (${compensation.kind})`;
        // On the data plane while it is there, else on any worker (SQL undo reads the shared journal).
        const outcome = await affinity.saga((on) => summarized.compensate(`compensate: ${undo}`, on)({ ...tree, task, compensation: sentOf(compensation), ...startedOnlyOf(compensation), ...(grantId === undefined ? {} : { grantId }) }));
        if (this.ranNothing(result, compensation, outcome)) continue;
        rolledBack.push({ kind: outcome.kind, ...of, ...reported(compensation, outcome) });
      } catch (error) {
        const failure = stepErrorOf(error);
        rolledBack.push({ kind: compensation.kind, ...of, status: 'failed', detail: `${failure.code}: ${failure.message}` });
      }
    }
    const incomplete = this.notUndoable.length > 0 || rolledBack.some((r) => r.status === 'failed');
    if (isRoot && this.snapshotTaken && incomplete) {
      await affinity.saga((on) => summarized.restorePreTaskSnapshot('restore pre-task snapshot', on)({ ...tree, task }));
      return { rolledBack, notUndoable: this.notUndoable, restoredSnapshot: true };
    }
    return { rolledBack, notUndoable: this.notUndoable };
  }

  /**
   * The data flow's settle. A completed root commits on its data plane, and the commit must prove
   * the overlay holds exactly what the steps wrote: a commit that cannot (overlay missing or
   * different, ERR_OVERLAY_MISSING / ERR_COMMIT_MISMATCH) fails the task, and everything is rolled
   * back instead. Compensations run on the data plane, which moves to another worker when its own
   * is gone; a sub-agent that loses it hands the compensations not yet run up to its parent.
   */
  async settleFlow(result: TaskResult, run: AgentRun): Promise<TaskRecovery> {
    const flow = run.flow!;
    const { isRoot } = this.scope;
    const tree = { rootWorkflowId: this.scope.rootWorkflowId, ...(this.scope.rootRunId === undefined ? {} : { rootRunId: this.scope.rootRunId }) };
    if (result.status === 'completed') {
      if (!isRoot) return { rolledBack: [], notUndoable: this.notUndoable };
      try {
        // Commit and revoke in one call, on the data plane's worker (locally when the workflow runs there).
        const grantId = run.identity?.grantId;
        const { files, skipped } = await flow.callHere(run, SAGA_CALL, 'rebuild', (a, onWorker) =>
          a.finishTask({
            ...tree,
            taskRef: flow.taskRef!,
            expected: flow.writes,
            status: result.status,
            ...(grantId === undefined ? {} : { grantId }),
            ...(onWorker === undefined ? {} : { onWorker }),
          }),
          'commit workspace changes, revoke grant',
        );
        this.revoked = grantId !== undefined && grantId === run.identity?.grantId;
        // Held host-code files and what a commit skips are reported, as on the original loop.
        return { committed: files, ...(skipped === undefined ? {} : { notCommitted: skipped }), rolledBack: [], notUndoable: this.notUndoable };
      } catch (error) {
        // The commit is all or nothing (it undid what it had applied): the task failed, and its
        // effects are rolled back like any failed task's (as commit-failure-result on the original loop).
        const failure = error instanceof TaskEnded ? { code: '', message: error.reason } : stepErrorOf(error);
        result.status = 'failed';
        result.reason = failure.code === '' ? failure.message : `the task's files could not be committed: ${failure.code}: ${failure.message}`;
        run.state.status = 'failed';
      }
    }
    if (!isRoot && flow.dataPlaneLost) return { rolledBack: [], notUndoable: this.notUndoable };
    const rolledBack: TaskRecovery['rolledBack'] = [];
    const pending = [...this.compensations].reverse();
    for (const [i, compensation] of pending.entries()) {
      const of = compensation.kind === 'fs-overlay-discard' ? {} : { forTool: compensation.forTool, callId: compensation.callId };
      try {
        const undo = compensation.kind === 'fs-overlay-discard' ? 'discard workspace changes' : `undo ${compensation.forTool} (${compensation.kind})`;
        const outcome = await flow.call(
          run,
          SAGA_CALL,
          'rollback',
          (a) => a.compensate({ ...tree, taskRef: flow.taskRef!, compensation: sentOf(compensation), ...startedOnlyOf(compensation), ...(run.identity === undefined ? {} : { grantId: run.identity.grantId }) }),
          `compensate: ${undo}`,
        );
        if (this.ranNothing(result, compensation, outcome)) continue;
        rolledBack.push({ kind: outcome.kind, ...of, ...reported(compensation, outcome) });
      } catch (error) {
        if (error instanceof DataPlaneLost) {
          // A sub-agent cannot move the tree's data plane: its parent runs the rest.
          flow.dataPlaneLost = true;
          this.compensations.splice(0, this.compensations.length, ...pending.slice(i).reverse());
          return { rolledBack, notUndoable: this.notUndoable };
        }
        const failure = stepErrorOf(error);
        rolledBack.push({ kind: compensation.kind, ...of, status: 'failed', detail: `${failure.code}: ${failure.message}` });
      }
    }
    const incomplete = this.notUndoable.length > 0 || rolledBack.some((r) => r.status === 'failed');
    if (isRoot && this.snapshotTaken && incomplete) {
      await flow.call(run, SAGA_CALL, 'rollback', (a) => a.restorePreTaskSnapshot({ ...tree, taskRef: flow.taskRef! }), 'restore pre-task snapshot');
      return { rolledBack, notUndoable: this.notUndoable, restoredSnapshot: true };
    }
    return { rolledBack, notUndoable: this.notUndoable };
  }
}

/** The descriptor the compensation's activity gets: without the workflow's own `unconfirmed` and `startedOnly` marks (a worker from before parses it strictly). */
function sentOf(compensation: Compensation): Compensation {
  if (compensation.kind === 'fs-overlay-discard') return compensation;
  const { unconfirmed: _mark, ...sent } = compensation;
  if (sent.kind !== 'tool') return sent;
  const { startedOnly: _doubt, ...tool } = sent;
  return tool;
}

/** The compensation activity's `startedOnly`, for a compensating tool whose call's start is in doubt. */
function startedOnlyOf(compensation: Compensation): { startedOnly?: true } {
  return compensation.kind === 'tool' && compensation.startedOnly === true ? { startedOnly: true } : {};
}

/** How a compensation that ran is reported: `unconfirmed` when its original call may have completed after it. */
function reported(compensation: Compensation, outcome: { status: string; detail: string }): { status: string; detail: string } {
  if (compensation.kind === 'fs-overlay-discard' || compensation.unconfirmed !== true) return { status: outcome.status, detail: outcome.detail };
  return { status: 'unconfirmed', detail: `${outcome.detail}; the original call was not confirmed stopped and may have completed after this ran` };
}
