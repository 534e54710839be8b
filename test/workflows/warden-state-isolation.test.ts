/**
 * In real runs, no private key reaches a tool: a task whose workspace contains the state folder
 * is refused before anything runs (also when started from a program, not `warden run`); a key
 * reached under another name (a hard link in an innocent workspace) is refused by the sandbox;
 * path rules judge the file a link leads to, not the text naming it. Histories and results are
 * scanned for key material.
 */
import { randomUUID } from 'node:crypto';
import { linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { decideApproval } from '../../client/approvals';
import { followAgentTask } from '../../client/start-agent-task';
import { issueApproverKey } from '../../identity/approval-decision';
import { openApproverStore } from '../../identity/approver-registry';
import { findSecretsIn } from '../../identity/redact';
import { parseTask } from '../../task/load-task-file';
import { taskStateQuery } from '../../workflows/definitions';
import type { TaskResult } from '../../task/task-run';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
/** Next to the test state folder, so a hard link to a key can be made (same file system). */
let sibling: string;

beforeAll(async () => {
  env = await startWardenTestEnv();
  sibling = mkdtempSync(join(REPO_ROOT, '.warden-test-isolation-'));
});
afterAll(async () => {
  rmSync(sibling, { recursive: true, force: true });
  await env?.close();
});

/** The credential authority's private keys, as files and their private scalars. */
function privateKeys(): { file: string; d: string }[] {
  const dir = join(TEST_STATE_DIR, 'keys');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.jwk.json'))
    .map((f) => ({ file: join(dir, f), d: (JSON.parse(readFileSync(join(dir, f), 'utf8')) as { d?: string }).d ?? '' }))
    .filter((k) => k.d !== '');
}

async function expectNoKeyMaterial(result: TaskResult): Promise<void> {
  const text = JSON.stringify(result);
  for (const { d } of privateKeys()) expect(text).not.toContain(d);
  const history = await env.client.workflow.getHandle(result.workflowId).fetchHistory();
  expect(findSecretsIn(history)).toEqual([]);
  for (const { d } of privateKeys()) expect(JSON.stringify(history)).not.toContain(d);
}

const keyReader = (paths: string[]) => ({
  name: 'key-reader',
  description: 'reads files',
  input: { type: 'object' },
  capabilities: ['fs.read', 'fs.list'],
  source: `const out = {}; for (const p of ${JSON.stringify(paths)}) { try { out[p] = warden.fs.read(p); } catch (e) { out[p] = e.code; } } return out;`,
});

describe('the state folder inside the workspace', () => {
  it('refuses the task before any tool runs (the issue: a user tool reading the authority key)', async () => {
    // The workspace is the repository, which holds the test state folder (under `.warden-test/`).
    const stateFolder = relative(REPO_ROOT, TEST_STATE_DIR);
    const keyPath = `${stateFolder}/keys/${privateKeys()[0]!.file.split('/').pop()!}`;
    const result = await env.runTask({
      user: 'mallory@example.com',
      intent: 'tidy the repository',
      agent: { name: 'tidy', model: { driver: 'scripted', script: [{ tool: 'key-reader', args: {} }, { final: 'done' }] } },
      tools: { builtin: ['fs.read', 'fs.list'], custom: [keyReader([keyPath, `${stateFolder}/custody-keys`])] },
      grants: { tools: ['key-reader', 'fs.read', 'fs.list'] },
      resources: { workspace: REPO_ROOT },
    });
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/ERR_RESOURCE_PROTECTED: .*resources\.workspace: .* contains Warden's state folder/);
    expect(result.steps).toEqual([]);
    await expectNoKeyMaterial(result);
  });
});

describe('a key under another name', () => {
  it('is refused by the sandbox, and the key stays out of the result and history', async () => {
    const workspace = join(sibling, 'ws');
    mkdirSync(workspace);
    writeFileSync(join(workspace, 'notes.txt'), 'plain notes');
    const key = privateKeys()[0]!;
    linkSync(key.file, join(workspace, 'config.json'));
    const result = await env.runTask({
      user: 'mallory@example.com',
      intent: 'read the notes and the config',
      agent: {
        name: 'reader',
        model: { driver: 'scripted', script: [{ tool: 'key-reader', args: {} }, { tool: 'fs.read', args: { path: 'config.json' } }, { final: 'done' }] },
      },
      tools: { builtin: ['fs.read', 'fs.list'], custom: [keyReader(['notes.txt', 'config.json'])] },
      grants: { tools: ['fs.read', 'fs.list', 'key-reader'] },
      limits: { onDeny: 'continue' },
      resources: { workspace },
    });
    expect(result.steps[0]?.output).toEqual({ 'notes.txt': 'plain notes', 'config.json': 'ERR_PATH_OUTSIDE_WORKSPACE' });
    expect(result.steps[1]?.error?.code).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
    await expectNoKeyMaterial(result);
  });
});

describe('a credential store under another name as a database', () => {
  it('is refused before anything runs (grant tokens live in identity.db)', async () => {
    const dir = join(sibling, 'db-link');
    mkdirSync(dir);
    linkSync(join(TEST_STATE_DIR, 'identity.db'), join(dir, 'crm.db'));
    const result = await env.runTask({
      user: 'mallory@example.com',
      intent: 'count the customers',
      agent: { name: 'counter', model: { driver: 'scripted', script: [{ tool: 'sql.query', args: { database: 'crm', sql: 'SELECT token FROM grants' } }, { final: 'x' }] } },
      tools: { builtin: ['sql.query'] },
      grants: { tools: ['sql.query'], databases: ['crm'] },
      resources: { databases: { crm: join(dir, 'crm.db') } },
    });
    expect(result.status).toBe('failed');
    // The message names the file it really is, whatever name or link led there.
    expect(result.reason).toMatch(/ERR_RESOURCE_PROTECTED: .*resources\.databases\.crm: .* is a Warden key file \(.*identity\.db\)/);
    expect(result.steps).toEqual([]);
    await expectNoKeyMaterial(result);
  });
});

describe('path rules on the resolved path', () => {
  it('denies fs.read docs/api-key.txt when docs -> secrets and reads inside /workspace/secrets are denied', async () => {
    const workspace = join(sibling, 'links');
    mkdirSync(join(workspace, 'secrets'), { recursive: true });
    writeFileSync(join(workspace, 'secrets', 'api-key.txt'), 'sk-live-123');
    writeFileSync(join(workspace, 'readme.txt'), 'hello');
    symlinkSync('secrets', join(workspace, 'docs'));
    const paths = ['secrets/api-key.txt', 'docs/api-key.txt', './docs/../docs/api-key.txt', 'readme.txt'];
    const result = await env.runTask({
      user: 'alice@example.com',
      intent: 'read the docs',
      agent: { name: 'reader', model: { driver: 'scripted', script: [...paths.map((path) => ({ tool: 'fs.read', args: { path } })), { final: 'done' }] } },
      tools: { builtin: ['fs.read'] },
      grants: { tools: ['fs.read'] },
      policies: ['never read inside /workspace/secrets'],
      limits: { onDeny: 'continue' },
      resources: { workspace },
    });
    expect(result.steps.map((s) => [s.args.path, s.error?.code ?? s.output])).toEqual([
      ['secrets/api-key.txt', 'ERR_POLICY_DENIED'],
      ['docs/api-key.txt', 'ERR_POLICY_DENIED'],
      ['./docs/../docs/api-key.txt', 'ERR_POLICY_DENIED'],
      ['readme.txt', 'hello'],
    ]);
    expect(JSON.stringify(result)).not.toContain('sk-live-123');
  });
});

describe('the path the rules judged is the file opened', () => {
  it('a link swapped while the read waits for approval does not redirect the read', async () => {
    const workspace = join(sibling, 'swap-during-approval');
    mkdirSync(join(workspace, 'public'), { recursive: true });
    mkdirSync(join(workspace, 'secrets'));
    writeFileSync(join(workspace, 'public', 'key.txt'), 'public key text');
    writeFileSync(join(workspace, 'secrets', 'key.txt'), 'sk-live-456');
    symlinkSync('public', join(workspace, 'docs'));
    const store = openApproverStore({ stateDir: TEST_STATE_DIR });
    const { keyFile } = await issueApproverKey(store, { name: `reviewer-${randomUUID().slice(0, 8)}` });
    store.close();
    const task = parseTask(
      {
        user: 'alice@example.com',
        intent: 'read the docs key',
        agent: { name: 'reader', model: { driver: 'scripted', script: [{ tool: 'fs.read', args: { path: 'docs/key.txt' } }, { final: 'done' }] } },
        tools: { builtin: ['fs.read'] },
        grants: { tools: ['fs.read'] },
        policies: ['never read inside /workspace/secrets', 'require approval for fs.read'],
        resources: { workspace },
      },
      'task.yaml',
      REPO_ROOT,
    );
    const handle = await env.start(task);
    let requestId = '';
    await vi.waitFor(
      async () => {
        requestId = (await handle.query(taskStateQuery)).pendingApprovals[0]?.requestId ?? '';
        expect(requestId).not.toBe('');
      },
      { timeout: 60_000, interval: 50 },
    );
    // The reviewer saw (and approves) a read of public/key.txt; meanwhile docs is pointed at secrets.
    renameSync(join(workspace, 'docs'), join(workspace, 'docs-old'));
    symlinkSync('secrets', join(workspace, 'docs'));
    await decideApproval(env.client, { workflowId: handle.workflowId, requestId, approved: true, key: keyFile });
    const result = await followAgentTask(handle);
    expect(result.steps[0]).toMatchObject({ executed: true, output: 'public key text' });
    expect(JSON.stringify(result)).not.toContain('sk-live-456');
  });
});
