/**
 * The agent loop on the data flow (behind the `warden-data-flow-1` patch, see agent-task.ts):
 * begin (place the data plane), then per step one workflow task and one activity: the tool call
 * goes to the data plane and brings the model's next turn back with it (folded), with the policy
 * decision on that turn's first action (the workflow checks it was made on its own inputs, else
 * asks in a local activity: guard-action.ts), references stand in for large values, and a long
 * task continues as new at turn boundaries. When the loop ends the saga commits (proving the
 * overlay holds what the steps wrote) or rolls back, and the grant is revoked.
 *
 * Deterministic code only: no Node APIs, no clocks but the workflow's, no I/O.
 */
import { CancellationScope, ContinueAsNew, isCancellation } from '@temporalio/workflow';
import type { AgentTaskFlowInput } from '../task/data-flow';
import type { ModelTurn, TaskResult } from '../task/task-run';
import { finishRun, startAgentRun, stepCount, treeOf, type AgentRun } from './agent-run';
import { closeRun } from './close-run';
import { attestClaims } from './attest-claims';
import { claimsOfFinalAnswer, stateClaim, statedClaimsOf } from './stated-claims';
import { modelTurnSummary, oneLine } from './ui-summaries';
import { runAction } from './run-action';
import { TaskEnded, stepErrorOf } from './task-ended';
import { END_CALL, MODEL_CALL, placing, TaskFlow } from './task-flow';
import type { PatchQuestion } from './workflow-patches';

export async function runFlowTask(input: AgentTaskFlowInput, askPatch?: PatchQuestion): Promise<TaskResult> {
  const carried = input.carried;
  // A data-flow run is a root (agent-task.ts: takesDataFlow): its place is a root's, and what its
  // previous run carried (grant, deadline, counters) comes only from that run (trustedFlowInput).
  const root = { task: input.task };
  const run = startAgentRun(root, root, {
    deadlineTimers: false,
    dataFlow: true,
    stepBase: carried?.steps ?? 0,
    ...(askPatch === undefined ? {} : { askPatch }),
    ...(input.deadlineAt === undefined ? {} : { continuedDeadlineAt: input.deadlineAt }),
  });
  if (input.identity !== undefined) run.identity = input.identity;
  if (input.policyState !== undefined) run.policyState = input.policyState as typeof run.policyState;
  const flow = new TaskFlow(input);
  run.flow = flow;
  if (carried !== undefined) {
    run.state.turn = carried.turn;
    run.state.model = carried.model;
    run.saga.compensations.push(...(carried.saga.compensations as typeof run.saga.compensations));
    run.saga.notUndoable.push(...carried.saga.notUndoable);
    run.saga.snapshotTaken = carried.saga.snapshotTaken;
    // The monitor goes on from where the previous run left it (history, armed rules, step-up, alerts).
    if (carried.monitor !== undefined) run.monitor.resume(carried.monitor);
  }
  // The monitor scores every action as on the original loop (monitor-step.ts); a blocked task ends blocked.
  const result = await run.monitor.settle(run, await runLoop(run, input));
  // Every approval notice sent is delivered (or given up on) before the task settles and ends.
  await CancellationScope.nonCancellable(() => run.approvals.flushNotices());
  if (flow.archive !== undefined) result.earlier = flow.archive;
  result.recovery = await CancellationScope.nonCancellable(() => run.saga.settleFlow(result, run));
  if (!run.isRoot) {
    if (result.status === 'completed' || flow.dataPlaneLost) result.compensations = run.saga.compensations;
    result.policyState = run.policyState;
    // A sub-agent that did not complete had its writes undone (fs-overlay-undo): only a completed
    // one's, or one cut off from its data plane (the tree rolls back), are still in the overlay.
    if (flow.writes.length > 0 && (result.status === 'completed' || flow.dataPlaneLost)) result.writes = flow.writes;
    if (flow.dataPlaneLost) result.dataPlaneLost = true;
  }
  if (run.identity !== undefined && !run.saga.revoked) {
    const grantId = run.identity.grantId;
    // Ending the grant is part of ending the task, also when it was cancelled.
    await CancellationScope.nonCancellable(() =>
      flow.callHere(run, END_CALL, 'shared', (a, onWorker) => a.endTask({ grantId, status: result.status, ...(onWorker === undefined ? {} : { onWorker }) }), `revoke grant (${result.status})`),
    );
  }
  // The root checks its claims against what was committed, as on the original loop (attest-claims.ts).
  if (run.patches.attestClaims) await CancellationScope.nonCancellable(() => attestClaims(run, result));
  await run.monitor.finish(result);
  return closeRun(run, result);
}

