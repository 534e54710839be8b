/**
 * Asks the task's model driver for the agent's next actions. The answer is recorded in workflow
 * history by Temporal, which is what makes a run replayable even though models are not.
 *
 * Two input forms: the data flow's (task and transcript by reference, see next-turn.ts) and the
 * original one (the whole task and every step), which workflows started before the data flow
 * still send.
 */
import { Context } from '@temporalio/activity';
import { createDriver } from '../drivers/create-driver';
import type { ToolSpec } from '../drivers/model-driver';
import { ModelTurnSchema, type ModelTurn, type StepRecord } from '../task/task-run';
import type { Transcript } from '../task/data-flow';
import type { Task } from '../task/task-schema';
import { ModelError } from '../errors';
import { toolSpecsOf } from '../tools/tool-catalog';
import type { ActivityDeps } from './index';
import { taskOf } from './flow-deps';
import { proposeNextTurn, type ProposedTurn } from './next-turn';
import { atActivityBoundary } from './to-application-failure';
import { annotateActiveSpan, modelCallAttributes, outcomeOfError } from '../telemetry/warden-span-attributes';
import { WARDEN_ATTR } from '../custody/attributes';

export interface ProposeTurnInput {
  workflowId: string;
  task: Task;
  turn: number;
  steps: StepRecord[];
}

/** The data flow's form: the task and the transcript by reference. */
export interface ProposeTurnRefInput {
  workflowId: string;
  taskRef: string;
  turn: number;
  transcript: Transcript;
}

export interface ProposeTurn {
  (input: ProposeTurnInput): Promise<ModelTurn>;
  (input: ProposeTurnRefInput): Promise<ProposedTurn>;
}

export function createProposeTurn(deps: ActivityDeps): ProposeTurn {
  async function proposeTurn(input: ProposeTurnInput | ProposeTurnRefInput): Promise<ModelTurn | ProposedTurn> {
    try {
      const result = await atActivityBoundary(async () => {
        if ('taskRef' in input) {
          const task = await taskOf(deps, { taskRef: input.taskRef });
          return proposeNextTurn(deps, { ...input, task }, Context.current().cancellationSignal);
        }
        return proposeTurnOnce(input);
      });
      annotateActiveSpan({ [WARDEN_ATTR.outcome]: 'ok' });
      return result;
    } catch (error) {
      annotateActiveSpan({ [WARDEN_ATTR.outcome]: outcomeOfError(error) });
      throw error;
    }
  }
  return proposeTurn as ProposeTurn;

  async function proposeTurnOnce(input: ProposeTurnInput): Promise<ModelTurn> {
    const driver = createDriver(input.task.agent.model, { env: deps.env ?? process.env });
    const tools: ToolSpec[] = toolSpecsOf(input.task);
    const subagents = Object.entries(input.task.subagents).map(([name, sub]) => ({ name, intent: sub.intent }));
    const driverInput = { task: input.task, turn: input.turn, steps: input.steps, tools, subagents };
    // The custody record of this model call: who, for what, which model, and the hash of the exact prompt context.
    annotateActiveSpan(modelCallAttributes(input.task, input.workflowId, driverInput));
    const turn = await driver.proposeTurn(driverInput, Context.current().cancellationSignal);
    // The driver is untrusted: its answer is re-validated before it enters history.
    const parsed = ModelTurnSchema.safeParse(turn);
    if (!parsed.success) {
      throw new ModelError('ERR_MODEL_PROTOCOL', `model driver returned an invalid turn: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
    }
    return parsed.data;
  }
}
