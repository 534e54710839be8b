/**
 * Runs one granted tool call in the sandbox host. Arguments are validated against the tool's
 * schema first; the call gets only the capabilities the tool declares, narrowed to the task's
 * grants, and a fresh isolate with the task's time and memory limits.
 */
import { realpath } from 'node:fs/promises';
import { ApplicationFailure } from '@temporalio/common';
import { CapabilityError, CredentialError, isErrorCode, ToolError, WardenError } from '../errors';
import { claimCheckJson, resolveClaimChecks } from '../dataplane/claim-check';
import { beginOverlayCall, syncOverlayCopy } from '../dataplane/overlay-copy';
import type { FileWrite, Transcript } from '../task/data-flow';
import type { StepError } from '../task/task-run';
import { mintCallCredential } from '../identity/credential';
import { requiredScopeOf, scopeOfCall } from '../tools/call-scope';
import { journalPathOf, taskKeyOf } from '../recovery/recovery-paths';
import { openOverlay } from '../recovery/workspace-overlay';
import { durationToMs } from '../task/duration';
import type { Task } from '../task/task-schema';
import { capabilityGrantFor, resolveTool, ungrantedCapabilities } from '../tools/tool-catalog';
import { validateToolInput } from '../tools/tool-input-validator';
import type { ActivityDeps } from './index';
import { atActivityBoundary, toApplicationFailure } from './to-application-failure';
import { WARDEN_ATTR } from '../custody/attributes';
import { actChainOf } from '../identity/agent-identity';
import { annotateActiveSpan, outcomeOfError, resourceAttributes, sha256OfJson, toolCallAttributes } from '../telemetry/warden-span-attributes';
import { dataPlaneOf, recoveryDirOf, taskOf, whileHeartbeating } from './flow-deps';
import { proposeFoldedTurn, type ProposedTurn } from './next-turn';
import type { PolicyCheck } from './check-policy';
import { precheckPolicy } from './precheck-policy';

/** Largest JSON output a tool may return into the workflow history. */
export const MAX_TOOL_OUTPUT_BYTES = 1024 * 1024;

export interface RunToolInput {
  /** The workflow id of the task the user started (names the task tree's overlay and journal). */
  rootWorkflowId: string;
  workflowId: string;
  stepIndex: number;
  /** The task grant the call's credential is minted from. */
  grantId: string;
  /** Upper bound of the credential's lifetime (the activity's timeout). */
  maxCredentialTtlMs: number;
  task: Task;
  tool: string;
  args: Record<string, unknown>;
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
  workflowId: string;
  stepIndex: number;
  grantId: string;
  maxCredentialTtlMs: number;
  taskRef: string;
  tool: string;
  args: Record<string, unknown>;
  next?: {
    turn: number;
    transcript: Transcript;
    /** Where the agent sits in the task tree, for a policy decision on the next turn's first action. */
    policy?: { depth: number; chain: string[] };
  };
}

/** A call of the data flow: output (a claim check when large), files it wrote, the folded turn. */
export interface ToolStepResult extends ToolCallResult {
  /** Files the call left in the task tree's overlay (path and content hash). */
  writes?: FileWrite[];
  /**
   * The next model turn, or why asking for it failed (the workflow then asks on its own). With
   * it, when the task's rules do not depend on its counters, the policy decision on the turn's
   * first action, made here (so the workflow need not ask in a local activity of its own).
   */
  next?: (ProposedTurn & { policy?: PolicyCheck }) | { error: StepError };
}

/** What a tool call returns to the workflow: its output and the credential it ran under (no token). */
export interface ToolCallResult {
  output: unknown;
  credential: { jti: string; scope: string[]; expiresAt: string };
}

/** One tool call as the executor needs it; `callId` is its idempotency key. */
export interface ToolExecution {
  rootWorkflowId: string;
  callId: string;
  grantId: string;
  maxCredentialTtlMs: number;
  task: Task;
  tool: string;
  args: Record<string, unknown>;
}

/**
 * Validates, mints the call's credential and runs the tool in the sandbox host with its
 * capabilities: file writes into the task tree's overlay, SQL changes journaled under `callId`.
 */
