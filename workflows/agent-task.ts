/**
 * The agent loop as a Temporal workflow. The model is asked for its next actions through an
 * activity (its output is nondeterministic, so it is recorded in history), every proposed action
 * is checked before anything runs (`guard-action.ts`), tools run as activities in the sandbox
 * (`tool-step.ts`), and sub-agents run as child workflows under a task derived from, and never
 * wider than, this one (`spawn-step.ts`). When the loop ends the saga commits or rolls back
 * (`task-saga.ts`) and the task's grant is revoked.
 *
 * Deterministic code only: no Node APIs, no clocks but the workflow's, no I/O.
 */
import { allHandlersFinished, ApplicationFailure, CancellationScope, condition, isCancellation, workflowInfo } from '@temporalio/workflow';
import { AgentTaskFlowInputSchema, type AgentTaskFlowInput } from '../task/data-flow';
import { AgentTaskInputSchema, type AgentTaskInput, type ModelTurn, type TaskResult } from '../task/task-run';
import { runFlowTask } from './agent-task-flow';
import { takesDataFlow } from './data-flow-choice';
import { askPatches, DATA_FLOW_PATCH, decideDataFlow } from './workflow-patches';
import { summarized } from './activity-stubs';
import { finishRun, startAgentRun, treeOf, type AgentRun } from './agent-run';
import { beginIdentity } from './subagent-handoff';
import { runAction } from './run-action';
import { SessionInbox } from './session-run';
import { TaskEnded, stepErrorOf } from './task-ended';
import { modelTurnSummary } from './ui-summaries';
import { closeRun } from './close-run';
import { attestClaims } from './attest-claims';
import { claimsOfFinalAnswer, stateClaim, statedClaimsOf } from './stated-claims';
import { listingRefOf } from '../mcp/pinned-tool-list';
import { modelTurnInput, rememberShown } from './model-turn-input';

export { DATA_FLOW_PATCH };

export async function agentTask(rawInput: AgentTaskFlowInput): Promise<TaskResult> {
  // The data flow (agent-task-flow.ts) is opt-in, for tasks that use only what it supports; decided
  // from the input alone and in the first activation (like every patch), so replays decide the same.
  // Every patch is asked through one question, itself asked before any other (workflow-patches.ts).
  const askPatch = askPatches();
  if (takesDataFlow(rawInput) && decideDataFlow(askPatch)) return runFlowTask(parseFlowInput(trustedFlowInput(rawInput)), askPatch);
  const run = startAgentRun(parseInput(rawInput), rawInput, { askPatch });
  // An existing agent connected through `warden mcp serve`: its calls arrive as Updates.
  const session = run.task.agent.model.driver === 'mcp-client' ? new SessionInbox(run) : undefined;
  const result = await run.monitor.settle(run, await runLoop(run, session));
  session?.close();
  await CancellationScope.nonCancellable(() => run.approvals.flushNotices());
  // A completed task's MCP servers stop writing into the overlay before it is committed; a task
  // that rolls back keeps them until its compensations (which may call them) have run.
  const closeFirst = result.status === 'completed';
  if (run.toolSourcesOpened && closeFirst) await CancellationScope.nonCancellable(() => closeSources(run));
  result.recovery = await CancellationScope.nonCancellable(() => run.saga.settle(result, run.identity?.grantId, run.affinity));
  if (run.toolSourcesOpened && !closeFirst) await CancellationScope.nonCancellable(() => closeSources(run));
  if (result.status === 'completed' && !run.isRoot) result.compensations = run.saga.compensations;
  // What its steps wrote goes up with them: the root's commit proves it (commit-proof patch).
  if (result.status === 'completed' && !run.isRoot && run.patches.commitProof && run.saga.writes.length > 0) result.writes = run.saga.writes;
  if (!run.isRoot) result.policyState = run.policyState;
  if (run.identity !== undefined) {
    const grantId = run.identity.grantId;
    // Ending the grant is part of ending the task, also when it was cancelled.
    await CancellationScope.nonCancellable(() => summarized.endTask(`revoke grant (${result.status})`)({ grantId, status: result.status }));
  }
  // The root checks every claim of the task tree against what was committed (attest-claims.ts).
  if (run.patches.attestClaims) await CancellationScope.nonCancellable(() => attestClaims(run, result));
  // Every session call has its answer before the workflow completes.
  if (session !== undefined) await condition(allHandlersFinished);
  await run.monitor.finish(result);
  return closeRun(run, result);
}

