/**
 * The identity side of a task's life: a signed grant when it starts (or, for a sub-agent, a
 * narrowing delegation from its parent's grant), and revocation when it ends, which stops every
 * credential of the task and of its sub-agents at once.
 *
 * Invariant: grant tokens stay in the worker's grant store; activities return ids, hashes and
 * the act chain only, so workflow history never holds a token.
 */
import type { Keystore } from '../identity/keystore';
import { missingGrantRefusal } from '../identity/grant-unknown';
import type { CredentialStores } from '../identity/credential-stores';
import { actChainOf } from '../identity/agent-identity';
import { hashIntent, issueTaskGrant, verifyTaskGrant, type IssuedGrant } from '../identity/task-grant';
import type { TaskIdentity } from '../task/task-run';
import { TaskSchema, type Task } from '../task/task-schema';
import { durationToMs } from '../task/duration';
import { CredentialError, DataPlaneError, DelegationError } from '../errors';
import { Context } from '@temporalio/activity';
import { canonicalSha256 } from '../custody/canonical-json';
import { SubagentHandoffSchema, type SubagentHandoff } from '../task/task-run';
import type { ActivityDeps } from './index';
import { assertOnWorker } from './flow-deps';
import { atActivityBoundary } from './to-application-failure';
import { checkNewWorkflowId } from '../client/workflow-id';
import { assertTaskSparesWardenResources, wardenKeyFiles, withApproverKeyFiles } from '../worker/warden-resources';
import { approverKeyFiles } from '../identity/approver-registry';
import type { WardenResources } from '../permissions/warden-resources';

/** Warden's key files and credential stores as they are now. */
function keyFilesNow(deps: ActivityDeps): string[] {
  return deps.stateDir === undefined ? [] : wardenKeyFiles(deps.stateDir, deps.env ?? process.env);
}

/** Warden's resources with the approver key files registered by now. */
async function resourcesNow(deps: ActivityDeps, resources: WardenResources): Promise<WardenResources> {
  return deps.approvers === undefined ? resources : withApproverKeyFiles(resources, await approverKeyFiles(deps.approvers));
}

export interface IdentityServices {
  keystore: Keystore;
  stores: CredentialStores;
}

export interface BeginTaskInput {
  workflowId: string;
  task: Task;
  /** Epoch ms: the task's deadline, which is also its grant's expiry. */
  deadlineAt: number;
}

export interface DelegateGrantInput extends BeginTaskInput {
  parentGrantId: string;
  /** What the parent will hand the child workflow besides the task and the grant id (absent in histories from before). */
  handoff?: Omit<SubagentHandoff, 'grantId'>;
}

export interface BeginSubagentInput {
  /** The task as the workflow received it. */
  task: Task;
  /** The handoff as the workflow received it (unverified: anyone who can start a workflow can write it). */
  handoff: unknown;
}

/** `sha256:<hex>` of the task and handoff (all but the grant id), in canonical JSON (RFC 8785). */
export function handoffDigestOf(task: unknown, handoff: Omit<SubagentHandoff, 'grantId'>): string {
  const { grantId: _grantId, ...rest } = handoff as SubagentHandoff;
  return `sha256:${canonicalSha256({ task, handoff: rest })}`;
}

function forged(message: string, details: Record<string, unknown> = {}): DelegationError {
  return new DelegationError('ERR_DELEGATION_FORGED', `not a sub-agent's handoff: ${message}`, { details });
}

/**
 * Binds a delegated handoff to the first run that takes it. The parent starts its child once (no
 * retry policy), so a second run under the same workflow id (someone with Temporal access
 * terminated the child and started the same id with the same input while the grant was live) is
 * refused with ERR_DELEGATION_FORGED. The same run may take it again (an activity retry after a
 * crash between the two marks). Marks live in the shared replay store until the grant expires.
 */
async function takeHandoffOnce(stores: CredentialStores, grantId: string, exp: number, workflowId: string): Promise<void> {
  const runId = Context.current().info.workflowExecution?.runId;
  if (runId === undefined) throw new TypeError('beginSubagent runs only as an activity of a workflow');
  const thisRunTookItBefore = !(await stores.replay.markUsed(`handoff-run:${grantId}:${runId}`, exp));
  const firstTaker = await stores.replay.markUsed(`handoff:${grantId}`, exp);
  if (!firstTaker && !thisRunTookItBefore) {
    throw forged(`grant ${grantId}'s handoff was already taken by another run of ${workflowId}: a parent's handoff starts one run only`, { workflowId });
  }
}

