/**
 * The identity side of a task's life: a signed grant when it starts (or, for a sub-agent, a
 * narrowing delegation from its parent's grant), and revocation when it ends, which stops every
 * credential of the task and of its sub-agents at once.
 *
 * Invariant: grant tokens stay in the worker's grant store; activities return ids, hashes and
 * the act chain only, so workflow history never holds a token.
 */
import type { Keystore } from '../identity/keystore';
import type { CredentialStores } from '../identity/credential-stores';
import { actChainOf } from '../identity/agent-identity';
import { hashIntent, issueTaskGrant, type IssuedGrant } from '../identity/task-grant';
import type { TaskIdentity } from '../task/task-run';
import type { Task } from '../task/task-schema';
import { durationToMs } from '../task/duration';
import { CredentialError, DataPlaneError } from '../errors';
import type { ActivityDeps } from './index';
import { dataPlaneOf } from './flow-deps';
import { atActivityBoundary } from './to-application-failure';
import { assertTaskSparesWardenResources, wardenKeyFiles, withApproverKeyFiles } from '../worker/warden-resources';
import { approverKeyFiles } from '../identity/approver-registry';
import type { WardenResources } from '../permissions/warden-resources';

/** Warden's key files and credential stores as they are now. */
function keyFilesNow(deps: ActivityDeps): string[] {
  return deps.stateDir === undefined ? [] : wardenKeyFiles(deps.stateDir, deps.env ?? process.env);
}

/** Warden's resources with the approver key files registered by now. */
function resourcesNow(deps: ActivityDeps, resources: WardenResources): WardenResources {
  return deps.approvers === undefined ? resources : withApproverKeyFiles(resources, approverKeyFiles(deps.approvers));
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
}

/** The data flow's delegation: the sub-agent's task is stored, and passed on by reference. */
export interface DelegateTaskResult {
  identity: TaskIdentity;
  taskRef: string;
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
        // Before any grant exists: a task that would hand Warden's own state or control plane to an agent never starts.
        if (deps.wardenResources !== undefined) assertTaskSparesWardenResources(input.task, resourcesNow(deps, deps.wardenResources), keyFilesNow(deps));
        const grant = await issueTaskGrant(keystore, { ...grantRequestOf(input), user: input.task.user });
        await stores.grants.saveGrant(grant);
        return identityOf(grant);
      });
    },

    /**
     * Issues a sub-agent's grant from its parent's. Refused with a DelegationError naming the scope
     * when the sub-agent asks for more than the parent holds, lives longer, or nests too deep.
     */
    async delegateGrant(input: DelegateGrantInput): Promise<TaskIdentity> {
      return atActivityBoundary(async () => {
        const { keystore, stores } = requireIdentity(deps);
        if (deps.wardenResources !== undefined) assertTaskSparesWardenResources(input.task, resourcesNow(deps, deps.wardenResources), keyFilesNow(deps));
        const parent = await stores.grants.getGrant(input.parentGrantId);
        if (parent === undefined) throw new CredentialError('ERR_CREDENTIAL_REVOKED', `the parent grant ${input.parentGrantId} is unknown to this worker`);
        const grant = await issueTaskGrant(keystore, { ...grantRequestOf(input), parent: { token: parent.token } });
        await stores.grants.saveGrant(grant);
        return identityOf(grant);
      });
    },

    /** As `delegateGrant`, and stores the sub-agent's task so its activities take it by reference. */
    async delegateTask(input: DelegateGrantInput): Promise<DelegateTaskResult> {
      return atActivityBoundary(async () => {
        const { keystore, stores } = requireIdentity(deps);
        if (deps.wardenResources !== undefined) assertTaskSparesWardenResources(input.task, resourcesNow(deps, deps.wardenResources), keyFilesNow(deps));
        const parent = await stores.grants.getGrant(input.parentGrantId);
        if (parent === undefined) throw new CredentialError('ERR_CREDENTIAL_REVOKED', `the parent grant ${input.parentGrantId} is unknown to this worker`);
        const grant = await issueTaskGrant(keystore, { ...grantRequestOf(input), parent: { token: parent.token } });
        await stores.grants.saveGrant(grant);
        return { identity: identityOf(grant), taskRef: await dataPlaneOf(deps).tasks.put(input.task) };
      });
    },

    /** Ends a grant: every credential of the task and its sub-agents stops verifying now. */
    async endTask(input: EndTaskInput): Promise<void> {
      return atActivityBoundary(async () => {
        if (input.onWorker !== undefined && input.onWorker !== deps.dataPlane?.workerId) {
          throw new DataPlaneError('ERR_DATA_PLANE_ELSEWHERE', `this is worker ${deps.dataPlane?.workerId ?? '?'}, not ${input.onWorker} which holds the task's data plane`);
        }
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

/** Before any grant exists: a task that would hand Warden's own state or control plane to an agent never starts. */
export function assertTaskSparesWarden(deps: ActivityDeps, task: Task): void {
  if (deps.wardenResources !== undefined) assertTaskSparesWardenResources(task, resourcesNow(deps, deps.wardenResources), keyFilesNow(deps));
}