/**
 * Each workflow evaluates its own copy of the bundle's modules (the SDK's reusable V8 context
 * shares only the SDK's), so every schema here is new to each run and parses one input. zod's
 * fast path compiles a parser per object schema (`new Function`) on its first parse, which costs
 * more than the one parse it speeds up: the entry parse skips it. The same checks, the same
 * result (zod's `jitless` parse context).
 */
export const ONE_PARSE = { jitless: true } as const;

/** The input as its schema defines it; a malformed input fails the workflow, it is not retried. */
function parseInput(rawInput: AgentTaskInput): AgentTaskInput {
  const parsed = AgentTaskInputSchema.safeParse(rawInput, ONE_PARSE);
  if (!parsed.success) throw invalidInput(parsed.error.issues);
  return parsed.data as AgentTaskInput;
}

/**
 * A client that starts a task gives `{ task }` (and tuning in `flow`); everything else in the
 * input (grant, data plane, carried state) is Warden's, and is accepted only from where Temporal
 * itself vouches for the sender: this task's previous run (`continuedFromExecutionRunId`). The data
 * flow runs roots only (takesDataFlow), so no parent ever hands a data-flow run anything. Otherwise
 * a starter could hand a task another task's grant, or a data plane and state it made up.
 */
function trustedFlowInput(rawInput: AgentTaskFlowInput): AgentTaskFlowInput {
  const given = rawInput as unknown as Record<string, unknown>;
  // A root's own defaults (depth 0, no lineage) say nothing; anything else is Warden's to set.
  const rootDefault = (key: string) => (key === 'depth' && given[key] === 0) || (key === 'lineage' && Array.isArray(given[key]) && (given[key] as unknown[]).length === 0);
  const wardens = Object.keys(given).filter((key) => key !== 'task' && key !== 'flow' && given[key] !== undefined && !rootDefault(key));
  if (wardens.length === 0 || carriedFromOwnPreviousRun()) return rawInput;
  throw ApplicationFailure.nonRetryable(`invalid agentTask input: ${wardens.join(', ')} may only come from the task's previous run; start a task with { task }`, 'ERR_TASK_INPUT_INVALID');
}

/**
 * Whether this run's input was handed over by the task's own previous run (continue-as-new).
 * Temporal also names a previous run for a cron schedule's next run and a workflow retry, whose
 * input is the starter's again: those carry nothing of Warden's.
 */
function carriedFromOwnPreviousRun(): boolean {
  const info = workflowInfo();
  return info.continuedFromExecutionRunId !== undefined && info.cronSchedule === undefined && info.attempt === 1;
}

function parseFlowInput(rawInput: AgentTaskFlowInput): AgentTaskFlowInput {
  const parsed = AgentTaskFlowInputSchema.safeParse(rawInput, ONE_PARSE);
  if (!parsed.success) throw invalidInput(parsed.error.issues);
  return parsed.data as AgentTaskFlowInput;
}

function invalidInput(issues: readonly { path: readonly PropertyKey[]; message: string }[]): ApplicationFailure {
  const where = issues.slice(0, 5).map((i) => `${i.path.map(String).join('.') || '(input)'}: ${i.message}`);
  return ApplicationFailure.nonRetryable(`invalid agentTask input: ${where.join('; ')}`, 'ERR_TASK_INPUT_INVALID');
}

