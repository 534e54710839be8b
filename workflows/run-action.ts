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
import { runToolStep, toolCallId } from './tool-step';

export interface RunActionOptions {
  /** Ask for the model's next turn in the same activity as the tool call (the data flow). */
  foldNextTurn?: boolean;
}

export async function runAction(run: AgentRun, action: StepAction, turn: number, options: RunActionOptions = {}): Promise<void> {
  const began = Date.now();
  const guarded = await guardAction(run, action, turn, began);
  if (guarded === undefined) return;
  const { step, policyRequest, resolvedArgs } = guarded;
  try {
    if (action.type === 'tool') {
      await runToolStep(run, action, step, policyRequest, resolvedArgs, options.foldNextTurn === true);
    } else if (!(await runSpawnStep(run, action, step))) {
      return;
    }
    step.executed = true;
  } catch (error) {
    if (error instanceof TaskEnded || isCancellation(error)) throw error;
    step.error = stepErrorOf(error);
    if (action.type === 'tool') run.saga.registerToolCall(action.tool, step.index, toolCallId(run, step.index, action.tool, action.args), action.args, undefined);
    // The call ran (and failed) unless the failure says it never started.
    step.executed = true;
  } finally {
    step.durationMs = Date.now() - began;
  }
}
