/**
 * Runs one granted tool call in the sandbox host. Arguments are validated against the tool's
 * schema first; the call gets only the capabilities the tool declares, narrowed to the task's
 * grants, and a fresh isolate with the task's time and memory limits. With the step's policy
 * context, every capability call the tool makes is decided by the task's policy engine in the
 * host before it applies (sandbox/policy-gate.ts); a call the gate stops comes back `held`
 * (a human must approve the measured effect) or `denied`, never as an ordinary failure, so the
 * workflow decides what happens next.
 *
 * Invariant: a call that does not complete (stopped by the gate, failed, timed out, out of memory,
 * its sandbox host crashed, a stdio MCP server's failed call) leaves nothing in the task tree's
 * overlay: what it wrote is undone before the activity returns or fails, and named in the result
 * (`undone`) and the call's custody span. An attempt whose worker died is undone before the next one.
 *
 * Attempts of one call that keeps per-call records (`keepsCallRecords`) never overlap on them (recovery/call-lease.ts): Temporal starts a
 * call's next attempt when the previous one overran its start-to-close timeout or missed
 * heartbeats, while that one may still be running on a live worker. The newer attempt first makes
 * the older one stop (at once in this process; within half a second in another worker process on
 * this machine) and waits until it has ended (ERR_CALL_ATTEMPT_STUCK, retryable, when it does not
 * within 30 s), and only then undoes what the older one left. The older attempt, superseded, is
 * fenced: before each durable step on the call's records (undo, discarding its undo records,
 * syncing the overlay copy) it checks it is still the call's current attempt, and otherwise fails
 * ERR_CALL_SUPERSEDED leaving everything to the newer one (after handing over what only it has:
 * an MCP call's measured changes as undo records, its SQL journal shipped). So the
 * overlay holds the writes of exactly one attempt: the one whose result Temporal takes.
 */
import { createHash, randomUUID } from 'node:crypto';
import { realpath } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import { CapabilityError, CredentialError, DataPlaneError, isErrorCode, RecoveryError, TaskLimitError, ToolError, WardenError } from '../errors';
import { claimCheckJson, claimCheckStrings, refuseForgedClaimChecks, resolveClaimChecks } from '../dataplane/claim-check';
import { beginOverlayCall, localOverlayRecords, syncOverlayCopy } from '../dataplane/overlay-copy';
import type { BlobStore } from '../dataplane/blob-store';
import type { PlacementStore } from '../dataplane/placement-store';
import type { FileWrite, Transcript } from '../task/data-flow';
import { jsonBytes, PAYLOAD_BUDGET_BYTES } from '../task/data-refs';
import { setLongTimeout, type LongTimeout } from '../long-timer';
import type { StepError } from '../task/task-run';
import { mintCallCredential } from '../identity/credential';
import { missingGrantRefusal } from '../identity/grant-unknown';
import type { IssuedGrant } from '../identity/task-grant';
import { resolveOutboundSecrets } from '../secrets/resolve-outbound-secrets';
import { requiredScopeOf, scopeOfCall } from '../tools/call-scope';
import { callStartPathOf, journalPathOf, overlayPathsOf, overlayUndoDirOf, taskKeyOf } from '../recovery/recovery-paths';
import { markCallStarted } from '../recovery/call-starts';
import { acquireCallLease, SUPERSEDE_WAIT_MS, type CallLease } from '../recovery/call-lease';
import { openOverlay } from '../recovery/workspace-overlay';
import { assertWorkspaceFilesWithin, workspaceLimitMbOf, workspaceVolumeMbOf } from '../recovery/overlay-volume';
import { captureUpper, discardOverlayUndo, recordUnkeptChanges, recordUpperChanges, undoOverlayCall, unkeptChangesFailure, unkeptChangesOf, type UpperCapture } from '../recovery/overlay-undo';
import { shipJournal } from '../recovery/shared-journal';
import type { Task } from '../task/task-schema';
import { callLimitMs, capabilityGrantFor, resolveTool, ungrantedCapabilities } from '../tools/tool-catalog';
import { validateToolInput, type SchemaProblem } from '../tools/tool-input-validator';
import type { ToolDescriptor } from '../tools/tool-descriptor';
import { createCredentialVerifier, type CredentialVerifier } from '../identity/verify-credential';
import { assertCommandGranted, executeProcessCall, type ProcRunArgs } from '../executors/process-executor';
import { executeMcpCall, mcpTargetOf } from '../executors/mcp-executor';
import { isStdioServer } from '../mcp/mcp-server-config';
import { callEffectsOf } from '../tools/call-effects';
import { egressHoldReason, type EgressWatch } from '../monitoring/egress-watch';
import { egressEffectsOf } from '../sandbox/os/egress-effects';
import type { EgressDecision, EgressGate } from '../sandbox/os/egress-proxy';
import type { StepEffect } from '../task/task-run';
import type { PolicyRequest, ToolEffect, ValueSource } from '../policies/engine/policy-request';
import type { PolicyState } from '../policies/engine/policy-state';
import { normalizePath } from '../policies/engine/rule-syntax';
import { seedOf, type ProvenanceSeed } from '../policies/provenance-seed';
import type { PolicyGateSpec, SandboxRunRequest } from '../sandbox/sandbox-messages';
import { policyEngineFor } from './check-policy';
import type { ActivityDeps } from './index';
import { atActivityBoundary, toApplicationFailure } from './to-application-failure';
import { withCallOutcome, type ToolProgress } from './call-outcome';
import { Context } from '@temporalio/activity';
import { protectedSetForCall } from './protected-set';
import { WARDEN_ATTR } from '../custody/attributes';
import { actChainOf } from '../identity/agent-identity';
import { annotateActiveSpan, outcomeOfError, resourceAttributes, sha256OfJson } from '../telemetry/warden-span-attributes';
import { wellFormedJson } from '../custody/well-formed-json';
import { shapeActivitySpan } from './by-reference-span';
import { assertOnWorker, dataPlaneOf, recoveryDirOf, stateDirOfDeps, taskOf } from './flow-deps';
import { activityAttempt, activitySignal, proposeFoldedTurn, type ProposedTurn } from './next-turn';
import type { PolicyCheck } from './check-policy';
import { precheckPolicy, type PolicyPlace } from './precheck-policy';
import { stateAfterCall } from '../policies/policy-precheck';

/** Largest JSON output a tool may return into the workflow history. */
export const MAX_TOOL_OUTPUT_BYTES = 1024 * 1024;

export interface RunToolInput {
  /** The workflow id of the task the user started (names the task tree's overlay and journal). */
  rootWorkflowId: string;
  /** The root's first run id: with it, recovery state is the run's own (absent in trees started before). */
  rootRunId?: string;
  workflowId: string;
  stepIndex: number;
  /**
   * The call's idempotency key (recovery/call-key.ts: run id, step and a digest of the call), the
   * same the workflow registers its compensation under. Absent in inputs recorded before keys
   * named the run; then `<workflowId>:<stepIndex>`.
   */
  callId?: string;
  /** The task grant the call's credential is minted from. */
  grantId: string;
  /** Upper bound of the credential's lifetime (the activity's timeout). */
  maxCredentialTtlMs: number;
  task: Task;
  tool: string;
  args: Record<string, unknown>;
  /** The monitor's anomaly score of this call and why (workflows/monitor-step.ts), for its custody record. */
  monitor?: { score: number; reasons: string[] };
  /** The model's own id for this call, when it gave one (`gen_ai.tool.call.id`). */
  modelCallId?: string;
  /** The fs path in `args` is the one the policy judged, resolved: open it following no link. */
  pathsResolved?: boolean;
  /** The step's policy context: capability calls are decided in the sandbox host with it. Absent: no gate. */
  policy?: ToolPolicyContext;
  /** The monitor's egress watch for this step: hosts it holds are refused before any connection (monitoring/egress-watch.ts). */
  egressWatch?: EgressWatch;
  /** Report the files the call left in the overlay (`writes`; on failure in its details), for the commit's proof. */
  reportWrites?: boolean;
  /**
   * The original loop's `warden-claim-check-outputs` runs: an output over 16 KiB (and long values
   * of what the gate reports) reach the workflow as claim checks (`checkedIn`), as on the data flow.
   */
  claimCheckOutput?: boolean;
}