/** Begin, then ask the model and run its actions until a final answer, a limit or the deadline. */
async function runLoop(run: AgentRun, session: SessionInbox | undefined): Promise<TaskResult> {
  const { state } = run;
  const stepLimitReached = () => finishRun(run, 'limit_exceeded', `step limit of ${run.task.limits.maxSteps} reached`);
  // Before Temporal's own history limits end the workflow without its saga (history-budget.ts).
  const historyFull = () => run.historyBudget.exceeded(run.saga.compensations.length);
  try {
    await begin(run);
    if (session !== undefined) return await session.serve();
    // After begin: the task now holds its MCP servers' pinned tool lists.
    const task = run.task;
    for (;;) {
      if (state.steps.length >= task.limits.maxSteps) return stepLimitReached();
      const fullBeforeTurn = historyFull();
      if (fullBeforeTurn !== undefined) return finishRun(run, 'limit_exceeded', fullBeforeTurn);
      const turn = state.turn;
      const claims = statedClaimsOf(run);
      const modelTurn: ModelTurn = await run.deadline.within(async () => {
        const answer = await summarized.proposeTurn(modelTurnSummary(task, turn))(modelTurnInput(run, turn, claims));
        rememberShown(run, answer);
        return answer;
      });
      state.turn += 1;
      state.model = modelTurn.model;
      (state.turns ??= []).push({ index: turn, model: modelTurn.model, actions: modelTurn.actions.length, ...(modelTurn.usage === undefined ? {} : { usage: modelTurn.usage }) });
      for (const action of modelTurn.actions) {
        if (action.type === 'final') {
          state.final = { answer: action.answer, claims: claimsOfFinalAnswer(run, action.claims) };
          return finishRun(run, 'completed');
        }
        if (action.type === 'claim') {
          stateClaim(run, action, turn);
          continue;
        }
        if (state.steps.length >= task.limits.maxSteps) return stepLimitReached();
        const fullBeforeAction = historyFull();
        if (fullBeforeAction !== undefined) return finishRun(run, 'limit_exceeded', fullBeforeAction);
        await runAction(run, action, turn);
      }
    }
  } catch (error) {
    if (error instanceof TaskEnded) return finishRun(run, error.status, error.reason);
    if (isCancellation(error)) return finishRun(run, 'cancelled', 'the task was cancelled');
    const failure = stepErrorOf(error);
    return finishRun(run, 'failed', `${failure.code}: ${failure.message}`);
  }
}

/** The task's grant (a sub-agent's is its parent's verified delegation) and, at the root, the workspace overlay. */
async function begin(run: AgentRun): Promise<void> {
  const { task, deadline } = run;
  run.identity ??= await beginIdentity(run, task);
  // A sub-agent's handoff was verified just now: its data plane (the root's worker) is the tree's.
  if (!run.isRoot) run.affinity.pin(run.origin.dataPlane?.taskQueue, run.origin.dataPlane?.startTimeoutSeconds);
  await run.monitor.begin(run);
  if (!run.isRoot) return;
  const prepared = await deadline.within(() => summarized.prepareTask('prepare workspace overlay')({ ...treeOf(run), task }));
  // The worker that prepared the task holds its data plane from here on (data-plane-affinity.ts).
  run.affinity.pin(prepared.dataPlaneQueue);
  run.saga.snapshotTaken = prepared.snapshot;
  if (task.resources.workspace !== undefined) run.saga.registerOverlay(prepared.taskKey);
  if (Object.keys(task.tools.mcp ?? {}).length > 0) {
    run.toolSourcesOpened = true;
    const listings = await run.affinity.loop((on) => deadline.within(() => summarized.openToolSources('open MCP servers', on)({ ...treeOf(run), task, deadlineAt: deadline.deadlineAt })));
    run.task = { ...task, tools: { ...task.tools, mcpPinned: listings } };
    // Recorded once in history (this activity's result); later activities get the digests only.
    if (run.patches.mcpPinsByDigest) run.activityTask = { ...task, tools: { ...task.tools, mcpPins: listings.map(listingRefOf) } };
    else run.activityTask = run.task;
    run.saga.useTask(run.task, run.activityTask);
  }
}

/** Ends the task's MCP sessions (stdio servers' process trees are killed); a failure here changes nothing else. */
async function closeSources(run: AgentRun): Promise<void> {
  try {
    await run.affinity.saga((on) => summarized.closeToolSources('close MCP servers', on)(treeOf(run)));
  } catch {
    // The worker kills its servers at the task's deadline anyway.
  }
}
