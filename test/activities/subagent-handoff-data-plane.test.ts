/**
 * A sub-agent's data-plane queue (`handoff.dataPlane`, workflows/data-plane-affinity.ts) is
 * signed with the rest of its handoff: the parent's delegated grant binds the digest of the task
 * and handoff, so a handoff that names another worker's queue, drops the queue (to run on any
 * worker) or changes its timeout is not the one the parent delegated, and `beginSubagent` refuses
 * it before the run sends anything anywhere.
 *
 * Real keystore, real SQLite stores, the real activities; Temporal's activity test environment
 * stands in for the server only to say which workflow run calls.
 */
import { ApplicationFailure } from '@temporalio/common';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTaskIdentityActivities } from '../../activities/task-identity';
import type { ActivityDeps } from '../../activities';
import { openCredentialStores, type LocalCredentialStores } from '../../identity/credential-stores';
import { openKeystore } from '../../identity/keystore';
import { TaskSchema } from '../../task/task-schema';
import { makeTempDir } from '../identity/identity-test-kit';

const task = TaskSchema.parse({
  user: 'alice@example.com',
  intent: 'write the notes',
  agent: { name: 'writer', model: { driver: 'scripted', script: [{ final: 'done' }] } },
  tools: { builtin: ['fs.write'] },
  grants: { tools: ['fs.write'] },
});

const deadlineAt = Date.now() + 10 * 60_000;
const dataPlane = { taskQueue: 'warden-agent-tasks@worker-a', startTimeoutSeconds: 30 };
const delegated = { depth: 1, lineage: ['root-task'], deadlineAt, dataPlane };

let stores: LocalCredentialStores;
let activities: ReturnType<typeof createTaskIdentityActivities>;
const grants: Record<string, string> = {};

async function outcomeOf(work: Promise<unknown>): Promise<string> {
  try {
    await work;
    return 'ok';
  } catch (error) {
    if (error instanceof ApplicationFailure && error.type) return error.type;
    throw error;
  }
}

function inRun<T>(workflowId: string, runId: string, work: () => Promise<T>): Promise<T> {
  return new MockActivityEnvironment({ workflowExecution: { workflowId, runId } } as never).run(work);
}

const rows: { what: string; handoff: Record<string, unknown>; expected: string }[] = [
  { what: "another worker's queue", handoff: { ...delegated, dataPlane: { ...dataPlane, taskQueue: 'warden-agent-tasks@worker-b' } }, expected: 'ERR_DELEGATION_FORGED' },
  { what: 'the shared queue instead of the worker', handoff: { ...delegated, dataPlane: { ...dataPlane, taskQueue: 'warden-agent-tasks' } }, expected: 'ERR_DELEGATION_FORGED' },
  { what: 'the queue dropped (any worker)', handoff: { depth: 1, lineage: ['root-task'], deadlineAt }, expected: 'ERR_DELEGATION_FORGED' },
  { what: 'another start timeout', handoff: { ...delegated, dataPlane: { ...dataPlane, startTimeoutSeconds: 3600 } }, expected: 'ERR_DELEGATION_FORGED' },
  { what: 'a field the schema does not know', handoff: { ...delegated, dataPlane: { ...dataPlane, workerId: 'worker-b' } }, expected: 'ERR_DELEGATION_FORGED' },
  { what: 'the queue the parent delegated', handoff: delegated, expected: 'ok' },
];

beforeAll(async () => {
  const stateDir = makeTempDir('handoff-data-plane');
  stores = openCredentialStores({ stateDir });
  const keystore = await openKeystore({ stateDir });
  activities = createTaskIdentityActivities({ identity: { keystore, stores } } as unknown as ActivityDeps);
  const root = await inRun('root-task', 'root-run', () => activities.beginTask({ workflowId: 'root-task', task, deadlineAt }));
  for (const [i] of rows.entries()) {
    const identity = await inRun('root-task', 'root-run', () => activities.delegateGrant({ workflowId: `kid-${i}`, task, deadlineAt, parentGrantId: root.grantId, handoff: delegated }));
    grants[`kid-${i}`] = identity.grantId;
  }
});
afterAll(() => stores?.close?.());

describe("a sub-agent's data-plane queue is covered by its parent's signature", () => {
  for (const [i, row] of rows.entries()) {
    it(`${row.what}: ${row.expected}`, async () => {
      const handoff = { grantId: grants[`kid-${i}`]!, ...row.handoff };
      expect(await outcomeOf(inRun(`kid-${i}`, 'run-1', () => activities.beginSubagent({ task, handoff })))).toBe(row.expected);
    });
  }
});
