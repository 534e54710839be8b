/**
 * One step of the agent loop: the action passes the guards, then runs (a tool call or a
 * sub-agent). A failure of the call itself is the step's error, not the task's end; the agent
 * sees it on its next turn.
 */
import { isCancellation } from '@temporalio/workflow';
import type { AgentRun, StepAction } from './agent-run';
import { guardAction } from './guard-action';
import { runSpawnStep } from './spawn-step';
import { TaskEnded, stepErrorOf } from './task-ended';
import { refusedBeforeRun, runToolStep, toolCallId, undoneOfFailure } from './tool-step';
import { assertFits } from './task-flow';

export interface RunActionOptions {
  /** Ask for the model's next turn in the same activity as the tool call (the data flow). */
  foldNextTurn?: boolean;
}

export async function runAction(run: AgentRun, action: StepAction, turn: number, options: RunActionOptions = {}): Promise<void> {
  run.monitor.assertRunning();
  // Arguments Temporal would refuse in the policy check's or the call's input end the task (the
  // saga runs) instead of having Temporal terminate it. The data flow claim-checks them instead.
  if (run.flow === undefined && run.patches.claimCheckOutputs && action.type === 'tool') assertFits(action.args, `the arguments of ${action.tool} (turn ${turn})`);
  const began = Date.now();
  let guarded;
  try {
    guarded = await guardAction(run, action, turn, began);
  } catch (error) {
    // A refusal that ends the task (onDeny: stop) is still scored: it may be worth an alert.
    if (error instanceof TaskEnded) await run.monitor.refused(run, run.state.steps[run.state.steps.length - 1]);
    throw error;
  }
  if (guarded === undefined) {
    await run.monitor.refused(run, run.state.steps[run.state.steps.length - 1]);
    return;
  }
  const { step } = guarded;
  // What the grants refuse is never held for a human (the policy check said so; absent in
  // histories recorded before it did, so their replays hold as they did).
  if (!(await run.monitor.beforeRun(run, step, guarded.grantRefused !== undefined))) return;
  try {
    if (action.type === 'tool') {
      if (!(await runToolStep(run, action, guarded, options.foldNextTurn === true))) return;
    } else if (!(await runSpawnStep(run, action, step, guarded.inherit))) {
      return;
    }
    step.executed = true;
  } catch (error) {
    // A block cancelled the call in flight (calls-in-flight.ts): the call's record and undo, then the task's end.
    const blocked = run.monitor.blockedReason;
    const stopped = action.type === 'tool' && isCancellation(error) && run.calls.stopped && blocked !== undefined;
    // The task ended while the call ran (a cancel, Ctrl-C in `warden run`, the deadline): with `warden-undo-ended-calls` its undo is registered and its record says so (tool-step.ts).
    if (error instanceof TaskEnded || (isCancellation(error) && !stopped)) throw error;
    // With `warden-undo-ended-calls`, a call that was started registered its undo already (tool-step.ts).
    const registered = run.patches.undoEndedCalls && step.executed;
    step.error = stopped ? { code: 'ERR_TASK_BLOCKED', message: `stopped while it ran: the task was blocked: ${blocked}` } : stepErrorOf(error);
    // What the failed call wrote was taken back out of the overlay: the record says so.
    const undone = undoneOfFailure(error);
    if (undone.length > 0) step.undone = undone;
    // Refused before its tool started (the failure says so, patch `warden-undo-what-ran`): nothing to undo, and it did not run.
    const notRun = action.type === 'tool' && !registered && refusedBeforeRun(run, error);
    if (action.type === 'tool' && !registered && !notRun) run.saga.registerToolCall(action.tool, step.index, toolCallId(run, step.index, action.tool, action.args), action.args, undefined);
    // The call ran (and failed) unless the failure says it never started.
    step.executed = !notRun;
    // A result Temporal would refuse (claim checks could not shrink it) ends the task: the saga runs.
    if (run.patches.claimCheckOutputs && step.error.code === 'ERR_PAYLOAD_TOO_LARGE') throw new TaskEnded('failed', `${step.error.code}: ${step.error.message}`);
    if (stopped) run.monitor.assertRunning();
  } finally {
    step.durationMs = Date.now() - began;
  }
  await run.monitor.afterRun(run, step);
}
