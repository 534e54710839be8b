/**
 * The agent workflow's data flow (issue 12, issue 17): where the task's data plane sits and how
 * activities reach it, the references that stand in for large values, and the hand-over of a
 * long task to its next run.
 *
 * - Data-plane affinity: every activity that touches the task tree's overlay, grants or sandbox
 *   host goes to the task queue of the worker that placed the task (`placement.taskQueue`). A
 *   schedule-to-start timeout there means that worker is gone: the root task takes over on
 *   another worker (overlay rebuilt from its shared copy, or only rolled back there); a sub-agent
 *   ends and hands the loss up to its parent (`DataPlaneLost`).
 * - Deadlines through timeouts Temporal enforces: each activity's schedule-to-close timeout is
 *   the time left, so no timer is started per call. A tool call (patch `warden-flow-call-deadline`)
 *   is stopped at the deadline by its worker instead, its schedule-to-close a margin past it: the
 *   task goes on to its end only once the tool has stopped, as for any other end.
 * - References: the task by digest, the transcript by the head of its chain plus the steps since.
 * - Continue-as-new every so many events, bytes or step bytes, carrying the loop's and the saga's
 *   state and the monitor's (a bounded summary, monitoring/monitor-carry.ts); the run's steps are
 *   archived in the blob store first.
 *
 * Deterministic: workflow code.
 */
import { ActivityCancellationType, ActivityFailure, allHandlersFinished, ApplicationFailure, CancellationScope, condition, continueAsNew, proxyActivities, proxyLocalActivities, TimeoutFailure, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { WardenActivities } from '../activities';
import {
  jsonBytes,
  PAYLOAD_BUDGET_BYTES,
  type AgentTaskFlowInput,
  type CarriedState,
  type DataFlowOptions,
  type FileWrite,
  type Placement,
  type StepArchive,
  type Transcript,
} from '../task/data-flow';
import type { PolicyCheck } from '../activities/check-policy';
import { taskDigestOf } from '../policies/policy-precheck';
import type { Action, ModelTurn, StepRecord } from '../task/task-run';
import { treeOf, type AgentRun } from './agent-run';
import { LocalLane } from './local-lane';
import { stepErrorOf, TaskEnded } from './task-ended';

/** The default hand-over points of a run (see DataFlowOptions). */
const DEFAULTS = { maxRunEvents: 2_000, maxRunHistoryBytes: 4 * 1024 * 1024, maxRunStepBytes: 512 * 1024, dataPlaneStartTimeoutSeconds: 30 } as const;

/** Ends a sub-agent whose data plane was lost: its parent recovers the tree. */
export class DataPlaneLost extends TaskEnded {
  constructor(reason: string) {
    super('failed', `ERR_DATA_PLANE_LOST: ${reason}`);
  }
}

/** What to do when the data plane's worker is gone. */
export type OnLost =
  /** Take over on another worker with the overlay rebuilt, and go on (the root task's loop, its commit). */
  | 'rebuild'
  /** Take over on another worker for rolling back only (the root's compensations). */
  | 'rollback'
  /** End this task and hand the loss up (a sub-agent). */
  | 'hand-up'
  /** Run on any worker of the shared queue instead (revoking a grant). */
  | 'shared';

/** Timeouts and retries of one kind of data-plane call. */
export interface CallTimeouts {
  startToCloseMs: number;
  heartbeatMs?: number;
  retry: NonNullable<ActivityOptions['retry']>;
  /** Bounded by the task's deadline (the loop), or not (the saga, which runs after it). */
  deadline: boolean;
  /** A cancelled call settles once its activity ended as cancelled (a tool call, calls-in-flight.ts). */
  waitCancelled?: boolean;
  /**
   * The call stops itself at the deadline (a tool call given `deadlineAt`, patch
   * `warden-flow-call-deadline`): its schedule-to-close is this much past the deadline, room for
   * the worker to stop the tool and fail the call, so the server does not time it out first.
   */
  deadlineMarginMs?: number;
}

/** Data-plane activities heartbeat every 2 s: silence this long means their worker is gone. */
export const DATA_PLANE_HEARTBEAT_MS = 10_000;

export const MODEL_CALL: CallTimeouts = { startToCloseMs: 120_000, heartbeatMs: DATA_PLANE_HEARTBEAT_MS, retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2 }, deadline: true };
export const SAGA_CALL: CallTimeouts = { startToCloseMs: 300_000, heartbeatMs: DATA_PLANE_HEARTBEAT_MS, retry: { maximumAttempts: 10, initialInterval: '1s', maximumInterval: '30s' }, deadline: false };
export const END_CALL: CallTimeouts = { startToCloseMs: 30_000, heartbeatMs: DATA_PLANE_HEARTBEAT_MS, retry: { maximumAttempts: 20, initialInterval: '1s', maximumInterval: '10s' }, deadline: false };