export async function executeToolCall(deps: ActivityDeps, toolCall: ToolExecution): Promise<ToolCallResult> {
  let call = toolCall;
  const tool = resolveTool(call.task, call.tool);
  if (tool === undefined) throw new ToolError('ERR_TOOL_UNKNOWN', `tool "${call.tool}" is not declared by this task`);
  // Long arguments proposed by the model were kept out of history: the tool gets the real values.
  if (deps.dataPlane !== undefined) call = { ...call, args: (await resolveClaimChecks(deps.dataPlane.blobs, call.args)) as Record<string, unknown> };
  const problems = validateToolInput(tool.inputSchema, call.args);
  if (problems.length > 0) {
    throw new ToolError(
      'ERR_TOOL_INPUT_INVALID',
      `arguments of ${tool.name} are invalid: ${problems.map((p) => `${p.path === '' ? '(arguments)' : p.path} ${p.message}`).join('; ')}`,
      { details: { problems } },
    );
  }
  if (tool.executor.kind !== 'builtin' && tool.executor.kind !== 'isolate') {
    throw new ToolError('ERR_TOOL_UNKNOWN', `tool "${tool.name}" runs on a ${tool.executor.kind} executor, which this worker does not have`);
  }
  // Checked when the task loaded, and again here: a capability the task does not grant is never handed out.
  const ungranted = ungrantedCapabilities(call.task, tool);
  if (ungranted.length > 0) {
    throw new ToolError('ERR_CAPABILITY_NOT_GRANTED', `tool ${tool.name} declares capabilities the task does not grant: ${ungranted.map((u) => u.why).join('; ')}`, {
      details: { capabilities: ungranted.map((u) => u.capability) },
    });
  }
  if (deps.identity === undefined || deps.stateDir === undefined) throw new TypeError('this worker was created without identity services or a state folder');
  const grant = deps.identity.stores.grants.getGrant(call.grantId);
  if (grant === undefined) throw new CredentialError('ERR_CREDENTIAL_REVOKED', `grant ${call.grantId} is unknown to this worker`);
  const taskKey = taskKeyOf(call.rootWorkflowId);
  const capabilities = capabilityGrantFor(call.task, tool, tool.capabilities.some((c) => c.startsWith('fs.')) ? await workspaceRootOf(call.task) : undefined);
  const credential = await mintCallCredential(deps.identity.keystore, grant.token, {
    tool: tool.name,
    scope: requiredScopeOf(tool, call.args, capabilities),
    maxTtlMs: call.maxCredentialTtlMs,
  });
  if (capabilities.fs !== undefined) {
    capabilities.fs.overlay = (await openOverlay({ stateDir: deps.stateDir, taskKey, workspace: capabilities.fs.root })).upper;
  }
  if (capabilities.sql !== undefined) {
    capabilities.sql.journal = journalPathOf(recoveryDirOf(deps), taskKey);
    capabilities.sql.callId = call.callId;
  }
  const result = await deps.sandbox.run({
    toolName: tool.name,
    source: tool.executor.source,
    input: call.args,
    limits: {
      // A tool's own timeout can only shorten the task's per-call limit.
      timeoutMs: Math.min(durationToMs(tool.timeout ?? call.task.limits.toolTimeout), durationToMs(call.task.limits.toolTimeout)),
      memoryMb: Math.min(tool.memoryMb ?? call.task.limits.toolMemoryMb, call.task.limits.toolMemoryMb),
      maxOutputBytes: MAX_TOOL_OUTPUT_BYTES,
    },
    capabilities,
    credential: credential.token,
  });
  if (!result.ok) {
    const code = isErrorCode(result.error.code) ? result.error.code : 'ERR_TOOL_THREW';
    throw new ToolError(code, result.error.message);
  }
  return {
    output: result.output,
    credential: { jti: credential.claims.jti, scope: credential.claims.scope, expiresAt: new Date(credential.claims.exp * 1000).toISOString() },
  };
}

