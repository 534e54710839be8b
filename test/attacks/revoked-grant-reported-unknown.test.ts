/**
 * Open finding (ERR_CREDENTIAL_GRANT_UNKNOWN, identity/grant-unknown.ts, activities/run-tool.ts):
 * `runTool` looks the grant up before anything else and, when the grant store does not hold it,
 * refuses with ERR_CREDENTIAL_GRANT_UNKNOWN saying "nothing was revoked", without asking the
 * revocation store. A worker that itself recorded the grant's revocation (its `endTask` ran for a
 * task started from another state folder: the kill or the task's end lands on this worker, which
 * records the revocation of a grant it does not hold, with no expiry) then reports the next call of
 * that grant (a retry, a sibling step, a sub-agent's delegation) as "unknown, nothing was revoked":
 * a false statement in the failure, the custody record and the monitor's alert text, and response
 * rules keyed on ERR_CREDENTIAL_REVOKED (a killed task's calls continuing) no longer fire. The call
 * is still refused (the monitor scores it 100), so this is a misreport, not a bypass.
 *
 * Expected: ask `isRevoked([grantId])` before reporting unknown; a revoked grant is refused
 * ERR_CREDENTIAL_REVOKED whatever the grant store holds, and "unknown" says only "this worker has
 * no record of it" (it cannot know that nothing was revoked elsewhere). Same in `delegateGrant`.
 *
 * Real parts: a keystore and SQLite credential stores in a state folder, the real activities.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import type { ActivityDeps } from '../../activities/index';
import type { RunToolInput } from '../../activities/run-tool';
import { openCredentialStores, type LocalCredentialStores } from '../../identity/credential-stores';
import { openKeystore, type Keystore } from '../../identity/keystore';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { parseTask } from '../../task/load-task-file';
import type { Task } from '../../task/task-schema';

let stateDir: string;
let keystore: Keystore;
let stores: LocalCredentialStores;
let sandbox: SandboxClient;
let task: Task;

beforeAll(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-revoked-unknown-'));
  keystore = await openKeystore({ stateDir });
  stores = openCredentialStores({ stateDir });
  sandbox = await SandboxClient.start({ identityStateDir: stateDir });
  task = parseTask(
    {
      user: 'alice@example.com',
      intent: 'add numbers',
      agent: { name: 'adder', model: { driver: 'scripted', script: [{ final: 'done' }] } },
      tools: { custom: [{ name: 'add', description: 'adds', input: { type: 'object' }, source: 'return input.a + input.b;' }] },
      grants: { tools: ['add'] },
    },
    'revoked-unknown-test',
    stateDir,
  );
}, 120_000);

afterAll(async () => {
  await sandbox?.close();
  stores?.close();
  if (stateDir !== undefined) fs.rmSync(stateDir, { recursive: true, force: true });
});

it('a grant this worker recorded as revoked is refused as revoked, not as "unknown, nothing was revoked"', async () => {
  const activities = createActivities({ sandbox, stateDir, identity: { keystore, stores } } as ActivityDeps);
  const grantId = 'gr_started-from-another-state-folder';
  // The task was killed (or ended) and its endTask ran on this worker: the revocation is recorded here.
  await activities.endTask({ grantId, status: 'killed' } as Parameters<typeof activities.endTask>[0]);
  expect((await stores.revocation.isRevoked([grantId]))?.reason).toBe('task killed');
  const call: RunToolInput = { rootWorkflowId: 'w-killed', workflowId: 'w-killed', stepIndex: 3, grantId, maxCredentialTtlMs: 60_000, task, tool: 'add', args: { a: 1, b: 1 } };
  const error = (await activities.runTool(call).then(() => undefined, (e: unknown) => e)) as { type?: string; message?: string } | undefined;
  expect(error).toBeDefined();
  expect({ type: error!.type, claimsNothingRevoked: /nothing was revoked/.test(error!.message ?? '') }).toEqual({ type: 'ERR_CREDENTIAL_REVOKED', claimsNothingRevoked: false });
}, 120_000);