/**
 * Placing the task: an activity on the shared task queue, so the worker that picks it up (with
 * eager dispatch, the one that ran this workflow task) becomes the data plane. Not a local
 * activity: one re-run after a workflow task timed out would issue a second grant. Bounded by the
 * time left at the start; a take-over (which may happen in the saga, after the deadline) is not.
 */
export function placing(run: AgentRun, bounded: boolean, summary?: string): WardenActivities {
  const remaining = run.deadline.remainingMs();
  if (bounded && remaining <= 0) throw run.deadline.exceeded();
  return proxyActivities<WardenActivities>({
    startToCloseTimeout: '2 minutes',
    heartbeatTimeout: DATA_PLANE_HEARTBEAT_MS,
    ...(bounded ? { scheduleToCloseTimeout: remaining } : {}),
    retry: { maximumAttempts: 3, initialInterval: '1s', backoffCoefficient: 2 },
    ...(summary === undefined ? {} : { summary }),
  });
}

/** Activities any worker of the shared task queue may run. */
const archiving = proxyActivities<WardenActivities>({ startToCloseTimeout: '1 minute', retry: { maximumAttempts: 10, initialInterval: '1s', maximumInterval: '10s' }, summary: 'archive this run\'s steps' });

/** Runs from before `warden-flow-local-lane`: their data-plane local activities ran outside the lane. */
const UNLANED = new LocalLane(false);

/** A local activity's refusal (local activity failures arrive unwrapped, activity ones in an ActivityFailure). */
function isElsewhere(error: unknown): boolean {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  return cause instanceof ApplicationFailure && cause.type === 'ERR_DATA_PLANE_ELSEWHERE';
}

/**
 * The worker stopped the call at the task's deadline (`deadlineAt`, activities/run-tool.ts): the
 * task timed out, even when the worker's clock ran ahead of the workflow's.
 */
function isDeadlineStop(error: unknown): boolean {
  const cause = error instanceof ActivityFailure ? error.cause : error;
  return cause instanceof ApplicationFailure && cause.type === 'ERR_DEADLINE_EXCEEDED';
}

function isScheduleToStartTimeout(error: unknown): boolean {
  return error instanceof ActivityFailure && error.cause instanceof TimeoutFailure && error.cause.timeoutType === 'SCHEDULE_TO_START';
}

export class TaskFlow {
  placement: Placement | undefined;
  taskRef: string | undefined;
  /** The transcript's head, and the steps of earlier runs not in it yet. */
  private transcriptRef: string | null;
  private carriedPending: StepRecord[];
  /** Steps of this run already in the transcript (sent with a model call). */
  private transcriptCursor = 0;
  /** A turn the last tool call folded in, not acted on yet. */
  foldedTurn: { turn: number; modelTurn: ModelTurn } | undefined;
  /** The policy decision the last tool call made on the folded turn's first action. */
  private prechecked: { action: Action; check: PolicyCheck } | undefined;
  /** Steps and children of earlier runs, in the blob store. */
  archive: StepArchive | undefined;
  readonly runs: number;
  /** Files the task tree's steps wrote, in order (what the commit must write). */
  readonly writes: FileWrite[];
  /** JSON bytes of this run's step records (bounds the result). */
  runStepBytes = 0;
  /** A sub-agent lost the data plane: the tree rolls back. */
  dataPlaneLost = false;
  /**
   * Tool calls run as local activities since the last one that went through the queue, the JSON
   * bytes of their results and how long they ran (ms, as the worker measured): their markers reach
   * history together when the workflow task that ran them completes, and a signal or an Update
   * (a kill) reaches the run only then (tool-step.ts `runsLocally` bounds all three).
   */
  localRun = { calls: 0, bytes: 0, ms: 0 };
  readonly options: Required<DataFlowOptions>;