/** The id of the workflow running the current activity, as the server says (never from an input). */
function callingWorkflowId(): string {
  let workflowId: string | undefined;
  try {
    workflowId = Context.current().info.workflowExecution?.workflowId;
  } catch {
    workflowId = undefined;
  }
  if (workflowId === undefined) throw new TypeError('beginSubagent runs only as an activity of a workflow');
  return workflowId;
}

export interface EndTaskInput {
  grantId: string;
  status: string;
  /** Run only on this worker (a local activity meant for the data plane), else ERR_DATA_PLANE_ELSEWHERE. */
  onWorker?: string;
}

export function grantRequestOf(input: BeginTaskInput) {
  const { task } = input;
  return {
    workflowId: input.workflowId,
    intentHash: hashIntent(task.intent),
    agent: { name: task.agent.name, model: { id: task.agent.model.id, version: task.agent.model.version } },
    grants: {
      tools: task.grants.tools,
      subagents: task.grants.subagents,
      hosts: task.grants.hosts,
      databases: task.grants.databases,
      ...(task.grants.commands === undefined || task.grants.commands.length === 0 ? {} : { commands: task.grants.commands }),
    },
    limits: {
      maxSteps: task.limits.maxSteps,
      maxDepth: task.limits.maxDepth,
      toolTimeoutMs: durationToMs(task.limits.toolTimeout),
      toolMemoryMb: task.limits.toolMemoryMb,
    },
    expiresAt: input.deadlineAt,
  };
}

export function identityOf(grant: IssuedGrant): TaskIdentity {
  return {
    agentId: grant.claims.sub,
    grantId: grant.id,
    grantHash: grant.hash,
    chain: actChainOf(grant.claims.act),
    expiresAt: new Date(grant.claims.exp * 1000).toISOString(),
  };
}

function requireIdentity(deps: ActivityDeps): IdentityServices {
  if (deps.identity === undefined) throw new TypeError('this worker was created without identity services');
  return deps.identity;
}