/** Begin, then act on the model's turns until a final answer, a limit, the deadline or a hand-over. */
async function runLoop(run: AgentRun, input: AgentTaskFlowInput): Promise<TaskResult> {
  const { task, state } = run;
  const flow = run.flow!;
  const stepLimitReached = () => finishRun(run, 'limit_exceeded', `step limit of ${task.limits.maxSteps} reached`);
  try {
    await begin(run);
    for (;;) {
      if (stepCount(run) >= task.limits.maxSteps) return stepLimitReached();
      // Stated claims live in this run only: a run that holds some does not hand over (it is bounded
      // by the claim limit), so every claim reaches the final answer and is attested.
      if (flow.shouldContinueAsNew() && statedClaimsOf(run).length === 0) await flow.continueAsNew(run, input);
      const { turn, modelTurn } = flow.foldedTurn ?? (await proposeTurn(run));
      flow.foldedTurn = undefined;
      state.turn = turn + 1;
      state.model = modelTurn.model;
      // Per turn, as on the original loop: model, actions, token usage (archived with the steps).
      (state.turns ??= []).push({ index: turn, model: modelTurn.model, actions: modelTurn.actions.length, ...(modelTurn.usage === undefined ? {} : { usage: modelTurn.usage }) });
      for (const [i, action] of modelTurn.actions.entries()) {
        if (action.type === 'final') {
          state.final = { answer: action.answer, claims: claimsOfFinalAnswer(run, action.claims) };
          // A kill sent while local calls ran has not reached the run yet (tool-step.ts `runsLocally`).
          if (flow.localRun.calls > 0) await flow.endLocalChain(run);
          return finishRun(run, 'completed');
        }
        if (action.type === 'claim') {
          stateClaim(run, action, turn);
          continue;
        }
        if (stepCount(run) >= task.limits.maxSteps) return stepLimitReached();
        // The last action of a turn brings the next turn back with its result.
        await runAction(run, action, turn, { foldNextTurn: i === modelTurn.actions.length - 1 });
        const step = state.steps[state.steps.length - 1];
        if (step !== undefined) flow.runStepBytes += JSON.stringify(step).length;
        if (run.deadline.remainingMs() <= 0) throw run.deadline.exceeded();
      }
    }
  } catch (error) {
    if (error instanceof ContinueAsNew) throw error;
    if (error instanceof TaskEnded) {
      if (error.reason.startsWith('ERR_DATA_PLANE_LOST') && !run.isRoot) flow.dataPlaneLost = true;
      return finishRun(run, error.status, error.reason);
    }
    if (isCancellation(error)) return finishRun(run, 'cancelled', 'the task was cancelled');
    const failure = stepErrorOf(error);
    return finishRun(run, 'failed', `${failure.code}: ${failure.message}`);
  }
}

/** The model's next turn, asked for on its own (no call to fold it into, or folding failed). */
async function proposeTurn(run: AgentRun): Promise<{ turn: number; modelTurn: ModelTurn }> {
  const flow = run.flow!;
  const turn = run.state.turn;
  const transcript = flow.transcript(run);
  const proposed = await run.deadline.within(() =>
    flow.call(run, MODEL_CALL, 'rebuild', (a) => a.proposeTurn({ workflowId: run.workflowId, taskRef: flow.taskRef!, turn, transcript }), modelTurnSummary(run.task, turn)),
  );
  flow.transcriptAppended(run, proposed.transcriptRef);
  return { turn, modelTurn: proposed.turn };
}

/**
 * The root places the task tree's data plane (grant, snapshot, task by reference); a sub-agent
 * and a continued run get theirs from their input.
 */
async function begin(run: AgentRun): Promise<void> {
  const flow = run.flow!;
  if (flow.placement !== undefined && flow.taskRef !== undefined) {
    // A continued run: its baseline and response rules are read again (once per run).
    await run.monitor.begin(run);
    return;
  }
  const { deadline } = run;
  // A root's monitor setup comes back with the placement (read from the task placeTask is handed).
  const setupPlaced = run.monitor.setupPlaceable(run);
  // The worker that takes this activity becomes the data plane, and asks for the first turn too.
  const placed = await deadline.within(() =>
    placing(run, true, placeSummary(run)).placeTask({
      ...treeOf(run),
      workflowId: run.workflowId,
      task: run.task,
      deadlineAt: deadline.deadlineAt,
      firstTurn: true,
      // The first action's policy decision comes back with the turn (guard-action.ts uses it when its inputs match).
      ...(run.patches.policyPrecheck ? { policyPrecheck: { depth: run.depth, chain: [...run.agentChain], ...(run.seed === undefined ? {} : { seed: run.seed }), state: run.policyState } } : {}),
      // The monitor's baseline and rules come back with the placement: no local activity of their own.
      ...(setupPlaced ? { monitor: true as const } : {}),
    }),
  );
  flow.placement = placed.placement;
  flow.taskRef = placed.taskRef;
  if (placed.turn !== undefined && 'turn' in placed.turn) {
    flow.transcriptAppended(run, placed.turn.transcriptRef);
    flow.foldedTurn = { turn: 0, modelTurn: placed.turn.turn };
    flow.holdPolicyCheck(placed.turn.turn.actions[0], placed.turn.policy);
  }
  if (placed.identity !== undefined) run.identity = placed.identity;
  run.saga.snapshotTaken = placed.snapshot;
  if (run.task.resources.workspace !== undefined) run.saga.registerOverlay(placed.placement.taskKey);
  await run.monitor.begin(run, setupPlaced ? placed.monitor : undefined);
}

/** `place: grant, workspace overlay, chat gpt-4o, turn 0`: what placing a root task does. */
function placeSummary(run: AgentRun): string {
  const parts = ['grant', ...(run.task.resources.workspace === undefined ? [] : ['workspace overlay']), modelTurnSummary(run.task, 0)];
  return oneLine(`place: ${parts.join(', ')}`);
}