  constructor(input: AgentTaskFlowInput) {
    const carried = input.carried;
    this.placement = input.placement;
    this.taskRef = input.taskRef;
    this.transcriptRef = carried?.transcript.ref ?? null;
    this.carriedPending = carried?.transcript.pending ?? [];
    this.foldedTurn = carried?.pending;
    this.archive = carried?.archive;
    this.runs = (carried?.runs ?? 0) + 1;
    this.writes = [...(carried?.saga.writes ?? [])];
    this.options = { ...DEFAULTS, ...(input.flow ?? {}) };
  }

  /** The transcript as the next model call needs it: its head and every step not in it yet. */
  transcript(run: AgentRun): Transcript {
    return { ref: this.transcriptRef, pending: [...this.carriedPending, ...run.state.steps.slice(this.transcriptCursor)] };
  }

  /** A model call (or a folded one) appended every pending step: `ref` is the new head. */
  transcriptAppended(run: AgentRun, ref: string | null): void {
    this.transcriptRef = ref;
    this.carriedPending = [];
    this.transcriptCursor = run.state.steps.length;
  }

  private digestedTask: { task: unknown; digest: string } | undefined;

  /** The digest of `task`'s JSON (policies/policy-precheck.ts), computed once per run for the task object it holds. */
  taskDigest(task: unknown): string {
    const known = this.digestedTask;
    if (known !== undefined && known.task === task) return known.digest;
    const digest = taskDigestOf(task);
    this.digestedTask = { task, digest };
    return digest;
  }

  /** Keeps the decision a call made ahead on `action` (the first of the turn it folded in). */
  holdPolicyCheck(action: Action | undefined, check: PolicyCheck | undefined): void {
    this.prechecked = action === undefined || check === undefined ? undefined : { action, check };
  }

  /** The decision made ahead on exactly this action (the same object), once; else undefined. */
  takePolicyCheck(action: Action): PolicyCheck | undefined {
    const held = this.prechecked;
    this.prechecked = undefined;
    return held !== undefined && held.action === action ? held.check : undefined;
  }

  recordWrites(writes: readonly FileWrite[] | undefined): void {
    if (writes !== undefined) this.writes.push(...writes);
  }

