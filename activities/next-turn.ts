/**
 * Asking the model for its next turn from a transcript passed by reference: the steps before the
 * last turn are a list in the blob store (named by its head digest), the workflow sends only the
 * steps since. Used by `proposeTurn` and by `runTool` when it folds the next turn into the call
 * (one round trip per step instead of two).
 *
 * The answer is re-validated (drivers are untrusted), long string arguments go to the blob store
 * (claim checks), and a turn that would still be too large for history is refused with
 * ERR_PAYLOAD_TOO_LARGE rather than letting Temporal terminate the workflow.
 */
import { createDriver, driverSecrets } from '../drivers/create-driver';
import { redactSecrets } from '../drivers/model-transcript';
import { wellFormedJson } from '../custody/well-formed-json';
import { withoutSecrets } from './propose-turn';
import type { ToolSpec } from '../drivers/model-driver';
import { claimCheckStrings, refuseForgedClaimChecks, resolveClaimChecks } from '../dataplane/claim-check';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import { SpanKind, trace } from '@opentelemetry/api';
import { ModelError, WardenError } from '../errors';
import { jsonBytes, type Transcript } from '../task/data-flow';
import { ModelTurnSchema, type ModelTurn, type StepError, type StepRecord } from '../task/task-run';
import type { Task } from '../task/task-schema';
import { toolSpecsOf } from '../tools/tool-catalog';
import { annotateActiveSpan, modelCallAttributes, modelResponseAttributes, outcomeOfError, promptAttributes, rootWorkflowIdOf } from '../telemetry/warden-span-attributes';
import { genAiSpanName, TEMPORAL_ATTR, WARDEN_ATTR } from '../custody/attributes';
import { dataPlaneOf } from './flow-deps';
import type { ActivityDeps } from './index';

/** Largest model turn (after claim checks) that goes into history. */
export const MODEL_TURN_MAX_BYTES = 256 * 1024;

/**
 * The one cap on a model turn before it goes into history (both loops call it): a turn of more
 * than `limit` bytes (its JSON, UTF-8) is refused, so Temporal never sees a result over its 2 MiB
 * payload limit (which it reports as `Complete result exceeds size limit`, naming nothing).
 * The data flow passes `MODEL_TURN_MAX_BYTES` (its turns are claim-checked first); the original
 * loop, whose turns go into history as the model sent them, `PAYLOAD_BUDGET_BYTES`.
 *
 * @param turn the turn as it would be recorded
 * @param index 0-based index of the turn (named in the message)
 * @throws ModelError ERR_PAYLOAD_TOO_LARGE (not retryable), naming the turn, its size and the limit
 */
export function refuseOversizedTurn(turn: unknown, index: number, limit: number, measured: string): void {
  const bytes = jsonBytes(turn);
  if (bytes > limit) {
    throw new ModelError('ERR_PAYLOAD_TOO_LARGE', `the model's turn ${index} is ${bytes} bytes ${measured}, more than ${limit}; it is not recorded`, {
      details: { turn: index, bytes, limit },
    });
  }
}

export interface NextTurnInput {
  workflowId: string;
  task: Task;
  taskRef: string;
  /** 0-based index of the turn asked for. */
  turn: number;
  transcript: Transcript;
}

/** A model turn and the head of the transcript it was proposed from (the steps up to it). */
export interface ProposedTurn {
  turn: ModelTurn;
  transcriptRef: string | null;
}

/** Steps with claim checks resolved, by transcript head (what drivers see); per worker. */
const resolvedTranscripts = new Map<string, StepRecord[]>();

function remember(ref: string, steps: StepRecord[]): void {
  resolvedTranscripts.delete(ref);
  resolvedTranscripts.set(ref, steps);
  while (resolvedTranscripts.size > 128) resolvedTranscripts.delete(resolvedTranscripts.keys().next().value as string);
}

/** The transcript's steps as the driver sees them, and its new head (the pending steps appended). */
async function transcriptOf(deps: ActivityDeps, transcript: Transcript): Promise<{ steps: StepRecord[]; ref: string | null }> {
  const { chains, blobs } = dataPlaneOf(deps);
  let earlier = transcript.ref === null ? [] : resolvedTranscripts.get(transcript.ref);
  if (earlier === undefined) {
    earlier = (await resolveClaimChecks(blobs, await chains.read<StepRecord>('transcript', transcript.ref))) as StepRecord[];
    if (transcript.ref !== null) remember(transcript.ref, earlier);
  }
  if (transcript.pending.length === 0) return { steps: earlier, ref: transcript.ref };
  const ref = await chains.append('transcript', transcript.ref, transcript.pending);
  const steps = [...earlier, ...((await resolveClaimChecks(blobs, transcript.pending)) as StepRecord[])];
  remember(ref, steps);
  return { steps, ref };
}

