/**
 * `runTool` reads the call's task grant from the grant store once: the activity's span names the
 * agent from it and the credential is minted from that same read (issue 17: worker CPU per
 * guarded call). Real parts: a keystore and SQLite grant/replay stores in a state folder, a real
 * sandbox host process that verifies each credential (and consumes its `jti`) before the tool runs.
 * Failure paths: an unknown grant still fails closed, and a grant handed in under another id is
 * not used: the store's grant for the call's own id is read instead.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { executeToolCall, type RunToolInput } from '../../activities/run-tool';
import type { ActivityDeps } from '../../activities/index';
import { openCredentialStores, type LocalCredentialStores } from '../../identity/credential-stores';
import { openKeystore, type Keystore } from '../../identity/keystore';
import { hashIntent } from '../../identity/intent-hash';
import { issueTaskGrant, type IssuedGrant } from '../../identity/task-grant';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { parseTask } from '../../task/load-task-file';
import type { Task } from '../../task/task-schema';

let stateDir: string;
let keystore: Keystore;
let stores: LocalCredentialStores;
let sandbox: SandboxClient;
let task: Task;
let grant: IssuedGrant;
let otherGrant: IssuedGrant;
/** Grant ids read from the store, in order. */
const reads: string[] = [];

async function grantFor(workflowId: string, tools: string[]): Promise<IssuedGrant> {
  const issued = await issueTaskGrant(keystore, {
    workflowId,
    user: 'alice@example.com',
    intentHash: hashIntent('add numbers'),
    agent: { name: 'adder', model: { id: 'scripted', version: '1' } },
    grants: { tools, subagents: [], hosts: [], databases: [] },
    limits: { maxSteps: 10, toolTimeoutMs: 5000, toolMemoryMb: 64 },
    expiresAt: Date.now() + 10 * 60_000,
  });
  stores.grants.saveGrant(issued);
  return issued;
}

beforeAll(async () => {
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-grant-read-'));
  keystore = await openKeystore({ stateDir });
  stores = openCredentialStores({ stateDir });
  const getGrant = stores.grants.getGrant.bind(stores.grants);
  stores.grants.getGrant = (grantId: string) => {
    reads.push(grantId);
    return getGrant(grantId);
  };
  sandbox = await SandboxClient.start({ identityStateDir: stateDir });
  task = parseTask(
    {
      user: 'alice@example.com',
      intent: 'add numbers',
      agent: { name: 'adder', model: { driver: 'scripted', script: [{ final: 'done' }] } },
      tools: { custom: [{ name: 'add', description: 'adds', input: { type: 'object' }, source: 'return input.a + input.b;' }] },
      grants: { tools: ['add'] },
    },
    'grant-read-test',
    stateDir,
  );
  grant = await grantFor('w-grant-read', ['add']);
  // Grants no tool at all: a credential minted from it for `add` would be refused.
  otherGrant = await grantFor('w-other', []);
}, 120_000);

afterAll(async () => {
  await sandbox?.close();
  stores?.close();
  if (stateDir !== undefined) fs.rmSync(stateDir, { recursive: true, force: true });
});

const deps = (): ActivityDeps => ({ sandbox, stateDir, identity: { keystore, stores } }) as ActivityDeps;

function callOf(grantId: string, stepIndex: number): RunToolInput {
  return { rootWorkflowId: 'w-grant-read', workflowId: 'w-grant-read', stepIndex, grantId, maxCredentialTtlMs: 60_000, task, tool: 'add', args: { a: stepIndex, b: 1 } };
}

describe('runTool reads its grant once', () => {
  it.each([0, 1, 2])('call %i: one read of its grant, the tool runs under a credential the host verified and consumed', async (step) => {
    reads.length = 0;
    const result = await createActivities(deps()).runTool(callOf(grant.id, step));
    expect(result.output).toBe(step + 1);
    expect(reads).toEqual([grant.id]);
    // The host consumed the credential: presenting it again would be a replay.
    expect(stores.replay.isUsed(result.credential.jti)).toBe(true);
  });

  it('a grant unknown to the store still fails closed (ERR_CREDENTIAL_GRANT_UNKNOWN, not a revocation), naming it and the likely cause', async () => {
    reads.length = 0;
    await expect(createActivities(deps()).runTool(callOf('no-such-grant', 9))).rejects.toMatchObject({ type: 'ERR_CREDENTIAL_GRANT_UNKNOWN', message: expect.stringMatching(/no-such-grant is unknown to this worker: .*no record of it and none of its revocation.*another keystore.*WARDEN_TASK_QUEUE/) });
    // Read by the span, and again by the call: nothing read stands in for a grant that is not there.
    expect(reads).toEqual(['no-such-grant', 'no-such-grant']);
  });

  it('a grant this worker recorded as revoked, though its store never held it, is refused as revoked, not as "unknown, nothing was revoked" (attack finding)', async () => {
    const activities = createActivities(deps());
    const grantId = 'gr_started-from-another-state-folder';
    // The task was killed (or ended) and its endTask ran on this worker: the revocation is recorded here.
    await activities.endTask({ grantId, status: 'killed' } as Parameters<typeof activities.endTask>[0]);
    expect((await stores.revocation.isRevoked([grantId]))?.reason).toBe('task killed');
    const error = (await activities.runTool(callOf(grantId, 3)).then(() => undefined, (e: unknown) => e)) as { type?: string; message?: string } | undefined;
    expect(error).toBeDefined();
    expect({ type: error!.type, claimsNothingRevoked: /nothing was revoked/.test(error!.message ?? '') }).toEqual({ type: 'ERR_CREDENTIAL_REVOKED', claimsNothingRevoked: false });
  });

  it('a grant handed in under another id is not minted from: the call reads its own grant', async () => {
    reads.length = 0;
    const result = await executeToolCall(deps(), { rootWorkflowId: 'w-grant-read', callId: 'w-grant-read:7', grantId: grant.id, grantRead: otherGrant, maxCredentialTtlMs: 60_000, task, tool: 'add', args: { a: 7, b: 1 } });
    expect(result.output).toBe(8);
    expect(reads).toEqual([grant.id]);
  });

  it('the grant handed in is the one minted from: a grant that does not cover the tool is refused (ERR_CREDENTIAL_SCOPE)', async () => {
    reads.length = 0;
    // Same id as the call's grant, another grant's claims: the mint must use what it was handed.
    const swapped: IssuedGrant = { ...otherGrant, id: grant.id };
    await expect(executeToolCall(deps(), { rootWorkflowId: 'w-grant-read', callId: 'w-grant-read:8', grantId: grant.id, grantRead: swapped, maxCredentialTtlMs: 60_000, task, tool: 'add', args: { a: 8, b: 1 } })).rejects.toMatchObject({ code: 'ERR_CREDENTIAL_SCOPE' });
    expect(reads).toEqual([]);
  });
});
