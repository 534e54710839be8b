/**
 * Every `patched()` decision of the agent workflow, taken once, in its first activation.
 *
 * Why at the start: during replay `patched()` only returns true for a marker in the workflow task
 * being replayed. Asked later (say, right after a local activity), the original run and a replay
 * from scratch can disagree on which workflow task the question falls in (a slow local activity
 * makes the server start a new one), and the replay then fails with a nondeterminism error. The
 * first activation is the same in every run.
 */
import { patched as askPatch, workflowInfo } from '@temporalio/workflow';
import { WARDEN_SEARCH_ATTRIBUTES } from './search-attributes';
import { CLOSE_PATCHES } from './task-close';

/** Approvals are an authenticated Update (older runs take the unauthenticated signal). */
export const APPROVAL_UPDATE_PATCH = 'approval-update';
/** Call keys name the run and the call (older runs keep `<workflowId>:<step>`). */
export const CALL_KEY_PATCH = 'call-key-run-and-call';
/**
 * The data flow (agent-task-flow.ts): data-plane affinity, references in history, one round trip
 * per step, continue-as-new. Decided in `agentTask` itself, first thing, from the input.
 */
export const DATA_FLOW_PATCH = 'warden-data-flow-1';
/** A sub-agent's file writes are undone per call. */
export const SUBAGENT_FS_UNDO_PATCH = 'subagent-fs-undo';
/** A sub-agent's handoff (identity, lineage, deadline, policy state) is verified, not trusted from the input. */
export const SUBAGENT_HANDOFF_PATCH = 'subagent-handoff-verified';
/** The task tree's recovery state (overlay, journal, snapshots) is keyed by its root's run, not its workflow id alone. */
export const RECOVERY_BY_RUN_PATCH = 'recovery-keyed-by-run';
/** Held actions and their decisions are announced (`notifyApproval`, the approval webhook). */
export const APPROVAL_NOTICE_PATCH = 'warden-approval-notice';
/** A commit that fails ends the task `failed` with the reason, and rolls back (older runs failed the workflow). */
export const COMMIT_FAILURE_RESULT_PATCH = 'commit-failure-result';
/** A sub-agent's program (`proc.run`) writes are undone per call, like its fs.write calls. */
export const SUBAGENT_PROGRAM_UNDO_PATCH = 'subagent-program-undo';
/** Every action is scored and the response rules apply (monitor-step.ts); older runs are not monitored. */
export const MONITOR_PATCH = 'warden-monitor-1';
/** The monitor scores what a call does on the network (declared URLs, measured requests) and holds new hosts at the egress (monitor-step.ts). */
export const MONITOR_NETWORK_PATCH = 'warden-monitor-network';

/**
 * A data-flow run hands the monitor's state to its next run (monitor-carry.ts) and waits for its
 * alert deliveries first; older runs continued as new without it (their next runs start empty,
 * which needs no marker: a run resumes only what its input carries).
 */
export const MONITOR_CARRIED_PATCH = 'warden-monitor-carried';

/**
 * A task's MCP tool lists reach its activities by digest (`tools.mcpPins`), read back from the
 * worker's state store, and the servers' descriptions are added to provenance by the policy
 * activity; older runs send the full lists with every activity.
 */
export const MCP_PINS_BY_DIGEST_PATCH = 'mcp-pins-by-digest';

/** A model turn gets the steps since the last turn and the earlier ones by digest (model-turn-input.ts); older runs send every step to every turn. */
export const MODEL_STEPS_BY_DIGEST_PATCH = 'model-steps-by-digest';

/** The root task verifies its tree's claims after the commit (older runs end without). */
export const ATTEST_CLAIMS_PATCH = 'attest-claims';

/** A run's local activities go one at a time (local-lane.ts): a handler's beside the loop's replay alike. */
export const LOCAL_LANE_PATCH = 'warden-local-lane';

/**
 * The ordinary loop's commit proves the overlay holds exactly what the task tree's steps wrote
 * (each call reports its writes, a completed sub-agent hands its own up): a missing or different
 * overlay fails the task and rolls it back. Older runs commit whatever the overlay holds.
 */
