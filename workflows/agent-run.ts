/**
 * One run of the agent workflow: the task, where it sits in the task tree, its deadline, saga,
 * approval gate and the state the `warden.taskState` query shows. The step modules read and
 * update it; nothing here does I/O.
 */
import { setHandler, workflowInfo } from '@temporalio/workflow';
import type { ActionCheck } from '../permissions/check-action';
import { emptyPolicyState, type PolicyState } from '../policies/engine/policy-state';
import { durationToMs } from '../task/duration';
import type { Action, AgentTaskInput, StepRecord, TaskIdentity, TaskResult, TaskState, TaskStatus } from '../task/task-run';
import type { Task } from '../task/task-schema';
import type { ProvenanceSeed } from '../policies/provenance-seed';
import type { StepsRef } from '../activities/model-context-store';
import { toolActivities, type ToolActivities } from './activity-stubs';
import { ApprovalGate } from './approval-gate';
import { CallsInFlight } from './calls-in-flight';
import { taskStateQuery } from './definitions';
import { TaskDeadline } from './task-deadline';
import type { TaskFlow } from './task-flow';
import { TaskMonitor } from './monitor-step';
import { TaskSaga } from './task-saga';
import { decidePatches, type PatchQuestion, type WorkflowPatches } from './workflow-patches';
import { LocalLane } from './local-lane';
import { claimsHandoff, originOf, type RunOrigin } from './subagent-handoff';
import { DataPlaneAffinity } from './data-plane-affinity';
import { HistoryBudget } from './history-budget';

/** A tool call or a spawn: the actions that become steps. */
export type StepAction = Action & { type: 'tool' | 'spawn' };

export interface AgentRun {
  /** The task; replaced once, when the MCP servers' tool lists are pinned into `tools.mcpPinned`. */
  task: Task;
  /**
   * The task as activities receive it: `task`, except that once its MCP servers are pinned their
   * lists go by digest (`tools.mcpPins`), never in full, so a step's history does not grow with
   * what a server lists (older runs: `task` itself).
   */
  activityTask: Task;
  /** The steps the model has been shown, stored by the last turn (model-turn-input.ts). */
  modelShown?: StepsRef;
  /** Set before the task's MCP servers are opened, so they are closed however the task ends. */
  toolSourcesOpened: boolean;
  /** 0 for the task the user started. */
  readonly depth: number;
  /** Workflow ids from the root task down to this one's parent. */
  readonly lineage: readonly string[];
  readonly workflowId: string;
  readonly runId: string;
  readonly rootWorkflowId: string;
  readonly isRoot: boolean;
  /** Agent names from the root down to this one's parent (for policy rules on the tree). */
  readonly agentChain: readonly string[];
  readonly deadline: TaskDeadline;
  readonly state: TaskState;
  /** Behaviour changes, decided once at the start (see workflow-patches.ts). */
  readonly patches: WorkflowPatches;
  readonly saga: TaskSaga;
  readonly approvals: ApprovalGate;
  readonly tools: ToolActivities;
  /** The tool calls in flight, which a block cancels (calls-in-flight.ts). */
  readonly calls: CallsInFlight;
  /** The task's grant: issued by `beginTask`, or by the parent for a sub-agent. */
  identity: TaskIdentity | undefined;
  /** Policy counters (rates, totals, budgets), merged back from sub-agents. */
  policyState: PolicyState;
  /** Steps taken in earlier runs of this task (continue-as-new): step indices continue from here. */
  readonly stepBase: number;
  /** The data flow (placement, references, continue-as-new); undefined on the original path. */
  flow?: TaskFlow;
  /** A sub-agent's provenance: the root user's values and what its parent had from trusted data. */
  readonly seed: ProvenanceSeed | undefined;
  /** Scores every action and carries out the response rules (monitor-step.ts). */
  readonly monitor: TaskMonitor;
  /** Where the run sits in its task tree, as its input claims it (subagent-handoff.ts). */
  readonly origin: RunOrigin;
  /** The root task's first run id, which names the tree's recovery state (undefined: keyed by workflow id, older trees). */
  readonly rootRunId: string | undefined;
  /** Where the tree's data-plane activities go on the original loop (data-plane-affinity.ts). */
  readonly affinity: DataPlaneAffinity;
  /** Ends the original loop before Temporal's history limits (history-budget.ts). */
  readonly historyBudget: HistoryBudget;
}

export interface AgentRunOptions {
  /** False for the data flow: the deadline is enforced by activity timeouts, not timers. */
  deadlineTimers?: boolean;
  stepBase?: number;
  /**
   * A data-flow root's continued run: the deadline its first run set (epoch ms). The flow runs
   * roots only (agent-task.ts), and its carried identity is set by runFlowTask after Temporal
   * vouched for the previous run.
   */
  continuedDeadlineAt?: number;
  /** A run of the data flow (agent-task-flow.ts): it may continue as new. */
  dataFlow?: boolean;
  /** How the run asks its patches (workflow-patches.ts `askPatches`); default `patched` itself. */
  askPatch?: PatchQuestion;
}

/** The task tree's key for recovery activities: the root's workflow id and, for newer trees, its run. */
export function treeOf(run: Pick<AgentRun, 'rootWorkflowId' | 'rootRunId'>): { rootWorkflowId: string; rootRunId?: string } {
  return { rootWorkflowId: run.rootWorkflowId, ...(run.rootRunId === undefined ? {} : { rootRunId: run.rootRunId }) };
}