  /** Activities on the data plane's queue with `timeouts`, bounded by the deadline where it applies. */
  private activities(run: AgentRun, timeouts: CallTimeouts, summary: string | undefined): WardenActivities {
    const placement = this.placement;
    if (placement === undefined) throw new TypeError('the task has no data plane yet');
    let scheduleToCloseMs: number | undefined;
    if (timeouts.deadline) {
      scheduleToCloseMs = run.deadline.remainingMs();
      if (scheduleToCloseMs <= 0) throw run.deadline.exceeded();
      scheduleToCloseMs += timeouts.deadlineMarginMs ?? 0;
    }
    return proxyActivities<WardenActivities>({
      taskQueue: placement.taskQueue,
      startToCloseTimeout: timeouts.startToCloseMs,
      // Only on a worker-specific queue: nobody picking the task up means the worker is gone.
      scheduleToStartTimeout: this.options.dataPlaneStartTimeoutSeconds * 1000,
      ...(scheduleToCloseMs === undefined ? {} : { scheduleToCloseTimeout: scheduleToCloseMs }),
      ...(timeouts.heartbeatMs === undefined ? {} : { heartbeatTimeout: timeouts.heartbeatMs }),
      retry: timeouts.retry,
      ...(timeouts.waitCancelled === true ? { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : {}),
      ...(summary === undefined ? {} : { summary }),
    });
  }

  /**
   * Runs `operation` on the data plane. When its worker is gone, does what `onLost` says and (for
   * a take-over) runs the operation again on the new worker: every data-plane activity is
   * idempotent by its call id, so a call the lost worker may have started is not applied twice.
   * `summary` is what the Temporal UI shows on the call (user metadata: no effect on replay).
   */
  async call<T>(run: AgentRun, timeouts: CallTimeouts, onLost: OnLost, operation: (activities: WardenActivities) => Promise<T>, summary?: string): Promise<T> {
    for (;;) {
      try {
        return await operation(this.activities(run, timeouts, summary));
      } catch (error) {
        if (timeouts.deadline && !(error instanceof TaskEnded) && (run.deadline.remainingMs() <= 0 || isDeadlineStop(error))) throw run.deadline.exceeded();
        if (!isScheduleToStartTimeout(error)) throw error;
        const lost = `worker ${this.placement?.workerId ?? '?'} holding the task's data plane did not take work for ${this.options.dataPlaneStartTimeoutSeconds}s`;
        if (onLost === 'shared') return operation(proxyActivities<WardenActivities>({ startToCloseTimeout: timeouts.startToCloseMs, retry: timeouts.retry, ...(summary === undefined ? {} : { summary }) }));
        if (onLost === 'hand-up' || !run.isRoot) throw new DataPlaneLost(lost);
        await this.takeOver(run, onLost === 'rebuild', lost);
      }
    }
  }

  /**
   * Runs `operation` as a local activity when the workflow task runs on the data plane's worker
   * (no round trip through Temporal's matching), else on the data plane's queue as `call` does.
   * The local attempt is told the data plane's worker (`onWorker`) and refuses to act anywhere
   * else (ERR_DATA_PLANE_ELSEWHERE); its refusal is recorded, so replay takes the same path.
   *
   * The local attempt runs in the run's lane (local-lane.ts, patch `warden-flow-local-lane`): a
   * kill's or a block's local activity arriving meanwhile waits for it, so the two complete in the
   * order they were scheduled, live and on replay. Only for short calls (the commit, the grant's
   * revocation, after the loop): a kill's authorisation waits behind whatever holds the lane, so a
   * tool call here would delay every kill by the tool's run time.
   */
  async callHere<T>(run: AgentRun, timeouts: CallTimeouts, onLost: OnLost, operation: (activities: WardenActivities, onWorker: string | undefined) => Promise<T>, summary?: string): Promise<T> {
    const placement = this.placement;
    if (placement === undefined) throw new TypeError('the task has no data plane yet');
    let scheduleToCloseMs: number | undefined;
    if (timeouts.deadline) {
      scheduleToCloseMs = run.deadline.remainingMs();
      if (scheduleToCloseMs <= 0) throw run.deadline.exceeded();
    }
    const local = proxyLocalActivities<WardenActivities>({
      startToCloseTimeout: timeouts.startToCloseMs,
      ...(scheduleToCloseMs === undefined ? {} : { scheduleToCloseTimeout: scheduleToCloseMs }),
      retry: timeouts.retry,
      ...(timeouts.waitCancelled === true ? { cancellationType: ActivityCancellationType.WAIT_CANCELLATION_COMPLETED } : {}),
      ...(summary === undefined ? {} : { summary }),
    });
    const lane = run.patches.flowLocalLane ? run.monitor.lane : UNLANED;
    try {
      return await lane.run(() => operation(local, placement.workerId));
    } catch (error) {
      // The call stopped itself at the deadline (a tool call given `deadlineAt`): the task timed out, as on the queue.
      if (timeouts.deadline && !(error instanceof TaskEnded) && (run.deadline.remainingMs() <= 0 || isDeadlineStop(error))) throw run.deadline.exceeded();
      if (!isElsewhere(error)) throw error;
    }
    return this.call(run, timeouts, onLost, (a) => operation(a, undefined), summary);
  }

  /**
   * Moves the task tree's data plane to whichever worker of the shared queue takes it. With
   * `rebuild` the overlay is rebuilt there from its shared copy and the task goes on; a take-over
   * that cannot rebuild ends the task (failed, rolled back by the saga). Without `rebuild` (rolling
   * back) a worker is found even when the shared copy is gone.
   */
  async takeOver(run: AgentRun, rebuild: boolean, why: string): Promise<void> {
    const previous = this.placement;
    if (previous === undefined) throw new TypeError('nothing to take over');
    try {
      const placed = await placing(run, false, `take over the data plane${rebuild ? '' : ' (roll back)'}`).placeTask({
        ...treeOf(run),
        workflowId: run.workflowId,
        task: run.task,
        deadlineAt: run.deadline.deadlineAt,
        takeover: { previous, ...(run.identity === undefined ? {} : { grantId: run.identity.grantId }), writes: this.writes, rebuild },
      });
      this.placement = placed.placement;
      this.taskRef = placed.taskRef;
      if (placed.identity !== undefined) run.identity = placed.identity;
    } catch (error) {
      const failure = stepErrorOf(error);
      if (rebuild) throw new TaskEnded('failed', `ERR_DATA_PLANE_LOST: ${why}; the task could not go on elsewhere: ${failure.code}: ${failure.message}`);
      // Rolling back must still happen: any worker of the shared queue does what it can.
      this.placement = { ...previous, taskQueue: workflowInfo().taskQueue, workerId: 'any', generation: previous.generation + 1 };
    }
  }

  /**
   * Ends the workflow task of a chain of local calls (one activity that does nothing, on the data
   * plane's queue), then lets every handler that arrived with it finish: a kill or a block sent
   * while the chain ran is authorised and blocks the run before the loop can complete the task.
   */
  async endLocalChain(run: AgentRun): Promise<void> {
    await this.call(run, END_CALL, 'shared', (a) => a.endWorkflowTask({ workflowId: run.workflowId }), 'end the workflow task of local calls');
    this.endChain();
    await condition(allHandlersFinished);
  }

  /** A call went through the queue, which ended the workflow task: a new chain of local calls may start. */
  endChain(): void {
    this.localRun = { calls: 0, bytes: 0, ms: 0 };
  }

  /** True when this run should hand over to the next (at a turn boundary). */
  shouldContinueAsNew(): boolean {
    const info = workflowInfo();
    // The history as this workflow task started, plus the markers of the local calls since the
    // last call through the queue (one event each; they reach history when the task completes).
    return (
      info.continueAsNewSuggested ||
      info.historyLength + this.localRun.calls >= this.options.maxRunEvents ||
      info.historySize + this.localRun.bytes >= this.options.maxRunHistoryBytes ||
      this.runStepBytes >= this.options.maxRunStepBytes
    );
  }

  /**
   * Archives this run's steps and children, then continues as new with the state the loop and the
   * saga need. A state too large to carry ends the task (failed, the saga runs) instead of letting
   * Temporal refuse it.
   */
  async continueAsNew(run: AgentRun, input: AgentTaskFlowInput): Promise<never> {
    // A notice still on its way would be dropped with this run.
    await CancellationScope.nonCancellable(() => run.approvals.flushNotices());
    const monitor = run.patches.monitorCarried ? await run.monitor.handOver() : undefined;
    const archive = await archiving.archiveRun({ previous: this.archive, steps: run.state.steps, children: run.state.children, turns: run.state.turns ?? [] });
    const carried: CarriedState = {
      runs: this.runs,
      archive,
      steps: run.stepBase + run.state.steps.length,
      turn: run.state.turn,
      model: run.state.model,
      ...(this.foldedTurn === undefined ? {} : { pending: this.foldedTurn }),
      transcript: this.transcript(run),
      saga: { compensations: run.saga.compensations, notUndoable: run.saga.notUndoable, snapshotTaken: run.saga.snapshotTaken, writes: this.writes },
      ...(monitor === undefined ? {} : { monitor }),
    };
    const next: AgentTaskFlowInput = {
      task: run.task,
      depth: run.depth,
      lineage: [...run.lineage],
      deadlineAt: run.deadline.deadlineAt,
      ...(run.identity === undefined ? {} : { identity: run.identity }),
      policyState: run.policyState,
      ...(this.placement === undefined ? {} : { placement: this.placement }),
      ...(this.taskRef === undefined ? {} : { taskRef: this.taskRef }),
      carried,
      ...(input.flow === undefined ? {} : { flow: input.flow }),
    };
    assertFits(next, 'the state carried into the next run');
    // A block that arrived while the run archived ends the task here, not in a next run that forgot it.
    if (run.patches.monitorCarried) run.monitor.assertRunning();
    return continueAsNew<(input: AgentTaskFlowInput) => Promise<unknown>>(next);
  }
}

/** Ends the task (failed; the saga runs) when `value` would exceed Temporal's payload limit. */
export function assertFits(value: unknown, what: string): void {
  const bytes = jsonBytes(value);
  if (bytes > PAYLOAD_BUDGET_BYTES) {
    throw new TaskEnded('failed', `ERR_PAYLOAD_TOO_LARGE: ${what} is ${bytes} bytes, more than the ${PAYLOAD_BUDGET_BYTES} Warden keeps under Temporal's payload limit`);
  }
}