export const COMMIT_PROOF_PATCH = 'warden-commit-proof';

/**
 * A data-flow run's local activities on its data plane (`TaskFlow.callHere`: the commit, the
 * grant's revocation) go in the run's lane too, beside the handlers' (local-lane.ts); older
 * data-flow runs ran them outside it.
 */
export const FLOW_LOCAL_LANE_PATCH = 'warden-flow-local-lane';

/**
 * The original loop's tool calls check an output over 16 KiB into the blob store and hand the
 * workflow its claim check (the data flow's `claimCheckJson`), and an action's arguments that
 * would not fit Temporal's payload limit fail the step (ERR_PAYLOAD_TOO_LARGE). Older runs keep
 * outputs in history whole.
 */
export const CLAIM_CHECK_OUTPUTS_PATCH = 'warden-claim-check-outputs';

/**
 * The original loop's data-plane affinity (data-plane-affinity.ts): the activities that touch the
 * task tree's overlay, sandbox host and MCP servers go to the queue of the worker that prepared it
 * (a sub-agent's from its signed handoff), and a lost worker fails the task closed. Older runs
 * send them to the shared queue.
 */
export const ORDINARY_AFFINITY_PATCH = 'warden-ordinary-affinity';

/**
 * The original loop ends a run whose history would outgrow Temporal's limits while its saga
 * still fits (history-budget.ts: ERR_HISTORY_LIMIT, rolled back) instead of being terminated by
 * the server. Older runs grow until the server stops them.
 */
export const HISTORY_BUDGET_PATCH = 'warden-history-budget';

/**
 * The data flow's activity that brings the next turn (a tool call with the turn folded in, or
 * `placeTask` with the first turn) also decides on the turn's first action, and the workflow uses
 * that decision instead of its `checkPolicy` local activity when its own inputs digest the same at
 * a time the decision holds for (policies/policy-precheck.ts). Older runs ask the local activity.
 */
export const POLICY_PRECHECK_PATCH = 'warden-policy-precheck';

/**
 * An `mcp-client` task whose client disconnects while a call waits for approval withdraws the
 * wait (undecided) and ends as for any disconnect (session-run.ts). Older runs kept waiting.
 */
export const SESSION_END_WITHDRAWS_PATCH = 'warden-session-end-withdraws';

/**
 * Whatever ends the task while a tool call is in flight (a kill, a monitor's or a parent's block,
 * the deadline, a cancel) cancels that call and waits until its activity is cancelled: the program
 * is dead before the compensations run (calls-in-flight.ts). Older runs left the call running.
 */
export const STOP_CALLS_PATCH = 'warden-stop-calls-in-flight';

/**
 * A data-flow tool call is bounded by the task's deadline on the worker (it gets `deadlineAt`; the
 * tool is stopped there as a cancelled call is, and the activity fails ERR_DEADLINE_EXCEEDED), and
 * its schedule-to-close is a margin past the deadline: the task ends once the tool has stopped.
 * Older data-flow runs had the server time the call out at the deadline, the tool still running.
 */
export const FLOW_CALL_DEADLINE_PATCH = 'warden-flow-call-deadline';

/**
 * A tool call whose activity was started registers its undo however it ends: completed, failed,
 * or cut short by the task's end (a cancel, Ctrl-C in `warden run`, the deadline), and its record
 * says it ran (run-action.ts, tool-step.ts). Older runs rethrew the task's end before registering
 * it, so a call that committed rows and was then cancelled kept them and read `not run`.
 */
export const UNDO_ENDED_CALLS_PATCH = 'warden-undo-ended-calls';

/**
 * What recovery registers and reports follows what the call's failure says its tool did
 * (activities/call-outcome.ts): a call refused before its tool started (`notRun`) registers no
 * undo and reads not run; a call whose stop was not confirmed (`stopUnconfirmed`, an HTTP MCP
 * server that never answered the cancellation) is listed as possibly not undone. Older runs
 * registered every started call's undo, a compensating tool then running for a call that never ran.
 */