/** What the host's policy gate needs from the workflow for one step. */
export interface ToolPolicyContext {
  state: PolicyState;
  agent: PolicyRequest['agent'];
  now: string;
  /** Where the step's argument values came from (its policy check). */
  argSources: Record<string, ValueSource>;
  seed?: ProvenanceSeed;
  /** Rules a human approved for the step before it ran. */
  approvedRules?: string[];
  /** Digests of measured effects a human approved (held by an earlier run of this step). */
  approvedEffects?: string[];
}

async function workspaceRootOf(task: Task): Promise<string | undefined> {
  if (task.resources.workspace === undefined) return undefined;
  try {
    return await realpath(task.resources.workspace);
  } catch (cause) {
    throw new CapabilityError('ERR_PATH_NOT_FOUND', `workspace ${task.resources.workspace} does not exist`, { cause });
  }
}

/**
 * The data flow's form of a tool call: the task by reference, arguments that may hold claim
 * checks, and optionally the next model turn folded into the same activity (`next`: the turn to
 * ask for and the transcript, whose pending steps end with this call's own step, not yet run).
 */
export interface RunToolRefInput {
  rootWorkflowId: string;
  /** The root's first run id: names the tree's recovery state (absent in trees started before). */
  rootRunId?: string;
  workflowId: string;
  stepIndex: number;
  /** The call's idempotency key, as the workflow registers its compensation (recovery/call-key.ts). */
  callId?: string;
  grantId: string;
  maxCredentialTtlMs: number;
  taskRef: string;
  tool: string;
  args: Record<string, unknown>;
  /** The fs path in `args` is the one the policy judged, resolved: open it following no link. */
  pathsResolved?: boolean;
  /** The model's id of this call (`gen_ai.tool.call.id`), when it gave one. */
  modelCallId?: string;
  /** The step's policy context: capability calls are decided in the sandbox host with it (as RunToolInput's). */
  policy?: ToolPolicyContext;
  /** Hosts the monitor holds, refused at the egress before they connect (as RunToolInput's). */
  egressWatch?: EgressWatch;
  /** The monitor's score of the step, for the call's custody record (as RunToolInput's). */
  monitor?: { score: number; reasons: string[] };
  /**
   * The task's deadline (epoch ms; patch `warden-flow-call-deadline`): the call is stopped there
   * as a cancelled call is (program killed, isolate disposed, MCP request cancelled) and the
   * activity fails ERR_DEADLINE_EXCEEDED once the tool has stopped. Absent in older histories: the
   * server then timed the activity out at the deadline (its schedule-to-close).
   */
  deadlineAt?: number;
  /**
   * Run only on this worker, else ERR_DATA_PLANE_ELSEWHERE before anything is done: the call is a
   * local activity meant for the data plane (patch `warden-local-pure-calls`).
   */
  onWorker?: string;
  /** Asked for only when the call is not stopped by the host's gate (held or denied: no next turn). */
  next?: {
    turn: number;
    transcript: Transcript;
    /**
     * For deciding ahead on the next turn's first action (policies/policy-precheck.ts): where the
     * agent sits in the task tree, and how the workflow counts this step (its policy request, the
     * recent calls it keeps, whether a user tool's capability calls count). Histories recorded
     * before the decision moved to the workflow (b10ff98) sent only depth and chain.
     */
    policy?: PolicyPlace & { request?: PolicyRequest; retainMs?: number; countEffects?: boolean };
  };
}

/** A call of the data flow: output (a claim check when large), files it wrote, the folded turn. */
export interface ToolStepResult extends ToolCallResult {
  /**
   * The next model turn, or why asking for it failed (the workflow then asks on its own). With
   * it (`warden-policy-precheck`), the policy decision on its first action made here with the
   * digest of its inputs; the workflow uses it only when its own inputs digest the same
   * (policies/policy-precheck.ts). Histories recorded around b10ff98 hold one without a digest.
   */
  next?: (ProposedTurn & { policy?: PolicyCheck }) | { error: StepError };
  /**
   * How long the call ran on the worker, ms (its tool, the folded turn and the decision made
   * ahead): the workflow bounds a chain of local calls by it (tool-step.ts `runsLocally`), as
   * workflow time does not move inside one workflow task.
   */
  ranMs?: number;
}

/** A capability call the host's gate stopped: what it was, what was measured, which rules. */
export interface StoppedEffect {
  tool: string;
  via?: string;
  args: Record<string, unknown>;
  measured: unknown;
  matched: { id: string; sentence: string; effect: string; reason: string }[];
  /** What a human approves (bound to this exact effect). */
  digest: string;
}

/**
 * What a tool call returns to the workflow: its output and the credential it ran under (no
 * token), the capability calls it made as the gate decided them (`effects`, with the requests
 * the workflow counts), whether its output is trusted data, and, when the gate stopped it,
 * `held` (needs a human) or `denied`.
 */
export interface ToolCallResult {
  output: unknown;
  credential: { jti: string; scope: string[]; expiresAt: string };
  trust?: 'trusted' | 'untrusted';
  /** The step's own effect as measured where applied (a built-in's call). */
  effect?: ToolEffect;
  effects?: AppliedEffect[];
  held?: StoppedEffect;
  denied?: StoppedEffect;
  /** For a held effect: the approval request's id, random so nobody can name it before it exists. */
  holdId?: string;
  /** What a program did on the network, through the egress proxy (origins, methods, bytes; held or refused ones too). */
  egress?: StepEffect[];
  /** Files the call left in the task tree's overlay (path and content hash), when asked (`reportWrites`). */
  writes?: FileWrite[];
  /** Held or denied: the overlay paths the call wrote before it was stopped, taken back out (sorted). */
  undone?: string[];
}

/** One capability call the gate let through, with the request the workflow counts. */
export interface AppliedEffect {
  request: PolicyRequest;
  decision: 'allow' | 'deny' | 'approval';
  rules: string[];
  shadow?: string[];
}

/** One tool call as the executor needs it; `callId` is its idempotency key. */
export interface ToolExecution {
  /** The arguments hold claim checks Warden made (the data flow's call): resolve them. */
  argsClaimChecked?: boolean;
  rootWorkflowId: string;
  rootRunId?: string;
  callId: string;
  grantId: string;
  /**
   * The grant `grantId` names, as this activity already read it from the grant store (its span
   * names the agent from it): the call mints from it instead of reading the store again. Used only
   * when its `id` is `grantId`; absent (or another id), the call reads the store itself.
   */
  grantRead?: IssuedGrant;
  maxCredentialTtlMs: number;
  task: Task;
  tool: string;
  args: Record<string, unknown>;
  policy?: ToolPolicyContext;
  /**
   * A sub-agent's call: what its overlay writes replace is kept after it completes, so they can be
   * undone on their own later. (Every call's writes are undone when it does not complete.)
   */
  fsUndo?: boolean;
  /** Follow no symbolic link on the way to the file (its path was resolved when the policy decided). */
  noSymlinks?: boolean;
  egressWatch?: EgressWatch;
  /**
   * The activity's cancellationSignal (a task cancelled, blocked or terminated): a program still
   * running is killed then, an isolate call is stopped (its isolate disposed, its capability
   * requests aborted), an MCP server's request is cancelled (a stdio server that does not answer
   * within a grace is killed), and the call fails as cancelled once the tool has stopped.
   */
  signal?: AbortSignal;
  /** Filled in as the call goes: whether its tool started, and whether its stop was confirmed (activities/call-outcome.ts). */
  progress?: ToolProgress;
  /**
   * The attempt's hold on the call (recovery/call-lease.ts): checked before each durable step on
   * the call's records, so an attempt a newer one superseded leaves them alone. Absent outside the activity.
   */
  fence?: Pick<CallLease, 'assertCurrent'>;
}

/**
 * The call's tool is about to start: from here on it may have had effects. A call cancelled (or
 * past its deadline) before this point stops here, its tool never started.
 *
 * A tool undone by a compensating tool first records, durably, that this call started
 * (recovery/call-starts.ts): its compensation runs only for a call with that record, since
 * nothing Temporal records can tell a call no worker started from one whose earlier attempt ran.
 * A call its compensation already fenced off as never started is refused here (ERR_TOOL_CANCELLED).
 * Only the workflow's own calls (`progress`), never a compensating tool's run. With `recordedBy`
 * 'executor' the record is returned for the executor to write right before the tool starts (see StartRecord).
 */