/** Asks the task's driver for turn `input.turn`. Sets the model-call attributes on the active span. */
export async function proposeNextTurn(deps: ActivityDeps, input: NextTurnInput, signal?: AbortSignal): Promise<ProposedTurn> {
  const { blobs } = dataPlaneOf(deps);
  const { task } = input;
  const { steps, ref } = await transcriptOf(deps, input.transcript);
  const env = deps.env ?? process.env;
  const driver = createDriver(task.agent.model, { env });
  const tools: ToolSpec[] = toolSpecsOf(task);
  const subagents = Object.entries(task.subagents).map(([name, sub]) => ({ name, intent: sub.intent }));
  // The custody record commits to the exact prompt context through digests: the task's and the
  // transcript head's (a hash chain over every step before this turn).
  annotateActiveSpan({
    ...modelCallAttributes(task, rootWorkflowIdOf(input.workflowId), input.workflowId),
    ...promptAttributes({ taskRef: input.taskRef, turn: input.turn, transcriptRef: ref }),
    [WARDEN_ATTR.turn]: input.turn,
  });
  // Whatever a driver forgot, no secret it sends (its API key) leaves in a turn (as proposeTurn does).
  const secrets = driverSecrets(task.agent.model, env);
  let proposed: ModelTurn;
  try {
    proposed = redactSecrets(await driver.proposeTurn({ task, turn: input.turn, steps, tools, subagents }, signal), secrets);
  } catch (error) {
    throw withoutSecrets(error, secrets);
  }
  const parsed = ModelTurnSchema.safeParse(proposed);
  if (!parsed.success) {
    throw new ModelError('ERR_MODEL_PROTOCOL', `model driver returned an invalid turn: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  }
  annotateActiveSpan(modelResponseAttributes(parsed.data));
  for (const action of parsed.data.actions) if (action.type === 'tool') refuseForgedClaimChecks(action.args, `the model's arguments for ${action.tool}`);
  const turn: ModelTurn = {
    ...parsed.data,
    actions: await Promise.all(
      parsed.data.actions.map(async (action) => (action.type === 'tool' ? { ...action, args: (await claimCheckStrings(blobs, action.args)) as Record<string, unknown> } : action)),
    ),
  };
  refuseOversizedTurn(turn, input.turn, MODEL_TURN_MAX_BYTES, 'after claim checks');
  return { turn, transcriptRef: ref };
}

/**
 * A turn asked for inside another activity (folded into a tool call, or the first turn in
 * `placeTask`), in a GenAI `chat` span of its own so custody records it as a model call. A
 * failure is returned, not thrown: the activity it is folded into did its own work; the workflow
 * then asks for the turn on its own, with that call's retries. `signal` (the activity's
 * cancellationSignal unless given; a data-flow call's also aborts at the task's deadline) stops it.
 */
export async function proposeFoldedTurn(deps: ActivityDeps, input: NextTurnInput, signal: AbortSignal | undefined = activitySignal()): Promise<ProposedTurn | { error: StepError }> {
  // Named as the custody ledger files it: the workflow the model call belongs to.
  return (deps.tracer ?? trace.getTracer('warden')).startActiveSpan(genAiSpanName.chat(input.task.agent.model.id), { kind: SpanKind.CLIENT, attributes: { [TEMPORAL_ATTR.workflowId]: input.workflowId } }, async (span) => {
    try {
      const proposed = await proposeNextTurn(deps, input, signal);
      annotateActiveSpan({ [WARDEN_ATTR.outcome]: 'ok' });
      return proposed;
    } catch (error) {
      annotateActiveSpan({ [WARDEN_ATTR.outcome]: outcomeOfError(error) });
      return { error: stepErrorOfUnknown(error) };
    } finally {
      span.end();
    }
  });
}

/** The running activity's cancellation signal, if this runs in one. */
export function activitySignal(): AbortSignal | undefined {
  try {
    return Context.current().cancellationSignal;
  } catch {
    return undefined;
  }
}

/** The running activity's attempt (1 for the first); outside an activity, 1. */
export function activityAttempt(): number {
  try {
    return Context.current().info.attempt;
  } catch {
    return 1;
  }
}

/** A step error from anything thrown (typed errors keep their code). */
export function stepErrorOfUnknown(error: unknown): StepError {
  // Returned, not thrown, so the failure interceptor (worker/well-formed-failure.ts) does not see
  // it: its message (a provider's error text) is made well-formed here.
  const { value } = wellFormedJson(stepErrorOf(error));
  return value;
}

function stepErrorOf(error: unknown): StepError {
  if (error instanceof WardenError) return { code: error.code, message: error.message };
  if (error instanceof ApplicationFailure) return { code: error.type ?? 'ERR_UNKNOWN', message: error.message };
  return { code: 'ERR_UNKNOWN', message: error instanceof Error ? error.message : String(error) };
}