export const UNDO_WHAT_RAN_PATCH = 'warden-undo-what-ran';

/**
 * A call reads not run only when its activity vouched for it (`notRun`, its first attempt, before
 * its tool started: activities/call-outcome.ts). Runs with `warden-undo-what-ran` alone also took a
 * cancelled activity with no recorded start (`startedEventId` 0) for a call no worker started, but
 * Temporal records that for a cancel in the backoff between two attempts too, however much the
 * earlier attempts did: such a call registered no undo and its effect was never undone.
 */
export const NOT_RUN_VOUCHED_PATCH = 'warden-not-run-vouched';

/**
 * A sub-agent's limit it does not name is its parent's (task/task-schema.ts
 * `SubagentLimitsSchema`, permissions/derive-subagent-task.ts). Older runs took the schema's
 * defaults for it (toolTimeout 5s under a parent's 900s): zod filled them when the workflow parsed
 * its input. Only a task that declares sub-agents asks.
 */
export const SUBAGENT_LIMITS_INHERITED_PATCH = 'warden-subagent-limits-inherited';

/**
 * A compensating tool runs for a call whose start is in doubt (its undo registered without a
 * result: the data plane lost with the call scheduled, the task's end or a failure with no word
 * that its tool never started) only when the call's durable start record says its tool started
 * (recovery/call-starts.ts): no record fences the call off and reads not run; a worker that cannot
 * say lists it as possibly run and not undone. Older runs ran the compensating tool for every such
 * call, also one no worker ever started (stock 1 -> 101).
 */
export const TOOL_UNDO_STARTED_PATCH = 'warden-tool-undo-started';

/**
 * What a call that fails did is counted and recorded as a completed call's is (tool-step.ts): the
 * call itself in the task's policy state (status `error`: a rate rule counts it), the capability
 * calls a custom tool's gate applied before it failed, and what its program or MCP server did
 * through the egress proxy (a program stopped at its wall time after a GET to a new host), scored
 * by the monitor. The failure's details carry them (activities/call-outcome.ts). Older runs counted
 * only a completed or stopped call: a tool that POSTed and then threw was never counted by a rate
 * rule, and a failed call's egress was never scored.
 */
export const COUNT_FAILED_CALLS_PATCH = 'warden-count-failed-calls';

/**
 * A data-flow run's call of a pure tool (it can only compute on its input: no capability) that is
 * short (its time limit at most LOCAL_CALL_LIMIT_MS) runs as a local activity on the data plane's
 * worker, the next turn folded in only when that turn is computed there too (a scripted model):
 * no round trip through Temporal's matching (tool-step.ts `runsLocally`). Older runs called every
 * tool as an activity on the data plane's queue.
 */
export const LOCAL_PURE_CALLS_PATCH = 'warden-local-pure-calls';

/**
 * One marker for the patches of this module that existed when it was made
 * ({@link PATCHES_TAKEN_AT_ONCE}): a run that records it takes each of them without a marker per
 * patch. Each patch marker came with the SDK's `TemporalChangeVersion` search attribute upsert, so
 * a new task's first workflow task recorded two events per patch (38 of a 10-step data-flow task's
 * 112) and the server updated the task's visibility record as many times. Asked first, before any
 * other patch: runs recorded before it have no such marker, answer false, and ask every patch on
 * its own as they did.
 */
export const PATCHES_AT_ONCE_PATCH = 'warden-patches-at-once';

/**
 * What a run that recorded {@link PATCHES_AT_ONCE_PATCH} took: frozen. A patch made later is asked
 * on its own (its own marker) even in such a run, which ran without it; adding it here would have
 * those runs' replays take it (nondeterminism). To fold later patches in, make another at-once
 * patch over a new frozen list (test/workflows/patches-taken-at-once.test.ts pins this one).
 */