export function createTaskIdentityActivities(deps: ActivityDeps) {
  return {
    /** Issues the grant of a task the user started. */
    async beginTask(input: BeginTaskInput): Promise<TaskIdentity> {
      return atActivityBoundary(async () => {
        const { keystore, stores } = requireIdentity(deps);
        assertRootWorkflowIdChoosable(input.workflowId);
        // Before any grant exists: a task that would hand Warden's own state or control plane to an agent never starts.
        if (deps.wardenResources !== undefined) await assertTaskSparesWardenResources(input.task, await resourcesNow(deps, deps.wardenResources), keyFilesNow(deps));
        const grant = await issueTaskGrant(keystore, { ...grantRequestOf(input), user: input.task.user });
        await stores.grants.saveGrant(grant);
        return identityOf(grant);
      });
    },

    /**
     * Accepts a sub-agent's handoff, or refuses the task. Every task passes the same resource
     * checks as a root task first. Then the handoff must name a grant this authority signed,
     * unrevoked (nor any ancestor), delegated by a parent to exactly the workflow running this
     * activity, whose `handoff` digest is that of the task and handoff received: nothing a client
     * can write (a grant id from a history, fields of its choosing) passes. ERR_DELEGATION_FORGED
     * names the check that failed.
     */
    async beginSubagent(input: BeginSubagentInput): Promise<TaskIdentity> {
      return atActivityBoundary(async () => {
        const { keystore, stores } = requireIdentity(deps);
        const workflowId = callingWorkflowId();
        // The input is a client's until the handoff verifies: its task is checked as a task first.
        const task = TaskSchema.safeParse(input.task);
        if (!task.success) throw forged(`the input's task is not a task: ${task.error.issues.map((i) => `${i.path.join('.') || '(task)'}: ${i.message}`).join('; ')}`, { workflowId });
        if (deps.wardenResources !== undefined) await assertTaskSparesWardenResources(task.data, await resourcesNow(deps, deps.wardenResources), keyFilesNow(deps));
        const parsed = SubagentHandoffSchema.safeParse(input.handoff);
        if (!parsed.success) throw forged('the input carries sub-agent fields that no parent handed over (a client may start a task with { task } only)', { workflowId });
        const handoff = parsed.data;
        const grant = await stores.grants.getGrant(handoff.grantId);
        if (grant === undefined) throw forged(`no grant ${handoff.grantId} was delegated by this authority`, { workflowId });
        let verified;
        try {
          verified = await verifyTaskGrant(grant.token, keystore, { clock: keystore.clock });
        } catch (error) {
          throw forged(`grant ${handoff.grantId} does not verify (${error instanceof CredentialError ? error.code : 'invalid'})`, { workflowId });
        }
        const claims = verified.claims;
        const revoked = await stores.revocation.isRevoked([claims.jti, ...claims.lineage]);
        if (revoked !== undefined) throw new CredentialError('ERR_CREDENTIAL_REVOKED', `grant ${revoked.grantId} was ended (${revoked.reason}): its sub-agents cannot start`, { details: { workflowId } });
        if (claims.workflow_id !== workflowId) throw forged(`grant ${claims.jti} was delegated to workflow ${claims.workflow_id}, not ${workflowId}`, { workflowId });
        if (claims.parent === undefined || claims.handoff === undefined) throw forged(`grant ${claims.jti} is not a parent's delegation to a sub-agent`, { workflowId });
        if (claims.depth !== handoff.depth) throw forged(`the handoff says depth ${handoff.depth}, the grant ${claims.depth}`, { workflowId });
        if (handoffDigestOf(input.task, handoff) !== claims.handoff) throw forged('the task or the handoff differs from what the parent delegated', { workflowId });
        await takeHandoffOnce(stores, claims.jti, claims.exp, workflowId);
        return identityOf(verified);
      });
    },

    /**
     * Issues a sub-agent's grant from its parent's. Refused with a DelegationError naming the scope
     * when the sub-agent asks for more than the parent holds, lives longer, or nests too deep.
     */
    async delegateGrant(input: DelegateGrantInput): Promise<TaskIdentity> {
      return atActivityBoundary(async () => {
        const { keystore, stores } = requireIdentity(deps);
        if (deps.wardenResources !== undefined) await assertTaskSparesWardenResources(input.task, await resourcesNow(deps, deps.wardenResources), keyFilesNow(deps));
        const parent = await stores.grants.getGrant(input.parentGrantId);
        if (parent === undefined) throw await missingGrantRefusal(stores.revocation, input.parentGrantId, 'parent grant');
        const grant = await issueTaskGrant(keystore, {
          ...grantRequestOf(input),
          parent: { token: parent.token },
          ...(input.handoff === undefined ? {} : { handoffDigest: handoffDigestOf(input.task, input.handoff) }),
        });
        await stores.grants.saveGrant(grant);
        return identityOf(grant);
      });
    },

    /** Ends a grant: every credential of the task and its sub-agents stops verifying now. */
    async endTask(input: EndTaskInput): Promise<void> {
      return atActivityBoundary(async () => {
        assertOnWorker(deps, input.onWorker);
        await revokeGrant(deps, input.grantId, input.status);
      });
    },
  };
}

/** Revokes grant `grantId` (and with it its sub-agents' grants) as the task ended with `status`. */
export async function revokeGrant(deps: ActivityDeps, grantId: string, status: string): Promise<void> {
  const { stores } = requireIdentity(deps);
  const grant = await stores.grants.getGrant(grantId);
  await stores.revocation.revokeGrant(grantId, `task ${status}`, undefined, grant === undefined ? {} : { expiresAt: grant.claims.exp * 1000 });
}

/**
 * Refuses a root task whose workflow id no Warden client lets a user choose (client/workflow-id.ts:
 * one holding `/` reads as another task's sub-agent to rollback, snapshots and custody). `warden
 * run` and `startAgentTask` refuse such an id before starting; this catches a client that starts
 * `agentTask` itself, before any grant exists (WardenError ERR_WORKFLOW_ID_INVALID, not retryable).
 * `workflowId` is the root's own, as its workflow code reads it from the server.
 */
export function assertRootWorkflowIdChoosable(workflowId: string): void {
  checkNewWorkflowId(workflowId);
}

/** Before any grant exists: a task that would hand Warden's own state or control plane to an agent never starts. */
export async function assertTaskSparesWarden(deps: ActivityDeps, task: Task): Promise<void> {
  if (deps.wardenResources !== undefined) await assertTaskSparesWardenResources(task, await resourcesNow(deps, deps.wardenResources), keyFilesNow(deps));
}