/**
 * Sets up a run from the workflow input; installs the state query and the approval handler. `raw`
 * is the input as received (a sub-agent's handoff is verified on it).
 */
export function startAgentRun(input: AgentTaskInput, raw: AgentTaskInput = input, options: AgentRunOptions = {}): AgentRun {
  const { task } = input;
  const patches = decidePatches(!claimsHandoff(input), Object.keys(task.tools.mcp ?? {}).length > 0, options.dataFlow ?? false, task.agent.model.driver === 'mcp-client', options.askPatch, Object.keys(task.subagents).length > 0);
  const origin = originOf(input, raw, patches);
  const { depth, lineage, isRoot } = origin;
  const info = workflowInfo();
  const ownDeadline = Date.now() + durationToMs(task.limits.deadline);
  const inherited = options.continuedDeadlineAt ?? origin.inheritedDeadlineAt;
  const deadlineAt = inherited === undefined ? ownDeadline : Math.min(ownDeadline, inherited);
  const deadline = new TaskDeadline(deadlineAt, task.limits.deadline, options.deadlineTimers ?? true);
  const rootWorkflowId = lineage[0] ?? info.workflowId;
  const state: TaskState = {
    workflowId: info.workflowId,
    agent: task.agent.name,
    model: { id: task.agent.model.id, version: task.agent.model.version },
    depth,
    status: 'running',
    steps: [],
    children: [],
    final: null,
    turn: 0,
    pendingApprovals: [],
  };
  setHandler(taskStateQuery, () => state);
  const run: AgentRun = {
    task,
    activityTask: task,
    depth,
    lineage,
    workflowId: info.workflowId,
    runId: info.runId,
    rootWorkflowId,
    isRoot,
    agentChain: [...lineage.map((id) => id.split('/').pop()!.replace(/-\d+$/, '')), task.agent.name].slice(0, -1),
    deadline,
    state,
    patches,
    saga: new TaskSaga({ task, rootWorkflowId, isRoot, ...(origin.rootRunId === undefined ? {} : { rootRunId: origin.rootRunId }) }, patches),
    approvals: new ApprovalGate(state, deadline, task.limits.approvalTimeout, { workflowId: info.workflowId, runId: info.runId, rootWorkflowId, user: task.user }, patches.approvalUpdate, patches.approvalNotices),
    tools: toolActivities(task, patches.stopCalls),
    calls: new CallsInFlight(patches.stopCalls),
    // A sub-agent's identity is the verified handoff's (set in begin), never the input's.
    identity: origin.trustedIdentity,
    toolSourcesOpened: false,
    policyState: (origin.policyState as PolicyState | undefined) ?? emptyPolicyState(),
    stepBase: options.stepBase ?? 0,
    // A sub-agent's provenance comes with its verified handoff (histories from before: the input's).
    seed: origin.isRoot ? undefined : patches.subagentHandoff ? input.handoff?.provenance : (input.provenance ?? input.handoff?.provenance),
    origin,
    rootRunId: origin.rootRunId,
    monitor: new TaskMonitor(patches.monitor, patches.monitorNetwork, new LocalLane(patches.localLane)),
    // Pinned in `begin`: a root's where it was prepared, a sub-agent's from its verified handoff.
    affinity: new DataPlaneAffinity(patches.ordinaryAffinity, input.flow?.dataPlaneStartTimeoutSeconds),
    historyBudget: new HistoryBudget(patches.historyBudget, {
      ...(input.flow?.maxHistoryEvents === undefined ? {} : { maxHistoryEvents: input.flow.maxHistoryEvents }),
      ...(input.flow?.maxHistoryBytes === undefined ? {} : { maxHistoryBytes: input.flow.maxHistoryBytes }),
    }),
  };
  run.monitor.install(run);
  return run;
}

/** Steps this task took so far, in every run. */
export function stepCount(run: AgentRun): number {
  return run.stepBase + run.state.steps.length;
}

/** Appends the step for a proposed action, with the grant check's decision. */
export function recordStep(run: AgentRun, action: StepAction, turn: number, check: ActionCheck, began: number): StepRecord {
  const step: StepRecord = {
    index: stepCount(run),
    turn,
    kind: action.type,
    tool: action.type === 'tool' ? action.tool : `spawn:${action.subagent}`,
    args: action.type === 'tool' ? action.args : { subagent: action.subagent, ...(action.intent === undefined ? {} : { intent: action.intent }) },
    ...(action.callId === undefined ? {} : { callId: action.callId }),
    decision: check.decision,
    reason: check.reason,
    executed: false,
    startedAt: new Date(began).toISOString(),
    durationMs: 0,
  };
  run.state.steps.push(step);
  return step;
}

/** The run's result with its final status. */
export function finishRun(run: AgentRun, status: TaskStatus, reason?: string): TaskResult {
  const { state } = run;
  state.status = status;
  return {
    workflowId: state.workflowId,
    runId: run.runId,
    agent: state.agent,
    model: state.model,
    depth: run.depth,
    ...(run.identity === undefined ? {} : { identity: run.identity }),
    status,
    ...(reason === undefined ? {} : { reason }),
    steps: state.steps,
    ...(state.turns === undefined ? {} : { turns: state.turns }),
    children: state.children,
    final: state.final,
  };
}
