/**
 * The identity layer inside real runs: every tool call runs under its own credential, minted from
 * the task's grant and checked by the sandbox host; ending the task revokes it; no token or key
 * ever reaches workflow history.
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { DEFAULT_CREDENTIAL_TTL_MS, mintCallCredential } from '../../identity/credential';
import { openCredentialStores, type LocalCredentialStores } from '../../identity/credential-stores';
import { openKeystore, readJwksFile, type Keystore } from '../../identity/keystore';
import { findSecretsIn } from '../../identity/redact';
import { hashIntent } from '../../identity/task-grant';
import { createCredentialVerifier } from '../../identity/verify-credential';
import type { TaskResult } from '../../task/task-run';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let workspace: string;
let keystore: Keystore;
let stores: LocalCredentialStores;
let result: TaskResult;

beforeAll(async () => {
  env = await startWardenTestEnv();
  keystore = await openKeystore({ stateDir: TEST_STATE_DIR });
  stores = openCredentialStores({ stateDir: TEST_STATE_DIR });
  workspace = await mkdtemp(join(tmpdir(), 'warden-identity-'));
  await writeFile(join(workspace, 'notes.txt'), 'secret plans');
  result = await env.runTask({
    user: 'alice@example.com',
    intent: 'Read my notes and have a helper list the folder.',
    agent: {
      name: 'reader',
      model: {
        driver: 'scripted',
        id: 'scripted-reader',
        version: '3',
        script: [{ tool: 'fs.read', args: { path: './notes.txt' } }, { tool: 'fs.list', args: {} }, { spawn: 'lister' }, { final: 'done' }],
      },
    },
    tools: { builtin: ['fs.read', 'fs.list'] },
    grants: { tools: ['fs.read', 'fs.list'], subagents: ['lister'] },
    resources: { workspace },
    subagents: {
      lister: {
        intent: 'list the folder',
        agent: { name: 'lister', model: { driver: 'scripted', script: [{ tool: 'fs.list', args: { path: '.' } }, { final: 'listed' }] } },
        tools: { builtin: ['fs.list'] },
        grants: { tools: ['fs.list'] },
      },
    },
  });
});

afterAll(async () => {
  stores?.close();
  await env?.close();
});

it('runs each tool call under a fresh credential scoped to exactly that call', () => {
  expect(result.status).toBe('completed');
  const [read, list] = result.steps;
  expect(read?.credential?.scope).toEqual(['fs.read:notes.txt']);
  expect(list?.credential?.scope).toEqual(['fs.list:.']);
  const jtis = [read, list, ...result.children[0]!.steps].map((s) => s?.credential?.jti);
  expect(new Set(jtis).size).toBe(3);
  for (const step of [read!, list!]) {
    const lifetime = Date.parse(step.credential!.expiresAt) - Date.parse(step.startedAt);
    expect(lifetime).toBeGreaterThan(0);
    // Minted during the step, so at most the TTL past the step's end: a bound from its start alone
    // also counted how long a loaded machine took to start the activity.
    // And at most the tool's timeout (the default 5 s) + 10 s of setup: not the runTool activity's
    // room for the sandbox's liveness check (workflows/activity-stubs.ts; an MCP call's deadline and
    // an outbound host's `{{credential}}` are this credential's).
    expect(lifetime).toBeLessThanOrEqual(Math.min(DEFAULT_CREDENTIAL_TTL_MS, 5_000 + 10_000) + step.durationMs + 1_000);
  }
});

it('binds the user, the intent and the model to a signed grant, and delegates to the sub-agent', () => {
  const grant = stores.grants.getGrant(result.identity!.grantId)!;
  expect(grant.claims).toMatchObject({
    user: 'user:alice@example.com',
    intent_hash: hashIntent('Read my notes and have a helper list the folder.'),
    agent: { name: 'reader', model: { id: 'scripted-reader', version: '3' } },
    grants: { tools: ['fs.read', 'fs.list'] },
  });
  const child = result.children[0]!;
  const childGrant = stores.grants.getGrant(child.identity!.grantId)!;
  expect(childGrant.claims.parent).toEqual({ id: grant.id, hash: grant.hash });
  expect(childGrant.claims.grants.tools).toEqual(['fs.list']);
  expect(child.identity!.chain).toEqual(['user:alice@example.com', `agent:reader@${result.workflowId}`, `agent:lister@${child.workflowId}`]);
});

it('revokes the grants when the task ends: a credential of the finished task no longer verifies', async () => {
  for (const grantId of [result.identity!.grantId, result.children[0]!.identity!.grantId]) {
    expect(stores.revocation.isRevoked([grantId])).toBeDefined();
  }
  // Even a well-formed, unexpired credential minted from the child's grant is refused now.
  const childGrant = stores.grants.getGrant(result.children[0]!.identity!.grantId)!;
  const late = await mintCallCredential(keystore, { claims: childGrant.claims }, { tool: 'fs.list', scope: ['fs.list:.'] });
  const verifier = createCredentialVerifier({ keys: () => readJwksFile(TEST_STATE_DIR), replayStore: stores.replay, revocationStore: stores.revocation });
  await expect(verifier.verify(late.token, { tool: 'fs.list', requiredScope: ['fs.list:.'] })).rejects.toMatchObject({ code: 'ERR_CREDENTIAL_REVOKED' });
});

it('keeps tokens and keys out of every workflow history of the run', async () => {
  for (const workflowId of [result.workflowId, result.children[0]!.workflowId]) {
    const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
    expect(findSecretsIn(history), workflowId).toEqual([]);
    expect(JSON.stringify(history)).not.toContain(stores.grants.getGrant(result.identity!.grantId)!.token);
  }
});
