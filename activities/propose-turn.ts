/**
 * Asks the task's model driver for the agent's next actions. The answer is recorded in workflow
 * history by Temporal, which is what makes a run replayable even though models are not.
 *
 * Two input forms: the data flow's (task and transcript by reference, see next-turn.ts) and the
 * original one (the whole task and every step), which workflows on the original loop send.
 */
import { Context } from '@temporalio/activity';
import { createDriver, driverSecrets } from '../drivers/create-driver';
import { redactSecrets } from '../drivers/model-transcript';
import type { ToolSpec } from '../drivers/model-driver';
import { ModelTurnSchema, type ModelTurn, type StepRecord } from '../task/task-run';
import type { Task } from '../task/task-schema';
import type { StatedClaimRecord } from '../attestation/claim-outcome';
import { ModelError, WardenError } from '../errors';
import { toolSpecsOf } from '../tools/tool-catalog';
import type { ActivityDeps } from './index';
import type { Transcript } from '../task/data-flow';
import { shapeActivitySpan } from './by-reference-span';
import { taskOf } from './flow-deps';
import { proposeNextTurn, refuseOversizedTurn, type ProposedTurn } from './next-turn';
import { PAYLOAD_BUDGET_BYTES } from '../task/data-refs';
import { atActivityBoundary } from './to-application-failure';
import { annotateActiveSpan, modelResponseAttributes, outcomeOfError, promptAttributes } from '../telemetry/warden-span-attributes';
import { WARDEN_ATTR } from '../custody/attributes';
import { loadModelSteps, storeModelSteps, type StepsRef } from './model-context-store';
import { refuseForgedClaimChecks, resolveClaimChecks } from '../dataplane/claim-check';
import { isClaimCheckRef } from '../task/data-refs';

export interface ProposeTurnInput {
  workflowId: string;
  /** Claims stated so far with `state_claim` (absent when none: inputs recorded before claims were stated). */
  claims?: StatedClaimRecord[];
  task: Task;
  turn: number;
  /** Every step so far; with `earlier`, only the steps since (the rest are read back by digest). */
  steps: StepRecord[];
  /** Set by runs that send steps by digest: the answer then names the steps shown (`shown`). */
  stepsByDigest?: boolean;
  /** The steps an earlier turn was shown (model-context-store.ts): they precede `steps`. */
  earlier?: StepsRef;
}

/** The model's turn; with `stepsByDigest`, the steps it was shown, stored (next turn's `earlier`). */
export type ProposeTurnResult = ModelTurn & { shown?: StepsRef };

/** The data flow's form: the task and the transcript by reference. */
export interface ProposeTurnRefInput {
  workflowId: string;
  taskRef: string;
  turn: number;
  transcript: Transcript;
}

export interface ProposeTurn {
  (input: ProposeTurnInput): Promise<ProposeTurnResult>;
  (input: ProposeTurnRefInput): Promise<ProposedTurn>;
}

export function createProposeTurn(deps: ActivityDeps): ProposeTurn {
  async function proposeTurn(input: ProposeTurnInput | ProposeTurnRefInput): Promise<ProposeTurnResult | ProposedTurn> {
    try {
      const result =
        'taskRef' in input
          ? await atActivityBoundary(async () => {
              const task = await taskOf(deps, { taskRef: input.taskRef });
              shapeActivitySpan('proposeTurn', { task, workflowId: input.workflowId });
              return proposeNextTurn(deps, { ...input, task }, Context.current().cancellationSignal);
            })
          : await proposeTurnOnce(input);
      annotateActiveSpan({ [WARDEN_ATTR.outcome]: 'ok' });
      return result;
    } catch (error) {
      annotateActiveSpan({ [WARDEN_ATTR.outcome]: outcomeOfError(error) });
      throw error;
    }
  }
  return proposeTurn as ProposeTurn;

  function proposeTurnOnce(input: ProposeTurnInput): Promise<ProposeTurnResult> {
    return atActivityBoundary(async () => {
      const allSteps = input.earlier === undefined ? input.steps : [...(await loadModelSteps(deps.blobs, input.earlier)), ...input.steps];
      const env = deps.env ?? process.env;
      const driver = createDriver(input.task.agent.model, { env });
      const tools: ToolSpec[] = toolSpecsOf(input.task);
      const subagents = Object.entries(input.task.subagents).map(([name, sub]) => ({ name, intent: sub.intent }));
      // The monitor's scores stay out of the model's context: an agent must not learn how it is watched.
      // A claim-checked output (original-loop runs with `warden-claim-check-outputs`) is shown as
      // the value it stands for; only a step's whole output can be one Warden made (a tool's own
      // output shaped like a reference was refused), so nothing else in a step is resolved.
      const blobs = deps.dataPlane?.blobs;
      const steps = await Promise.all(
        allSteps.map(async ({ monitor: _monitor, ...step }) => (blobs !== undefined && isClaimCheckRef(step.output) ? { ...step, output: await resolveClaimChecks(blobs, step.output) } : step)),
      );
      const driverInput = { task: input.task, turn: input.turn, steps, tools, subagents, ...(input.claims === undefined ? {} : { claims: input.claims }) };
      // The custody record of this model call (its `chat <model>` span, which already says who,
      // for what and which model): the hash of the exact prompt context.
      annotateActiveSpan(promptAttributes(driverInput));
      // Every driver's answer passes here on its way into history: whatever a driver forgot, no
      // secret it sends (its API key) leaves in a turn, even if the server echoed it back.
      const secrets = driverSecrets(input.task.agent.model, env);
      let turn: ModelTurn;
      try {
        turn = redactSecrets(await driver.proposeTurn(driverInput, Context.current().cancellationSignal), secrets);
      } catch (error) {
        throw withoutSecrets(error, secrets);
      }
      // The driver is untrusted: its answer is re-validated before it enters history.
      const parsed = ModelTurnSchema.safeParse(turn);
      if (!parsed.success) {
        throw new ModelError('ERR_MODEL_PROTOCOL', `model driver returned an invalid turn: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      }
      annotateActiveSpan(modelResponseAttributes(parsed.data));
      for (const action of parsed.data.actions) if (action.type === 'tool') refuseForgedClaimChecks(action.args, `the model's arguments for ${action.tool}`);
      // This loop records the turn as sent: over Warden's payload budget it is refused here, by name.
      refuseOversizedTurn(parsed.data, input.turn, PAYLOAD_BUDGET_BYTES, 'as sent');
      // Stored only once the turn is good: the next turn sends the reference and the new steps.
      if (input.stepsByDigest === true && deps.blobs !== undefined) return { ...parsed.data, shown: await storeModelSteps(deps.blobs, input.earlier, input.steps) };
      return parsed.data;
    });
  }
}

/** The same failure with every secret removed from its message and details (cancellation passes as is). */
export function withoutSecrets(error: unknown, secrets: readonly string[]): unknown {
  if (secrets.length === 0) return error;
  if (error instanceof WardenError) {
    return new ModelError(error.code, redactSecrets(error.message, secrets), { details: redactSecrets({ ...error.details }, secrets), retryable: error.retryable });
  }
  if (error instanceof Error && error.name !== 'CancelledFailure' && error.name !== 'AbortError') {
    const copy = new Error(redactSecrets(error.message, secrets));
    copy.name = error.name;
    return copy;
  }
  return error;
}
