/**
 * A parent's handoff starts one run. Someone with Temporal access can terminate a live sub-agent
 * and start the same workflow id with the same input (it sits in the history): before, that
 * second run verified (grant live, digest equal) until the parent revoked the grant. Now the first
 * run that takes a handoff owns it; a retry of that run's activity still verifies.
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
  intent: 'read the notes',
  agent: { name: 'reader', model: { driver: 'scripted', script: [{ final: 'done' }] } },
  tools: { builtin: ['fs.read'] },
  grants: { tools: ['fs.read'] },
});

let stores: LocalCredentialStores;
let activities: ReturnType<typeof createTaskIdentityActivities>;
let childGrants: Record<string, string>;
const deadlineAt = Date.now() + 10 * 60_000;
const handoffOf = (grantId: string) => ({ grantId, depth: 1, lineage: ['root-task'], deadlineAt });

/** The failure type (Warden's error code) the activity ends with, or "ok". */
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
  const env = new MockActivityEnvironment({ workflowExecution: { workflowId, runId } } as never);
  return env.run(work);
}

beforeAll(async () => {
  const stateDir = makeTempDir('handoff-once');
  stores = openCredentialStores({ stateDir });
  const keystore = await openKeystore({ stateDir });
  activities = createTaskIdentityActivities({ identity: { keystore, stores } } as unknown as ActivityDeps);
  const root = await inRun('root-task', 'root-run', () => activities.beginTask({ workflowId: 'root-task', task, deadlineAt }));
  childGrants = {};
  for (const child of ['kid-a', 'kid-b']) {
    const identity = await inRun('root-task', 'root-run', () =>
      activities.delegateGrant({ workflowId: child, task, deadlineAt, parentGrantId: root.grantId, handoff: { depth: 1, lineage: ['root-task'], deadlineAt } }),
    );
    childGrants[child] = identity.grantId;
  }
});
afterAll(() => stores?.close?.());

describe('a delegated handoff', () => {
  // In order: each row runs after the ones above it, against the same stores.
  const rows: { what: string; child: string; runId: string; handoff?: (grantId: string) => unknown; expected: string }[] = [
    { what: 'a forged digest (another deadline) does not take the handoff', child: 'kid-a', runId: 'attacker-0', handoff: (g) => ({ ...handoffOf(g), deadlineAt: deadlineAt + 1 }), expected: 'ERR_DELEGATION_FORGED' },
    { what: 'the first run takes it', child: 'kid-a', runId: 'run-1', expected: 'ok' },
    { what: 'a retry of the same run still verifies', child: 'kid-a', runId: 'run-1', expected: 'ok' },
    { what: 'a second run of the same workflow id with the same input is refused', child: 'kid-a', runId: 'run-2', expected: 'ERR_DELEGATION_FORGED' },
    { what: 'the first run still verifies after a refused second run', child: 'kid-a', runId: 'run-1', expected: 'ok' },
    { what: "another child's handoff is its own (a first run under it is accepted)", child: 'kid-b', runId: 'run-2', expected: 'ok' },
  ];
  for (const row of rows) {
    it(`${row.what}: ${row.expected}`, async () => {
      const grantId = childGrants[row.child]!;
      const handoff = row.handoff ? row.handoff(grantId) : handoffOf(grantId);
      expect(await outcomeOf(inRun(row.child, row.runId, () => activities.beginSubagent({ task, handoff })))).toBe(row.expected);
    });
  }
});