/** Span attributes known before the call runs: task, agent (from its grant), tool, argument hash, resources. */
function annotateToolCall(deps: ActivityDeps, task: Task, input: { rootWorkflowId: string; workflowId: string; grantId: string; tool: string; args: Record<string, unknown> }): void {
  annotateActiveSpan(toolCallAttributes(task, input.rootWorkflowId, input.workflowId, input.tool, input.args));
  const grant = deps.identity?.stores.grants.getGrant(input.grantId);
  if (grant !== undefined) {
    let chain: string[] | undefined;
    try {
      chain = actChainOf(grant.claims.act);
    } catch {
      chain = undefined;
    }
    annotateActiveSpan({ [WARDEN_ATTR.agentId]: grant.claims.sub, [WARDEN_ATTR.agentChain]: chain });
  }
  try {
    annotateActiveSpan(resourceAttributes(scopeOfCall(input.tool, input.args)));
  } catch {
    // Arguments that name no valid resource: the call fails validation and says so.
  }
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


export interface RunTool {
  (input: RunToolInput): Promise<ToolCallResult>;
  (input: RunToolRefInput): Promise<ToolStepResult>;
}

export function createRunTool(deps: ActivityDeps): RunTool {
  async function runTool(input: RunToolInput | RunToolRefInput): Promise<ToolCallResult | ToolStepResult> {
    const task = await taskOf(deps, input);
    annotateToolCall(deps, task, input);
    try {
      const result = 'taskRef' in input ? await runToolStep(input, task) : await runToolOnce(input);
      // The credential's id, never its token.
      annotateActiveSpan({ [WARDEN_ATTR.credentialJti]: result.credential.jti, [WARDEN_ATTR.outcome]: 'ok' });
      return result;
    } catch (error) {
      annotateActiveSpan({ [WARDEN_ATTR.outcome]: outcomeOfError(error) });
      throw error;
    }
  }
  return runTool as RunTool;

  function runToolOnce(input: RunToolInput): Promise<ToolCallResult> {
    return atActivityBoundary(async () => {
      const result = await executeToolCall(deps, {
        rootWorkflowId: input.rootWorkflowId,
        // Stable across retries of this activity: a re-run after a crash is recognised, not repeated.
        callId: `${input.workflowId}:${input.stepIndex}`,
        grantId: input.grantId,
        maxCredentialTtlMs: input.maxCredentialTtlMs,
        task: input.task,
        tool: input.tool,
        args: input.args,
      });
      annotateActiveSpan({ [WARDEN_ATTR.toolOutputSha256]: sha256OfJson(result.output) });
      return result;
    });
  }

  /** The data flow's call: writes reported, large output checked into the blob store, next turn folded in. */
  async function runToolStep(input: RunToolRefInput, task: Task): Promise<ToolStepResult> {
    const dp = dataPlaneOf(deps);
    return whileHeartbeating(async () => {
      const callId = `${input.workflowId}:${input.stepIndex}`;
      const tool = resolveTool(task, input.tool);
      const workspace = task.resources.workspace;
      const writesFiles = workspace !== undefined && tool !== undefined && tool.capabilities.includes('fs.write');
      const taskKey = taskKeyOf(input.rootWorkflowId);
      const overlay = { taskKey, callId, workspace: workspace ?? '', workerId: dp.workerId, placements: dp.placements };
      if (writesFiles) await beginOverlayCall(overlay);
      let result: ToolCallResult;
      try {
        result = await executeToolCall(deps, { ...input, callId, task });
      } catch (error) {
        const writes = writesFiles ? await syncOverlayCopy({ ...overlay, stateDir: deps.stateDir!, blobs: dp.blobs }) : [];
        throw failureWithWrites(error, writes);
      }
      const writes = writesFiles ? await syncOverlayCopy({ ...overlay, stateDir: deps.stateDir!, blobs: dp.blobs }) : [];
      const checked = await claimCheckJson(dp.blobs, result.output);
      annotateActiveSpan({ [WARDEN_ATTR.toolOutputSha256]: checked.sha256 });
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
                pending: input.next.transcript.pending.map((s) => (s.index === input.stepIndex ? { ...s, executed: true, output: checked.value, credential: result.credential } : s)),
              },
            });
      const policy = next !== undefined && 'turn' in next && input.next?.policy !== undefined ? await precheckPolicy(deps, { workflowId: input.workflowId, task, next, ...input.next.policy }) : undefined;
      return {
        output: checked.value,
        credential: result.credential,
        ...(writes.length === 0 ? {} : { writes }),
        ...(next === undefined ? {} : { next: policy === undefined ? next : { ...next, policy } }),
      };
    }).catch((error: unknown) => {
      throw toApplicationFailure(error);
    });
  }
}