export const PATCHES_TAKEN_AT_ONCE: ReadonlySet<string> = new Set([
  DATA_FLOW_PATCH,
  APPROVAL_UPDATE_PATCH,
  CALL_KEY_PATCH,
  SUBAGENT_FS_UNDO_PATCH,
  SUBAGENT_HANDOFF_PATCH,
  RECOVERY_BY_RUN_PATCH,
  APPROVAL_NOTICE_PATCH,
  CLOSE_PATCHES.statusSearchAttribute,
  CLOSE_PATCHES.closeAsFailed,
  COMMIT_FAILURE_RESULT_PATCH,
  SUBAGENT_PROGRAM_UNDO_PATCH,
  ATTEST_CLAIMS_PATCH,
  MONITOR_PATCH,
  MCP_PINS_BY_DIGEST_PATCH,
  MODEL_STEPS_BY_DIGEST_PATCH,
  MONITOR_NETWORK_PATCH,
  MONITOR_CARRIED_PATCH,
  LOCAL_LANE_PATCH,
  COMMIT_PROOF_PATCH,
  FLOW_LOCAL_LANE_PATCH,
  CLAIM_CHECK_OUTPUTS_PATCH,
  ORDINARY_AFFINITY_PATCH,
  HISTORY_BUDGET_PATCH,
  POLICY_PRECHECK_PATCH,
  SESSION_END_WITHDRAWS_PATCH,
  STOP_CALLS_PATCH,
  FLOW_CALL_DEADLINE_PATCH,
  UNDO_ENDED_CALLS_PATCH,
]);

/**
 * One marker for the patches made after {@link PATCHES_AT_ONCE_PATCH} ({@link PATCHES_TAKEN_AT_ONCE_2}),
 * which a new run recorded one marker (and one `TemporalChangeVersion` upsert) each for: three of
 * a 10-step data-flow task's markers (issue 17, the server's CPU per call). Asked right after the
 * first, and only in a run that took the first: runs recorded before it have no such marker, answer
 * false, and ask each of its patches on its own as they did.
 */
export const PATCHES_AT_ONCE_2_PATCH = 'warden-patches-at-once-2';

/** What a run that recorded {@link PATCHES_AT_ONCE_2_PATCH} took: frozen, as {@link PATCHES_TAKEN_AT_ONCE} is (the same test pins it). */
export const PATCHES_TAKEN_AT_ONCE_2: ReadonlySet<string> = new Set([UNDO_WHAT_RAN_PATCH, NOT_RUN_VOUCHED_PATCH, SUBAGENT_LIMITS_INHERITED_PATCH, TOOL_UNDO_STARTED_PATCH]);

/** Whether the run takes patch `id`: `patched(id)`, or true without a marker of its own for a patch the run took at once. */
export type PatchQuestion = (id: string) => boolean;

/**
 * The run's {@link PatchQuestion}; call once, first thing in the workflow's first activation
 * (agent-task.ts), and ask every patch through it. `patched` is the SDK's (a parameter for tests).
 */
export function askPatches(patched: (id: string) => boolean = askPatch): PatchQuestion {
  if (!patched(PATCHES_AT_ONCE_PATCH)) return patched;
  const atOnce2 = patched(PATCHES_AT_ONCE_2_PATCH);
  return (id) => PATCHES_TAKEN_AT_ONCE.has(id) || (atOnce2 && PATCHES_TAKEN_AT_ONCE_2.has(id)) || patched(id);
}