async function toolStarting(deps: ActivityDeps, call: ToolExecution, tool: ToolDescriptor, recordedBy: 'activity' | 'executor'): Promise<StartRecord | undefined> {
  call.signal?.throwIfAborted();
  if (call.progress === undefined) return undefined;
  const record = tool.profile.undo.some((u) => u.kind === 'tool') ? { file: callStartPathOf(recoveryDirOf(deps), taskKeyOf(call.rootWorkflowId, call.rootRunId), call.callId), callId: call.callId } : undefined;
  call.progress.started = true;
  if (recordedBy === 'executor') return record;
  if (record !== undefined) await markCallStarted(record.file, record.callId);
  return undefined;
}

/**
 * A call's start record (recovery/call-starts.ts), written by the executor at the last point
 * before the tool can act: an isolate call's by the sandbox host once it has accepted the call
 * (its credential gate, a retiring host refuse before), an MCP call's once the server's connection
 * is open and its listing checked, right before `tools/call` is sent (a server that cannot be
 * reached refuses before). A call refused before never reads started, and its compensation fences
 * it off. A program's is written by its activity after the credential check (the saga registers
 * no compensating tool for programs).
 */
type StartRecord = NonNullable<SandboxRunRequest['startRecord']>;

/**
 * Validates, mints the call's credential and runs the tool in the sandbox host with its
 * capabilities: file writes into the task tree's overlay, SQL changes journaled under `callId`.
 *
 * Every executor's result (sandboxed built-in or custom tool, MCP server, program) enters Warden
 * here, and is made well-formed Unicode (custody/well-formed-json.ts) so its digest can be
 * committed; so are arguments that reach a call unmended (histories from before model turns were
 * mended at entry): the tool runs on the digested arguments. The span counts what was mended.
 */
export async function executeToolCall(deps: ActivityDeps, toolCall: ToolExecution): Promise<ToolCallResult> {
  const args = wellFormedJson(toolCall.args);
  if (args.mended > 0) annotateActiveSpan({ [WARDEN_ATTR.toolArgsMended]: args.mended, [WARDEN_ATTR.toolArgsSha256]: sha256OfJson(args.value) });
  const result = wellFormedJson(await callTool(deps, args.mended === 0 ? toolCall : { ...toolCall, args: args.value }));
  if (result.mended > 0) annotateActiveSpan({ [WARDEN_ATTR.toolOutputMended]: result.mended });
  return result.value;
}

async function callTool(deps: ActivityDeps, toolCall: ToolExecution): Promise<ToolCallResult> {
  let call = toolCall;
  const tool = resolveTool(call.task, call.tool);
  if (tool === undefined) throw new ToolError('ERR_TOOL_UNKNOWN', `tool "${call.tool}" is not declared by this task`);
  // Long arguments proposed by the model were kept out of history (the data flow's model turn,
  // which refused any reference the model wrote): the tool gets the real values. Anywhere else a
  // reference in the arguments came from outside Warden.
  if (call.argsClaimChecked === true && deps.dataPlane !== undefined) call = { ...call, args: (await resolveClaimChecks(deps.dataPlane.blobs, call.args)) as Record<string, unknown> };
  else refuseForgedClaimChecks(call.args, `the arguments of ${call.tool}`);
  const problems = tool.executor.kind === 'mcp' ? serverSchemaProblems(tool.inputSchema, call.args) : validateToolInput(tool.inputSchema, call.args);
  if (problems.length > 0) {
    throw new ToolError(
      'ERR_TOOL_INPUT_INVALID',
      `arguments of ${tool.name} are invalid: ${problems.map((p) => `${p.path === '' ? '(arguments)' : p.path} ${p.message}`).join('; ')}`,
      { details: { problems } },
    );
  }
  if (tool.executor.kind === 'mcp' || tool.executor.kind === 'process') return executeOutsideIsolate(deps, call, tool);
  // Checked when the task loaded, and again here: a capability the task does not grant is never handed out.
  const ungranted = ungrantedCapabilities(call.task, tool);
  if (ungranted.length > 0) {
    throw new ToolError('ERR_CAPABILITY_NOT_GRANTED', `tool ${tool.name} declares capabilities the task does not grant: ${ungranted.map((u) => u.why).join('; ')}`, {
      details: { capabilities: ungranted.map((u) => u.capability) },
    });
  }
  if (deps.identity === undefined || deps.stateDir === undefined) throw new TypeError('this worker was created without identity services or a state folder');
  const grant = await grantOf(deps, call);
  const taskKey = taskKeyOf(call.rootWorkflowId, call.rootRunId);
  const capabilities = capabilityGrantFor(call.task, tool, tool.capabilities.some((c) => c.startsWith('fs.')) ? await workspaceRootOf(call.task) : undefined);
  const credential = await mintCallCredential(deps.identity.keystore, grant.token, {
    tool: tool.name,
    scope: requiredScopeOf(tool, call.args, capabilities),
    maxTtlMs: call.maxCredentialTtlMs,
  });
  if (capabilities.http !== undefined && Object.keys(call.task.resources.secrets).length > 0) {
    // Resolved only now, on the worker, for the hosts this call may reach; the sandbox host adds
    // them after its own checks and removes them from responses.
    Object.assign(capabilities.http, await resolveOutboundSecrets(call.task.resources.secrets, { env: deps.env ?? process.env, credential: credential.token, allowedHosts: capabilities.http.allowedHosts, protected: await protectedSetForCall(deps, call.task) }));
  }
  // The policy judged the call's `url`: a redirect may not take the request to another host.
  if (capabilities.http !== undefined && typeof call.args['url'] === 'string') capabilities.http.followRedirectsTo = judgedHostsOf(call.args['url']);
  // Under the monitor's watch, a redirect to a host it does not know is returned to the tool: the
  // tool's next request to it is its own capability call, which the gate asks the watch about.
  if (capabilities.http !== undefined && call.egressWatch !== undefined && capabilities.http.followRedirectsTo === undefined) capabilities.http.followRedirectsTo = [...call.egressWatch.knownHosts];
  // Warden's own folders and key files are never served, and the task's controls never changed,
  // whatever path or link leads there (checked on what each call opens).
  const guarded = capabilities.fs !== undefined || capabilities.sql !== undefined ? await protectedSetForCall(deps, call.task) : undefined;
  if (capabilities.fs !== undefined) {
    // A tree that runs programs has its overlay on a volume of its bound (recovery/overlay-volume.ts).
    const volumeMb = workspaceVolumeMbOf(call.task);
    capabilities.fs.overlay = (await openOverlay({ stateDir: deps.stateDir, taskKey, workspace: capabilities.fs.root, ...(volumeMb === undefined ? {} : { volumeMb }), owner: call.rootRunId === undefined ? undefined : { workflowId: call.rootWorkflowId, runId: call.rootRunId } })).upper;
    if (capabilities.fs.write) capabilities.fs.workspaceBytes = workspaceLimitMbOf(call.task) * 1024 * 1024;
    // Every call that may write keeps what it replaces: a call that does not complete is undone (below).
    if (capabilities.fs.write) capabilities.fs.undo = overlayUndoDirOf(deps.stateDir, taskKey, call.callId);
    if (call.noSymlinks === true) capabilities.fs.symlinks = 'refuse';
    capabilities.fs.protectedPaths = guarded!.folders;
    capabilities.fs.protectedFiles = guarded!.files;
    capabilities.fs.readOnlyPaths = guarded!.readOnly;
  }
  if (capabilities.sql !== undefined) {
    capabilities.sql.journal = journalPathOf(recoveryDirOf(deps), taskKey);
    capabilities.sql.callId = call.callId;
    capabilities.sql.protectedPaths = guarded!.folders;
    capabilities.sql.protectedFiles = guarded!.files;
    capabilities.sql.readOnlyPaths = guarded!.readOnly;
  }
  const gate = call.policy === undefined ? undefined : gateSpecOf(call, tool);
  const undo = capabilities.fs?.undo === undefined ? undefined : { stateDir: deps.stateDir, taskKey, callId: call.callId };
  // Records left by an attempt that never finished (its worker died mid-call): its writes go first.
  if (undo !== undefined) await undoIncompleteCall(undo, call.fence);
  const startRecord = await toolStarting(deps, call, tool, 'executor');
  const result = await deps.sandbox.run({
    ...(startRecord === undefined ? {} : { startRecord }),
    toolName: tool.name,
    source: tool.executor.source,
    input: call.args,
    ...(gate === undefined ? {} : { policy: gate }),
    limits: {
      // A tool's own timeout can only shorten the task's per-call limit.
      timeoutMs: callLimitMs(call.task, tool),
      memoryMb: Math.min(tool.memoryMb ?? call.task.limits.toolMemoryMb, call.task.limits.toolMemoryMb),
      maxOutputBytes: MAX_TOOL_OUTPUT_BYTES,
    },
    capabilities,
    credential: credential.token,
    // A cancelled activity's call is stopped (isolate disposed, capability requests aborted) before it is answered.
  }, call.signal === undefined ? {} : { signal: call.signal }).catch(async (error: unknown) => {
    if (undo !== undefined) await undoIncompleteCall(undo, call.fence);
    throw error;
  });
  if (result.capabilityArgsMended !== undefined) annotateActiveSpan({ [WARDEN_ATTR.toolCapabilityArgsMended]: result.capabilityArgsMended });
  // Even a tool that failed, or that the gate stopped, may have committed SQL before: its images must
  // reach every worker. Also an attempt superseded meanwhile: the newer one ships only after its own
  // sandbox call, which it may never make (it fails first, or is cancelled or stuck waiting for this
  // one). Shipping copies this worker's journal, idempotently (once per statement): nothing of the
  // newer attempt's is touched.
  const shipImages = async () => {
    if (capabilities.sql?.journal === undefined || deps.shared === undefined) return;
    await unlessTaskEnded(call.fence);
    await shipJournal(deps.shared.db, { journal: capabilities.sql.journal, journalKey: taskKey, baseCallId: call.callId, workerId: deps.shared.workerId });
  };
  // A call that did not complete (stopped by the gate, failed, timed out, crashed) leaves no file
  // behind: what it wrote is taken back out of the overlay now, before the workflow goes on.
  let undone: string[] = [];
  try {
    if (undo !== undefined) {
      if (result.ok && result.policy?.stopped === undefined) {
        // A sub-agent's call stays undoable on its own (its parent may go on without it); a root call's records are done with.
        // Superseded meanwhile: the records are the newer attempt's to undo (this result is moot).
        await call.fence?.assertCurrent();
        if (call.fsUndo !== true) await discardOverlayUndo(undo);
      } else {
        undone = await undoIncompleteCall(undo, call.fence);
      }
    }
  } catch (error) {
    // Superseded, or the undo failed: the images still go out; this attempt's error stays the one
    // reported (a shipping that fails too is done by the call's next attempt).
    await shipImages().catch(() => undefined);
    throw error;
  }
  await shipImages();
  const undoneField = undone.length === 0 ? {} : { undone };
  // Cancelled: the call has stopped and its writes are undone; the activity ends as cancelled, as a program's does.
  call.signal?.throwIfAborted();
  const ran = { jti: credential.claims.jti, scope: credential.claims.scope, expiresAt: new Date(credential.claims.exp * 1000).toISOString() };
  const report = result.policy;
  const effects: AppliedEffect[] = report?.applied ?? [];
  const own = tool.executor.kind === 'builtin' ? effects[0]?.request.effect : undefined;
  const extra = { ...(effects.length > 0 ? { effects } : {}), ...(own === undefined ? {} : { effect: own }) };
  // Stopped by policy: whatever the tool code made of the refusal, the step is held or denied.
  if (report?.stopped !== undefined) {
    const stopped = report.stopped;
    const via = stopped.request.via;
    const summary: StoppedEffect = {
      tool: stopped.request.tool,
      ...(via === undefined ? {} : { via }),
      args: stopped.request.args,
      measured: stopped.request.effect ?? null,
      matched: stopped.matched.map(({ id, sentence, effect, reason }) => ({ id, sentence, effect, reason })),
      digest: stopped.digest,
    };
    return { output: null, credential: ran, ...extra, ...undoneField, ...(stopped.decision === 'approval' ? { held: summary, holdId: randomUUID() } : { denied: summary }) };
  }
  if (!result.ok) {
    // What the gate applied before the tool failed still happened: the failure carries it for the workflow to count (call-outcome.ts).
    if (call.progress !== undefined && effects.length > 0) call.progress.effects = effects;
    const code = isErrorCode(result.error.code) ? result.error.code : 'ERR_TOOL_THREW';
    // A call lost with its sandbox host before it reached any capability did nothing: retried, on the replacement host.
    throw new ToolError(code, result.error.message, { ...(undone.length === 0 ? {} : { details: { undone } }), ...(result.error.retryable === true ? { retryable: true } : {}) });
  }
  return { output: result.output, credential: ran, ...extra, trust: outputTrustOf(call.task, tool, call.args, effects, call.policy?.state) };
}

