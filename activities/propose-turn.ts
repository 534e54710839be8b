/**
 * Asks the task's model driver for the agent's next actions. The answer is recorded in workflow
 * history by Temporal, which is what makes a run replayable even though models are not.
 */
import { Context } from '@temporalio/activity';
import { createDriver } from '../drivers/create-driver';
import type { ToolSpec } from '../drivers/model-driver';
import { ModelTurnSchema, type ModelTurn, type StepRecord } from '../task/task-run';
import type { Task } from '../task/task-schema';
import { ModelError } from '../errors';
import { toolSpecsOf } from '../tools/tool-catalog';
import type { ActivityDeps } from './index';
import { atActivityBoundary } from './to-application-failure';
import { annotateActiveSpan, modelCallAttributes, outcomeOfError } from '../telemetry/warden-span-attributes';
import { WARDEN_ATTR } from '../custody/attributes';

export interface ProposeTurnInput {
  workflowId: string;
  task: Task;
  turn: number;
  steps: StepRecord[];
}

export function createProposeTurn(deps: ActivityDeps) {
  return async function proposeTurn(input: ProposeTurnInput): Promise<ModelTurn> {
    try {
      const result = await proposeTurnOnce(input);
      annotateActiveSpan({ [WARDEN_ATTR.outcome]: 'ok' });
      return result;
    } catch (error) {
      annotateActiveSpan({ [WARDEN_ATTR.outcome]: outcomeOfError(error) });
      throw error;
    }
  };

  function proposeTurnOnce(input: ProposeTurnInput): Promise<ModelTurn> {
    return atActivityBoundary(async () => {
      const driver = createDriver(input.task.agent.model, { env: deps.env ?? process.env });
      const tools: ToolSpec[] = toolSpecsOf(input.task);
      const subagents = Object.entries(input.task.subagents).map(([name, sub]) => ({ name, intent: sub.intent }));
      // The monitor's scores stay out of the model's context: an agent must not learn how it is watched.
      const steps = input.steps.map(({ monitor: _monitor, ...step }) => step);
      const driverInput = { task: input.task, turn: input.turn, steps, tools, subagents };
      // The custody record of this model call: who, for what, which model, and the hash of the exact prompt context.
      annotateActiveSpan(modelCallAttributes(input.task, input.workflowId, driverInput));
      const turn = await driver.proposeTurn(driverInput, Context.current().cancellationSignal);
      // The driver is untrusted: its answer is re-validated before it enters history.
      const parsed = ModelTurnSchema.safeParse(turn);
      if (!parsed.success) {
        throw new ModelError('ERR_MODEL_PROTOCOL', `model driver returned an invalid turn: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      }
      return parsed.data;
    });
  }
}