export interface WorkflowPatches {
  approvalUpdate: boolean;
  callKeys: boolean;
  subagentFsUndo: boolean;
  /** Only for a run that claims a parent's handoff. */
  subagentHandoff: boolean;
  /** Only for a root task (its sub-agents take the choice from their handoff). */
  recoveryByRun: boolean;
  approvalNotices: boolean;
  /** Set `WardenStatus` at the end (only when the task started with it: the namespace has it). */
  statusSearchAttribute: boolean;
  /** A task that did not complete closes as failed, carrying its result (task-close.ts). */
  closeAsFailed: boolean;
  /** A failed commit ends the task failed and rolled back, with a result (task-saga.ts). */
  commitFailureResult: boolean;
  /** A sub-agent's proc.run writes are undone when it does not complete (task-saga.ts). */
  subagentProgramUndo: boolean;
  attestClaims: boolean;
  monitor: boolean;
  /** Only for a task with MCP servers: their lists travel by digest (agent-task.ts `begin`). */
  mcpPinsByDigest: boolean;
  modelStepsByDigest: boolean;
  monitorNetwork: boolean;
  /** Only for a data-flow run (the only kind that continues as new): task-flow.ts `continueAsNew`. */
  monitorCarried: boolean;
  /** One local activity in flight at a time (local-lane.ts). */
  localLane: boolean;
  /** Calls report the files they wrote, and the root's commit proves them (task-saga.ts). */
  commitProof: boolean;
  /** Only for a data-flow run: its data-plane local activities go in the lane (task-flow.ts `callHere`). */
  flowLocalLane: boolean;
  /** Tool outputs over 16 KiB reach history as claim checks (run-tool.ts `claimCheckOutput`). */
  claimCheckOutputs: boolean;
  /** Data-plane activities go to the preparing worker's queue (data-plane-affinity.ts). */
  ordinaryAffinity: boolean;
  /** The run ends itself before Temporal's history limits (history-budget.ts). */
  historyBudget: boolean;
  /** Only for a data-flow run: decisions made ahead by the activity that brings the turn (guard-action.ts). */
  policyPrecheck: boolean;
  /** Only for an `mcp-client` task: its client's end withdraws a held call (session-run.ts). */
  sessionEndWithdraws: boolean;
  /** A call in flight is cancelled when the task ends, and waited for (calls-in-flight.ts). */
  stopCalls: boolean;
  /** Only for a data-flow run: its tool calls stop at the deadline on the worker (task-flow.ts `activities`). */
  flowCallDeadline: boolean;
  /** A started call's undo is registered however it ends, the task's end included (run-action.ts). */
  undoEndedCalls: boolean;
  /** A call refused before its tool started registers no undo; an unconfirmed stop is reported (tool-step.ts). */
  undoWhatRan: boolean;
  /** Only the activity's own first-attempt `notRun` reads not run, not a cancel with no recorded start (tool-step.ts). */
  notRunVouched: boolean;
  /** Only for a task that declares sub-agents: a limit a sub-agent leaves out is its parent's (spawn-step.ts). */
  subagentLimitsInherited: boolean;
  /** A compensating tool runs for a call in doubt only when its start record says it started (task-saga.ts). */
  toolUndoStarted: boolean;
  /** A failed call, its applied capability calls and its egress are counted, recorded and scored (tool-step.ts). */
  countFailedCalls: boolean;
  /** Only for a data-flow run: a short pure tool's call runs as a local activity (tool-step.ts `runsLocally`). */
  localPureCalls: boolean;
}