/**
 * The fence's verdict for a step that is still this attempt's when a newer attempt superseded it
 * (one that hands over, rather than destroys: recording what it changed, shipping its journal):
 * undefined while current, else the fence's error, returned for the caller to throw after the step.
 * @throws RecoveryError ERR_CALL_SUPERSEDED when the lease is gone (the task ended and its state on
 *   this machine was removed): then nothing of the call is this attempt's to write
 */
async function unlessTaskEnded(fence: ToolExecution['fence']): Promise<unknown> {
  const fenced = await fence?.assertCurrent().then(
    () => undefined,
    (e: unknown) => e,
  );
  if (fenced instanceof WardenError && fenced.details['leaseGone'] === true) throw fenced;
  return fenced;
}

/**
 * Takes the overlay writes of a call that did not complete back out (recovery/overlay-undo.ts)
 * and returns the paths, sorted; the call's custody span names them (`warden.overlay.undone`).
 * @throws RecoveryError ERR_CALL_SUPERSEDED (from `fence`) when a newer attempt of the call took it over
 * @throws RecoveryError ERR_UNDO_FAILED when the overlay cannot be put back (the call's failure is its cause)
 */
async function undoIncompleteCall(undo: { stateDir: string; taskKey: string; callId: string }, fence: ToolExecution['fence']): Promise<string[]> {
  // A superseded attempt undoes nothing: the records may be the newer attempt's by now.
  await fence?.assertCurrent();
  let paths: string[];
  try {
    const result = await undoOverlayCall(undo);
    paths = [...result.restored, ...result.removed].sort();
  } catch (cause) {
    throw new RecoveryError('ERR_UNDO_FAILED', `the overlay writes of call ${undo.callId}, which did not complete, could not be undone: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  if (paths.length > 0) annotateActiveSpan({ [WARDEN_ATTR.overlayUndone]: paths });
  return paths;
}

/** The gate's spec for one call: the task's rules (compiled once per worker), the step's context. */
function gateSpecOf(call: ToolExecution, tool: ToolDescriptor): PolicyGateSpec {
  const policy = call.policy!;
  const engine = policyEngineFor(call.task);
  let rulesKey = rulesKeys.get(engine);
  if (rulesKey === undefined) {
    rulesKey = createHash('sha256').update(JSON.stringify(engine.rules)).digest('hex');
    rulesKeys.set(engine, rulesKey);
  }
  return {
    rulesKey,
    rules: [...engine.rules],
    state: policy.state,
    agent: policy.agent,
    now: policy.now,
    seed: seedOf(call.task, policy.seed),
    caller: { tool: tool.name, builtin: tool.executor.kind === 'builtin', args: call.args, argSources: policy.argSources },
    approvedRules: policy.approvedRules ?? [],
    approvedEffects: policy.approvedEffects ?? [],
    ...(call.egressWatch === undefined ? {} : { egressWatch: call.egressWatch }),
  };
}

const rulesKeys = new WeakMap<object, string>();

/**
 * Whether a call's output is the user's own trusted data (task `trust`): a tool the task trusts,
 * or a built-in that read only trusted sources (a trusted workspace path, a trusted database or
 * table whose column values a query returns as-is, a trusted host) that nothing in the task tree has written since the task began.
 */
export function outputTrustOf(task: Task, tool: ToolDescriptor, args: Record<string, unknown>, effects: readonly AppliedEffect[], state: PolicyState | undefined): 'trusted' | 'untrusted' {
  const trust = task.trust;
  if (trust === undefined) return 'untrusted';
  if (trust.tools.includes(tool.name)) return 'trusted';
  if (tool.executor.kind !== 'builtin') return 'untrusted';
  const written = state?.written ?? { paths: [], tables: [] };
  const capability = tool.executor.capability;
  if (capability === 'fs.read' || capability === 'fs.list') {
    const [path] = callEffectsOf(tool, args).paths;
    if (path === undefined) return 'untrusted';
    const normalized = normalizePath(path.path);
    const covered = trust.workspace === true || (Array.isArray(trust.workspace) && trust.workspace.some((p) => within(normalized, normalizePath(p))));
    const touched = written.paths.some((w) => within(w, normalized) || within(normalized, w));
    return covered && !touched ? 'trusted' : 'untrusted';
  }
  if (capability === 'sql.query') {
    const database = typeof args.database === 'string' ? args.database : '';
    const measured = effects[0]?.request.effect;
    const read = measured?.tablesRead ?? [];
    // Values the query's own text computes (literals, expressions, aggregates, UNION arms) are the agent's, not the table's.
    if (read.length === 0 || measured?.columnsFromTables !== true) return 'untrusted';
    const ok = read.every((table) => {
      // Tables as the broker measured them: "<database>.<table>".
      const qualified = (table.includes('.') ? table : `${database}.${table}`).toLowerCase();
      const trusted = trust.databases.includes(database) || trust.databases.map((t) => t.toLowerCase()).includes(qualified);
      return trusted && !written.tables.includes(qualified);
    });
    return ok ? 'trusted' : 'untrusted';
  }
  if (capability === 'http.fetch') {
    const [url] = callEffectsOf(tool, args).urls;
    return url !== undefined && trust.hosts.map((h) => h.toLowerCase()).includes(url.host) ? 'trusted' : 'untrusted';
  }
  return 'untrusted';
}

function within(path: string, folder: string): boolean {
  return path === folder || path.startsWith(folder.endsWith('/') ? folder : `${folder}/`);
}

export { protectedSetForCall } from './protected-set';

/**
 * A call whose executor is not an isolate: a program in the OS sandbox (`process`) or a tool of an
 * MCP server (`mcp`). The same credential discipline applies: minted for exactly this call (the
 * program is part of a `proc.run` scope, so an ungranted program gets no credential), then
 * verified and consumed before anything starts, as the sandbox host does for isolate calls.
 */
async function executeOutsideIsolate(deps: ActivityDeps, call: ToolExecution, tool: ToolDescriptor): Promise<ToolCallResult> {
  if (deps.identity === undefined || deps.stateDir === undefined) throw new TypeError('this worker was created without identity services or a state folder');
  const stateDir = deps.stateDir;
  if (tool.executor.kind === 'process') assertCommandGranted(call.task, String(call.args['command']));
  const grant = await grantOf(deps, call);
  const scope = requiredScopeOf(tool, call.args, {});
  const credential = await mintCallCredential(deps.identity.keystore, grant.token, { tool: tool.name, scope, maxTtlMs: call.maxCredentialTtlMs });
  await gateOf(deps).verify(credential.token, { tool: tool.name, requiredScope: scope });
  const undo = await beginOutsideUndo(stateDir, call, tool);
  try {
    const startRecord = await toolStarting(deps, call, tool, tool.executor.kind === 'mcp' ? 'executor' : 'activity');
    return await runOutsideIsolate(deps, call, tool, stateDir, grant.claims.exp, credential, startRecord);
  } catch (error) {
    if (undo === undefined) throw error;
    const fenced = await unlessTaskEnded(call.fence);
    // What the program or server changed in the overlay during the failed call is taken back out.
    const unkept = undo.captured === undefined ? [] : await unkeptChangesOf(undo.upper, undo.captured);
    // Recorded even when superseded: the capture is in this process only, and the newer attempt, which
    // waits until this one has ended, finds what to undo in these records (without them it took this
    // attempt's writes for the overlay before the call, and they stayed).
    if (undo.captured !== undefined) await recordUpperChanges(undo.upper, undo.undoDir, undo.captured);
    // Superseded: the recorded changes are the newer attempt's to undo, after this one has ended.
    // A change to a file whose bytes were not kept is recorded as such: the newer attempt then fails
    // closed naming it (as this one would), rather than take it for the overlay before the call.
    if (fenced !== undefined) {
      if (unkept.length > 0) await recordUnkeptChanges(undo.undoDir, unkept);
      throw fenced;
    }
    const undone = await undoIncompleteCall(undo.key, call.fence);
    if (unkept.length > 0) {
      // Never a silent partial undo: what could be taken back was, the rest is named.
      throw unkeptChangesFailure(call.callId, unkept, { cause: error, details: { unkept, undone } });
    }
    if (undone.length === 0 || !(error instanceof WardenError)) throw error;
    // A root program stopped at a limit took out what it added itself (executors/process-executor.ts): both are named.
    const before = Array.isArray(error.details?.['undone']) ? (error.details['undone'] as unknown[]) : [];
    throw new WardenError(error.code, error.message, { details: { ...error.details, undone: [...before, ...undone] }, retryable: error.retryable, cause: error });
  }
}

/**
 * How a failed call outside the isolate is undone: a sub-agent's program records its own changes
 * (executeProcessCall `undoDir`: they stay undoable after it succeeds); a root task's program and
 * an MCP server's call are measured here, the upper folder read before them: the bytes of its files
 * up to MAX_UPPER_CAPTURE_BYTES (by lstat size, smallest first), and only the stamp (inode, size,
 * mtime, ctime) of the others; a failed call that changed one of those fails ERR_UNDO_FAILED naming
 * it, after the rest is undone (never a silent skip). A root program that fails (stopped at a limit,
 * cancelled, or superseded by its next attempt, which runs it again) thus leaves no write behind,
 * as an isolate call does; one that completes keeps its writes (its exit status is its output).
 */
async function beginOutsideUndo(stateDir: string, call: ToolExecution, tool: ToolDescriptor): Promise<{ key: { stateDir: string; taskKey: string; callId: string }; upper: string; undoDir: string; captured?: UpperCapture } | undefined> {
  if (call.task.resources.workspace === undefined) return undefined;
  const taskKey = taskKeyOf(call.rootWorkflowId, call.rootRunId);
  const key = { stateDir, taskKey, callId: call.callId };
  const upper = overlayPathsOf(stateDir, taskKey).upper;
  const undoDir = overlayUndoDirOf(stateDir, taskKey, call.callId);
  if (tool.executor.kind !== 'process') {
    // Only a stdio server with the workspace writes to the overlay.
    const server = call.task.tools.mcp?.[mcpTargetOf(tool).server];
    if (server === undefined || !isStdioServer(server) || server.workspace === 'none') return undefined;
  }
  // The overlay as the executor opens it (its volume attached, executors/process-executor.ts and
  // mcp-executor.ts), before anything reads or undoes its upper folder: a folder read while a
  // detached volume is not attached yet (after a worker restart or a take-over) holds none of its files.
  const workspace = await workspaceRootOf(call.task);
  if (workspace !== undefined) await openOverlay({ stateDir, taskKey, workspace, volumeMb: workspaceLimitMbOf(call.task), owner: call.rootRunId === undefined ? undefined : { workflowId: call.rootWorkflowId, runId: call.rootRunId } });
  // As for an isolate call: what an earlier attempt left (its worker died, or it was superseded and has ended) goes first.
  await undoIncompleteCall(key, call.fence);
  if (tool.executor.kind === 'process' && call.fsUndo === true) return { key, upper, undoDir };
  // A root program and an MCP call are measured: without it, a superseded attempt's writes stayed and the next attempt ran the tool again over them.
  return { key, upper, undoDir, captured: await captureUpper(upper, { overBound: 'stamp' }) };
}

async function runOutsideIsolate(deps: ActivityDeps, call: ToolExecution, tool: ToolDescriptor, stateDir: string, expiresAt: number, credential: { claims: { jti: string; scope: string[]; exp: number } }, startRecord: StartRecord | undefined): Promise<ToolCallResult> {
  let output: unknown;
  let egress: StepEffect[] | undefined;
  if (tool.executor.kind === 'process') {
    const result = await executeProcessCall({
      ...(call.egressWatch === undefined ? {} : { egressGate: egressGateOf(call.egressWatch) }),
      ...reportEgressTo(call.progress),
      rootWorkflowId: call.rootWorkflowId,
      ...(call.rootRunId === undefined ? {} : { rootRunId: call.rootRunId }),
      task: call.task,
      args: call.args as unknown as ProcRunArgs,
      stateDir,
      protected: await protectedSetForCall(deps, call.task),
      // A sub-agent's program writes are undoable on their own, like its fs.write calls.
      ...(call.fsUndo === true ? { undoDir: overlayUndoDirOf(stateDir, taskKeyOf(call.rootWorkflowId, call.rootRunId), call.callId) } : {}),
      ...(call.signal === undefined ? {} : { signal: call.signal }),
    });
    annotateActiveSpan({ [WARDEN_ATTR.processCommand]: String(call.args['command']), [WARDEN_ATTR.processExitCode]: result.output.exitCode ?? -1 });
    output = result.output;
    egress = egressEffectsOf(result.egress);
  } else {
    if (deps.mcp === undefined) throw new ToolError('ERR_TOOL_UNKNOWN', `tool "${tool.name}" is an MCP tool, and this worker has no MCP support`);
    annotateActiveSpan({ [WARDEN_ATTR.mcpPin]: mcpTargetOf(tool).pin });
    const result = await executeMcpCall({ ...deps.mcp, env: deps.env ?? process.env, stateDir, protectedSetOf: (task) => protectedSetForCall(deps, task) }, tool, {
      ...(call.egressWatch === undefined ? {} : { egressWatch: call.egressWatch }),
      ...reportEgressTo(call.progress),
      rootWorkflowId: call.rootWorkflowId,
      ...(call.rootRunId === undefined ? {} : { rootRunId: call.rootRunId }),
      task: call.task,
      deadlineAt: expiresAt * 1000,
      args: call.args,
      maxOutputBytes: MAX_TOOL_OUTPUT_BYTES,
      ...(call.signal === undefined ? {} : { signal: call.signal }),
      ...(startRecord === undefined ? {} : { beforeSend: () => markCallStarted(startRecord.file, startRecord.callId, call.signal) }),
      // MCP has no acknowledgment of a cancellation: a remote server that never answered may still complete the call.
      onCancelled: (outcome) => {
        if (outcome === 'session-closed' && call.progress !== undefined) call.progress.stopUnconfirmed = `its server ${mcpTargetOf(tool).server} never answered the call or its cancellation and may have completed the call after its compensation ran`;
      },
    });
    output = result.output;
    egress = egressEffectsOf(result.egress);
  }
  return {
    output,
    credential: { jti: credential.claims.jti, scope: credential.claims.scope, expiresAt: new Date(credential.claims.exp * 1000).toISOString() },
    // An MCP or program output is the user's trusted data only if the task names the tool under trust.tools.
    trust: outputTrustOf(call.task, tool, call.args, [], call.policy?.state),
    ...(egress === undefined || egress.length === 0 ? {} : { egress }),
  };
}

/**
 * The grant a call mints from: the one its activity read already (same id), else the grant store's.
 * @throws CredentialError ERR_CREDENTIAL_REVOKED or ERR_CREDENTIAL_GRANT_UNKNOWN when the store does not hold it
 */
async function grantOf(deps: ActivityDeps, call: ToolExecution): Promise<IssuedGrant> {
  if (call.grantRead !== undefined && call.grantRead.id === call.grantId) return call.grantRead;
  const { stores } = deps.identity!;
  const grant = await stores.grants.getGrant(call.grantId);
  if (grant === undefined) throw await missingGrantRefusal(stores.revocation, call.grantId);
  return grant;
}

/** Where an executor reports what its tool did through the egress proxy: the call's progress, which a failure's details carry (call-outcome.ts). */
function reportEgressTo(progress: ToolProgress | undefined): { reportEgress?: (decisions: EgressDecision[]) => void } {
  return progress === undefined ? {} : { reportEgress: (decisions) => void (progress.egress = egressEffectsOf(decisions)) };
}

/** The monitor's watch as the egress proxy asks it, before each granted connection. */
function egressGateOf(watch: EgressWatch): EgressGate {
  return ({ host, method, sendsBody }) => {
    const reason = egressHoldReason(watch, host, method, sendsBody === true);
    return reason === undefined ? undefined : { heldBy: 'monitor', reason };
  };
}

const gates = new WeakMap<ActivityDeps, CredentialVerifier>();

/** The worker's own credential gate for executors that run outside the sandbox host (public keys only). */
function gateOf(deps: ActivityDeps): CredentialVerifier {
  let gate = gates.get(deps);
  if (gate === undefined) {
    const { keystore, stores } = deps.identity!;
    // The worker's own authority's public keys (whichever key source it uses).
    gate = createCredentialVerifier({ keys: keystore, replayStore: stores.replay, revocationStore: stores.revocation });
    gates.set(deps, gate);
  }
  return gate;
}

/**
 * Problems of `args` for an MCP tool. The server's schema is not run in the worker: it is the
 * server's (untrusted) code, and a hostile `pattern` could stall the worker's event loop
 * (catastrophic backtracking). The server validates its own input; Warden checks the shape only.
 */
function serverSchemaProblems(_schema: Record<string, unknown>, args: unknown): SchemaProblem[] {
  if (typeof args !== 'object' || args === null || Array.isArray(args)) return [{ path: '', message: 'must be an object' }];
  return [];
}

/**
 * Span attributes the grant and the call's scope add to the `execute_tool` span (which already
 * carries the task, tool and argument hash; a call given its task by reference gets them here):
 * the agent and its delegation chain, the resources.
 */
async function annotateToolCall(deps: ActivityDeps, task: Task, input: { rootWorkflowId: string; workflowId: string; grantId: string; tool: string; args: Record<string, unknown>; taskRef?: string; modelCallId?: string; monitor?: { score: number; reasons: string[] } }): Promise<IssuedGrant | undefined> {
  if (input.taskRef !== undefined) shapeActivitySpan('runTool', { task, workflowId: input.workflowId, rootWorkflowId: input.rootWorkflowId, tool: input.tool, args: input.args, ...(input.modelCallId === undefined ? {} : { modelCallId: input.modelCallId }) });
  const grant = await deps.identity?.stores.grants.getGrant(input.grantId);
  if (grant !== undefined) {
    let chain: string[] | undefined;
    try {
      chain = actChainOf(grant.claims.act);
    } catch {
      chain = undefined;
    }
    annotateActiveSpan({ [WARDEN_ATTR.agentId]: grant.claims.sub, [WARDEN_ATTR.agentChain]: chain });
  }
  if (input.monitor !== undefined) annotateActiveSpan({ [WARDEN_ATTR.monitorScore]: input.monitor.score, [WARDEN_ATTR.monitorReasons]: input.monitor.reasons });
  try {
    annotateActiveSpan(resourceAttributes(scopeOfCall(input.tool, input.args)));
  } catch {
    // Arguments that name no valid resource: the call fails validation and says so.
  }
  return grant;
}

/** A Warden failure of a call that wrote files: the writes go with it, so the workflow knows them. */
function failureWithWrites(error: unknown, writes: readonly FileWrite[]): unknown {
  const failure = toApplicationFailure(error);
  if (writes.length === 0 || !(failure instanceof ApplicationFailure) || !(error instanceof WardenError)) return failure;
  return ApplicationFailure.create({
    type: failure.type ?? error.code,
    message: failure.message,
    nonRetryable: failure.nonRetryable === true,
    details: [{ ...error.details, writes }],
  });
}

/** Whether a call of `tool` may change the task tree's overlay (its shared copy is then synced). */
function mayWriteFiles(task: Task, tool: ToolDescriptor | undefined): boolean {
  if (task.resources.workspace === undefined || tool === undefined) return false;
  // Programs and MCP servers in the OS sandbox write through the kernel overlay.
  return tool.capabilities.includes('fs.write') || tool.executor.kind === 'process' || tool.executor.kind === 'mcp';
}

/**
 * Whether a call of `tool` keeps per-call records on this machine that two attempts of it could
 * both act on, so it takes the call lease (recovery/call-lease.ts): the overlay's undo records,
 * an outside-isolate call's capture and the overlay copy's baseline and sync (any call that may
 * write files, `mayWriteFiles`), the SQL journal it ships (an sql capability), its start record
 * (a tool undone by a compensating tool). Any other call (an isolate tool reading, computing,
 * fetching) takes no lease: an attempt of it has nothing another attempt could undo or destroy.
 */
function keepsCallRecords(task: Task, tool: ToolDescriptor | undefined): boolean {
  if (tool === undefined) return false;
  return mayWriteFiles(task, tool) || tool.capabilities.some((c) => c === 'sql.query' || c === 'sql.exec') || tool.profile.undo.some((u) => u.kind === 'tool');
}

/**
 * A call that failed once its deadline passed failed because of it, whatever the tool made of its
 * stop: an MCP server's session also ends at the grant's expiry (the deadline, rounded up to the
 * second; executors/mcp-connection-pool.ts), which can fail the call ERR_MCP_* first. The failure
 * keeps its details (the files the call left, `writes`).
 */
function deadlineFailure(reason: unknown, error: unknown): unknown {
  const deadline = toApplicationFailure(reason);
  if (!(deadline instanceof ApplicationFailure) || (error instanceof ApplicationFailure && error.type === deadline.type)) return error;
  return ApplicationFailure.create({
    type: deadline.type ?? 'ERR_DEADLINE_EXCEEDED',
    message: `${deadline.message} (it ended: ${error instanceof Error ? error.message : String(error)})`,
    nonRetryable: true,
    details: error instanceof ApplicationFailure && error.details !== undefined && error.details !== null && error.details.length > 0 ? error.details : (deadline.details ?? undefined),
  });
}

/** What stops a call: the activity's cancellation, and a data-flow call's deadline. */
interface CallStop {
  /** Aborts at either; at the deadline its reason is `deadlineError()`. */
  signal: AbortSignal | undefined;
  /** TaskLimitError ERR_DEADLINE_EXCEEDED naming the deadline and the tool. */
  deadlineError(): TaskLimitError;
  /** True once the deadline stopped the call. */
  readonly expired: boolean;
  /** The attempt's lease on the call, once taken (`leasedStop`). */
  readonly fence?: Pick<CallLease, 'assertCurrent'>;
  dispose(): void;
}

/** `stop` that also stops the call when a newer attempt of it supersedes this one, with the lease as its fence. */
function leasedStop(stop: CallStop, lease: CallLease): CallStop {
  return {
    signal: stop.signal === undefined ? lease.signal : AbortSignal.any([stop.signal, lease.signal]),
    deadlineError: stop.deadlineError,
    get expired() {
      return stop.expired;
    },
    fence: lease,
    dispose: () => stop.dispose(),
  };
}

/**
 * How long an attempt waits for an older one of its call to end (ms): SUPERSEDE_WAIT_MS, and less
 * than its own start-to-close timeout (2 s short of it), so a stuck older attempt gives this one
 * a typed failure (ERR_CALL_ATTEMPT_STUCK) rather than a server-side timeout.
 */
function leaseWaitMs(): number {
  let startToClose: number | undefined;
  try {
    startToClose = Context.current().info.startToCloseTimeoutMs;
  } catch {
    startToClose = undefined;
  }
  return startToClose === undefined || startToClose <= 0 ? SUPERSEDE_WAIT_MS : Math.min(SUPERSEDE_WAIT_MS, Math.max(1000, startToClose - 2000));
}

/** The call's idempotency key: the workflow's, or `<workflowId>:<stepIndex>` in inputs recorded before keys named the run. */
function callIdOf(input: { callId?: string; workflowId: string; stepIndex: number }): string {
  return input.callId ?? `${input.workflowId}:${input.stepIndex}`;
}

/**
 * The running activity's cancellationSignal (none outside an activity), joined with the task's
 * deadline `deadlineAt` (epoch ms) when given: at it the signal aborts with ERR_DEADLINE_EXCEEDED
 * (TaskLimitError, not retryable), which every executor throws once its tool has stopped, as it
 * throws a cancelled activity's CancelledFailure. A deadline already past aborts at once.
 */
function callStop(deadlineAt: number | undefined, tool: string): CallStop {
  const cancelled = activitySignal();
  const deadlineError = () => new TaskLimitError('ERR_DEADLINE_EXCEEDED', `the task's deadline (${new Date(deadlineAt ?? 0).toISOString()}) passed while ${tool} ran: the call was stopped`, { details: { deadlineAt, tool } });
  if (deadlineAt === undefined) return { signal: cancelled, deadlineError, expired: false, dispose: () => undefined };
  const deadline = new AbortController();
  const expire = () => deadline.abort(deadlineError());
  const left = deadlineAt - Date.now();
  let timer: LongTimeout | undefined;
  if (left <= 0) expire();
  // A deadline up to 30 days away: a bare timer past 2^31 - 1 ms would fire at once.
  else timer = setLongTimeout(expire, left);
  return {
    signal: cancelled === undefined ? deadline.signal : AbortSignal.any([cancelled, deadline.signal]),
    deadlineError,
    // Also before the timer ran: an MCP session ended at the same instant (the pool's timer) may fail the call first.
    get expired() {
      return deadline.signal.aborted || Date.now() >= deadlineAt;
    },
    dispose: () => timer?.clear(),
  };
}

export interface RunTool {
  (input: RunToolInput): Promise<ToolCallResult>;
  (input: RunToolRefInput): Promise<ToolStepResult>;
}

export function createRunTool(deps: ActivityDeps): RunTool {
  async function runTool(input: RunToolInput | RunToolRefInput): Promise<ToolCallResult | ToolStepResult> {
    let stop = callStop('taskRef' in input ? input.deadlineAt : undefined, input.tool);
    const progress: ToolProgress = { started: false };
    let lease: CallLease | undefined;
    try {
      // A local attempt meant for the data plane's worker does nothing anywhere else (the workflow then calls it there).
      if ('onWorker' in input) assertOnWorker(deps, input.onWorker);
      // A retry that starts past the deadline does nothing.
      if (stop.expired) throw toApplicationFailure(stop.deadlineError());
      const task = await taskOf(deps, input);
      // Before anything touches the call's records: an earlier attempt still running stops and ends
      // first. A call that keeps no records of its own (a pure isolate tool) has nothing to guard.
      if (deps.stateDir !== undefined && keepsCallRecords(task, resolveTool(task, input.tool))) {
        lease = await acquireCallLease({ stateDir: deps.stateDir, taskKey: taskKeyOf(input.rootWorkflowId, input.rootRunId), callId: callIdOf(input), attempt: activityAttempt(), waitMs: leaseWaitMs(), ...(stop.signal === undefined ? {} : { signal: stop.signal }) });
        stop = leasedStop(stop, lease);
      }
      // Read once per activity: the span names its agent, the call mints from it.
      const grant = await annotateToolCall(deps, task, input);
      const result = 'taskRef' in input ? await runToolStep(input, task, grant, stop, progress) : await runToolOnce(input, grant, stop, progress);
      // The credential's id, never its token.
      annotateActiveSpan({ [WARDEN_ATTR.credentialJti]: result.credential.jti, [WARDEN_ATTR.outcome]: 'ok' });
      return result;
    } catch (error) {
      annotateActiveSpan({ [WARDEN_ATTR.outcome]: outcomeOfError(error) });
      // What the tool did, in the failure's details, for the workflow's recovery (call-outcome.ts).
      throw withCallOutcome(toApplicationFailure(stop.expired ? deadlineFailure(stop.deadlineError(), error) : error), progress, activityAttempt());
    } finally {
      stop.dispose();
      // Last: a newer attempt waiting for this one goes on only once nothing of this one runs.
      await lease?.release();
    }
  }
  return runTool as RunTool;

  function executionOf(input: RunToolInput | RunToolRefInput, task: Task, grant: IssuedGrant | undefined, stop: CallStop, progress: ToolProgress): ToolExecution {
    return {
      progress,
      ...(grant === undefined ? {} : { grantRead: grant }),
      rootWorkflowId: input.rootWorkflowId,
      ...(input.rootRunId === undefined ? {} : { rootRunId: input.rootRunId }),
      // Stable across retries of this activity: a re-run after a crash is recognised, not repeated.
      callId: callIdOf(input),
      // A sub-agent's writes must be undoable on their own (its parent may go on without them).
      fsUndo: input.workflowId !== input.rootWorkflowId,
      noSymlinks: input.pathsResolved === true,
      grantId: input.grantId,
      maxCredentialTtlMs: input.maxCredentialTtlMs,
      task,
      tool: input.tool,
      args: input.args,
      ...(input.policy === undefined ? {} : { policy: input.policy }),
      ...(input.egressWatch === undefined ? {} : { egressWatch: input.egressWatch }),
      ...(stop.signal === undefined ? {} : { signal: stop.signal }),
      ...(stop.fence === undefined ? {} : { fence: stop.fence }),
    };
  }

  function runToolOnce(input: RunToolInput, grant: IssuedGrant | undefined, stop: CallStop, progress: ToolProgress): Promise<ToolCallResult> {
    const once = async () => {
      const result = await executeToolCall(deps, executionOf(input, input.task, grant, stop, progress));
      refuseForgedClaimChecks(result.output, `the output of ${input.tool}`);
      if (input.claimCheckOutput === true) {
        // A held or denied effect stays whole: on this loop an approver reads it from the approval request.
        const stopped = result.held !== undefined || result.denied !== undefined;
        return fitting(stopped ? result : await checkedIn(dataPlaneOf(deps).blobs, result), input.tool);
      }
      annotateActiveSpan({ [WARDEN_ATTR.toolOutputSha256]: sha256OfJson(result.output) });
      return result;
    };
    if (input.reportWrites !== true) return atActivityBoundary(once);
    // The ordinary loop: measured against this worker's own record of its overlay (no shared copy).
    const stateDir = stateDirOfDeps(deps);
    return atActivityBoundary(() => withWrites(input, input.task, { placements: localOverlayRecords(stateDir), workerId: deps.dataPlane?.workerId ?? 'this worker' }, stop.fence, once));
  }

  /**
   * Runs a call that may write files between a baseline of the overlay and a sync of its record
   * (`records`: the data flow's shared copy with its blobs, or this worker's own), and reports what
   * it wrote: with its result, or (failed) in its failure's details.
   */
  async function withWrites<R extends ToolCallResult>(
    input: RunToolInput | RunToolRefInput,
    task: Task,
    records: { placements: PlacementStore; blobs?: BlobStore; workerId: string },
    fence: CallStop['fence'],
    call: () => Promise<R>,
  ): Promise<R> {
    if (!mayWriteFiles(task, resolveTool(task, input.tool))) return call();
    const callId = callIdOf(input);
    const overlay = { taskKey: taskKeyOf(input.rootWorkflowId, input.rootRunId), callId, workspace: task.resources.workspace ?? '', workerId: records.workerId, placements: records.placements };
    const sync = async () => {
      // A superseded attempt's view of the overlay is not the call's: the newer attempt syncs.
      await fence?.assertCurrent();
      // Files longer in all than the tree's bound (sparse ones, hard links) are never read or copied.
      if (task.resources.workspace !== undefined) assertWorkspaceFilesWithin(stateDirOfDeps(deps), overlay.taskKey, task, input.tool);
      return syncOverlayCopy({ ...overlay, stateDir: stateDirOfDeps(deps), ...(records.blobs === undefined ? {} : { blobs: records.blobs }) });
    };
    await fence?.assertCurrent();
    await beginOverlayCall(overlay);
    let result: R;
    try {
      result = await call();
    } catch (error) {
      throw failureWithWrites(error, await sync());
    }
    const writes = await sync();
    return writes.length === 0 ? result : { ...result, writes };
  }

  /** The data flow's call: writes reported, large output checked into the blob store, next turn folded in. */
  async function runToolStep(input: RunToolRefInput, task: Task, grant: IssuedGrant | undefined, stop: CallStop, progress: ToolProgress): Promise<ToolStepResult> {
    const began = performance.now();
    try {
      const dp = dataPlaneOf(deps);
      const execution: ToolExecution = { ...executionOf(input, task, grant, stop, progress), argsClaimChecked: true };
      let result: ToolCallResult = await withWrites(input, task, dp, stop.fence, async () => {
        const done = await executeToolCall(deps, execution);
        refuseForgedClaimChecks(done.output, `the output of ${input.tool}`);
        return done;
      });
      const writes = result.writes ?? [];
      result = await checkedIn(dp.blobs, result);
      // Stopped by the host's gate (held for a human or denied): the workflow decides what follows; no turn is folded in.
      if (result.held !== undefined || result.denied !== undefined) return { ...result, ...(writes.length === 0 ? {} : { writes }) };
      // The model sees this call's step as done, with the output as history will hold it.
      const next =
        input.next === undefined
          ? undefined
          : await proposeFoldedTurn(deps, {
              workflowId: input.workflowId,
              task,
              taskRef: input.taskRef,
              turn: input.next.turn,
              transcript: {
                ref: input.next.transcript.ref,
                pending: input.next.transcript.pending.map((s) => (s.index === input.stepIndex ? { ...s, executed: true, output: result.output, credential: result.credential } : s)),
              },
              // Stopped at the deadline too: the call completed, and the workflow then ends the task (timed out) with it registered.
            }, stop.signal);
      // The decision on the next turn's first action, made here with the state the workflow will hold after counting this step.
      const ahead = input.next?.policy;
      const policy =
        next !== undefined && 'turn' in next && ahead?.request !== undefined && ahead.retainMs !== undefined && input.policy !== undefined
          ? await precheckPolicy(deps, {
              workflowId: input.workflowId,
              task,
              taskRef: input.taskRef,
              action: next.turn.actions[0],
              transcriptRef: next.transcriptRef,
              place: { depth: ahead.depth, chain: ahead.chain, ...(ahead.seed === undefined ? {} : { seed: ahead.seed }) },
              state: stateAfterCall(input.policy.state, ahead.request, result, { countEffects: ahead.countEffects === true, retainMs: ahead.retainMs }),
            })
          : undefined;
      return {
        ...result,
        ...(writes.length === 0 ? {} : { writes }),
        ...(next === undefined ? {} : { next: policy === undefined ? next : { ...next, policy } }),
        ...(input.onWorker === undefined ? {} : { ranMs: Math.ceil(performance.now() - began) }),
      };
    } catch (error) {
      throw toApplicationFailure(error);
    }
  }
}

/**
 * A call's result as workflow history takes it, on either loop: long strings of what the host's
 * gate reports (capability calls with their arguments, measured effects) as claim checks, and
 * (when the gate let the call finish) the output as one when its canonical JSON is over 16 KiB.
 * The custody record gets the output's SHA-256, the digest the claim check names.
 */
async function checkedIn(blobs: BlobStore, result: ToolCallResult): Promise<ToolCallResult> {
  const { effect, effects, held, denied } = result;
  const gate = (await claimCheckStrings(blobs, { effect, effects, held, denied })) as Pick<ToolCallResult, 'effect' | 'effects' | 'held' | 'denied'>;
  if (held !== undefined || denied !== undefined) return { ...result, ...gate };
  const checked = await claimCheckJson(blobs, result.output);
  annotateActiveSpan({ [WARDEN_ATTR.toolOutputSha256]: checked.sha256 });
  return { ...result, ...gate, output: checked.value };
}

/**
 * `result` when it fits under Warden's payload budget: a result Temporal would refuse does not
 * complete the activity (the step fails, its writes are undone, and the task's saga runs).
 * @throws DataPlaneError ERR_PAYLOAD_TOO_LARGE, naming the tool and the size
 */
function fitting<R>(result: R, tool: string): R {
  const bytes = jsonBytes(result);
  if (bytes > PAYLOAD_BUDGET_BYTES) {
    throw new DataPlaneError('ERR_PAYLOAD_TOO_LARGE', `the result of ${tool} is ${bytes} bytes after claim checks, more than the ${PAYLOAD_BUDGET_BYTES} Warden keeps under Temporal's payload limit`, { details: { tool, bytes } });
  }
  return result;
}

/**
 * The canonical WHATWG `host` (name, and port unless the scheme's default) of the URL a policy
 * judged; [] when it is no URL: then no redirect is followed. The port counts: another service on
 * the same machine is another destination.
 */
function judgedHostsOf(url: string): string[] {
  try {
    return [new URL(url).host];
  } catch {
    return [];
  }
}