/** Decides every patch; call once, before the workflow's first command. */
export function decidePatches(isRoot: boolean, hasMcpServers = false, dataFlow = false, session = false, patched: PatchQuestion = askPatch, hasSubagents = false): WorkflowPatches {
  return {
    approvalUpdate: patched(APPROVAL_UPDATE_PATCH),
    callKeys: patched(CALL_KEY_PATCH),
    // Only sub-agents have a use for it; a root task records no marker.
    subagentFsUndo: !isRoot && patched(SUBAGENT_FS_UNDO_PATCH),
    subagentHandoff: !isRoot && patched(SUBAGENT_HANDOFF_PATCH),
    recoveryByRun: isRoot && patched(RECOVERY_BY_RUN_PATCH),
    approvalNotices: patched(APPROVAL_NOTICE_PATCH),
    // Upserting an attribute the namespace does not know would fail the task: only when the starter set it.
    statusSearchAttribute: workflowInfo().typedSearchAttributes.get(WARDEN_SEARCH_ATTRIBUTES.status) !== undefined && patched(CLOSE_PATCHES.statusSearchAttribute),
    closeAsFailed: patched(CLOSE_PATCHES.closeAsFailed),
    // Only the root commits; a sub-agent records no marker.
    commitFailureResult: isRoot && patched(COMMIT_FAILURE_RESULT_PATCH),
    subagentProgramUndo: !isRoot && patched(SUBAGENT_PROGRAM_UNDO_PATCH),
    // Only the root verifies (its sub-agents' claims too); a sub-agent records no marker.
    attestClaims: isRoot && patched(ATTEST_CLAIMS_PATCH),
    monitor: patched(MONITOR_PATCH),
    // Only a task that declares MCP servers has lists to pin; others record no marker.
    mcpPinsByDigest: hasMcpServers && patched(MCP_PINS_BY_DIGEST_PATCH),
    modelStepsByDigest: patched(MODEL_STEPS_BY_DIGEST_PATCH),
    monitorNetwork: patched(MONITOR_NETWORK_PATCH),
    // Asked last: runs recorded before it replay every earlier question in the same order.
    monitorCarried: dataFlow && patched(MONITOR_CARRIED_PATCH),
    // After monitorCarried (merged first): runs recorded with it replay its question in the same place.
    localLane: patched(LOCAL_LANE_PATCH),
    // After localLane, for the same reason. The data flow proves its commit already: no marker there.
    commitProof: !dataFlow && patched(COMMIT_PROOF_PATCH),
    // Asked last, for the same reason; only the data flow has local activities outside the monitor.
    flowLocalLane: dataFlow && patched(FLOW_LOCAL_LANE_PATCH),
    // After flowLocalLane, for the same reason. The data flow claim-checks already: no marker there.
    claimCheckOutputs: !dataFlow && patched(CLAIM_CHECK_OUTPUTS_PATCH),
    // After claimCheckOutputs (merged first), for the same reason. The data flow has its own affinity: no marker there.
    ordinaryAffinity: !dataFlow && patched(ORDINARY_AFFINITY_PATCH),
    // After ordinaryAffinity (merged first), for the same reason. The data flow continues as new: no marker there.
    historyBudget: !dataFlow && patched(HISTORY_BUDGET_PATCH),
    // Asked last, for the same reason. Only the data flow folds turns into activities: no marker elsewhere.
    policyPrecheck: dataFlow && patched(POLICY_PRECHECK_PATCH),
    // Asked last, for the same reason. Only a session (mcp-client) task has a client to lose: no marker elsewhere.
    sessionEndWithdraws: session && patched(SESSION_END_WITHDRAWS_PATCH),
    // Asked last, for the same reason.
    stopCalls: patched(STOP_CALLS_PATCH),
    // Asked last, for the same reason. The original loop's deadline is a timer that cancels the call: no marker there.
    flowCallDeadline: dataFlow && patched(FLOW_CALL_DEADLINE_PATCH),
    // After flowCallDeadline (merged first), for the same reason.
    undoEndedCalls: patched(UNDO_ENDED_CALLS_PATCH),
    // Asked last, for the same reason.
    undoWhatRan: patched(UNDO_WHAT_RAN_PATCH),
    // Asked last, for the same reason.
    notRunVouched: patched(NOT_RUN_VOUCHED_PATCH),
    // Asked last, for the same reason. Only a task with sub-agents derives their limits: no marker elsewhere.
    subagentLimitsInherited: hasSubagents && patched(SUBAGENT_LIMITS_INHERITED_PATCH),
    // Asked last, for the same reason.
    toolUndoStarted: patched(TOOL_UNDO_STARTED_PATCH),
    // Asked last, for the same reason.
    countFailedCalls: patched(COUNT_FAILED_CALLS_PATCH),
    // Asked last, for the same reason. Only the data flow has a data plane to run calls on locally: no marker elsewhere.
    localPureCalls: dataFlow && patched(LOCAL_PURE_CALLS_PATCH),
  };
}

/** Decides the data flow; `agentTask` asks first thing, and only for inputs that can take it. */
export function decideDataFlow(patched: PatchQuestion = askPatch): boolean {
  return patched(DATA_FLOW_PATCH);
}
