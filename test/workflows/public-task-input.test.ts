/**
 * Attack: a co-tenant on the Temporal frontend starts `agentTask` with the fields only a parent
 * should pass to a child (`identity`, `lineage`). With `identity` given, the workflow skips
 * `beginTask`, which is the only place a worker checks that a task does not hand Warden's own
 * resources to an agent (ERR_RESOURCE_PROTECTED). Any live grant id (they sit in every history
 * the co-tenant can read) then carries a task whose database is the worker's `identity.db`:
 * the agent reads every grant token (bearer secrets) into its tool output and the history.
 *
 * Expected: a task started by a client is checked like any other (or a client cannot pass a
 * parent's fields at all): refused with ERR_RESOURCE_PROTECTED before any tool runs.
 *
 * Held now: the public input is `{ task }`; anything else is a claimed sub-agent handoff, which
 * `beginSubagent` accepts only when it is exactly what a parent delegated (by grant and digest)
 * to that very workflow. The table below is the kind: every way a client may claim a place in
 * another task's tree, on a harmless task, is refused (ERR_DELEGATION_FORGED) before a tool runs.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { issueApproverKey, type ApproverKeyFile } from '../../identity/approval-decision';
import { openApproverStore, type ApproverRecord } from '../../identity/approver-registry';
import { findSecretsIn } from '../../identity/redact';
import { parseTask } from '../../task/load-task-file';
import type { TaskIdentity, TaskResult } from '../../task/task-run';
import { TaskSchema } from '../../task/task-schema';
import type { agentTask } from '../../workflows/agent-task';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { activityResults, startHoldingServer, type HoldingServer } from '../support/attack-kit';

let env: WardenTestEnv;
let server: HoldingServer;
let dir: string;
let harmless: string;
let harmlessDb: string;

beforeAll(async () => {
  env = await startWardenTestEnv();
  server = await startHoldingServer();
  dir = mkdtempSync(join(tmpdir(), 'warden-attack-identity-'));
  harmless = join(dir, 'crm.db');
  harmlessDb = harmless;
  const db = new Database(harmless);
  db.exec('CREATE TABLE leads (id INTEGER PRIMARY KEY, stale INTEGER NOT NULL)');
  for (let i = 0; i < 20; i++) db.prepare('INSERT INTO leads (stale) VALUES (1)').run();
  db.close();
});
afterAll(async () => {
  server?.release();
  await server?.close();
  await env?.close();
});

describe('a client passes a live grant as `identity` to reach the state database', () => {
  let carrierResult: TaskResult;
  let stolen: TaskResult;
  let forged: { record: ApproverRecord; keyFile: ApproverKeyFile };
  const forgedClaims: { name: string; result: TaskResult }[] = [];

  beforeAll(async () => {
    // 1. An ordinary task that passes every check and stays alive on a held fetch.
    const carrier = parseTask(
      {
        user: 'mallory@example.com',
        intent: `fetch http://${server.host}/slow`,
        agent: { name: 'carrier', model: { driver: 'scripted', script: [{ tool: 'http.fetch', args: { url: `http://${server.host}/slow` } }, { final: 'done' }] } },
        tools: { builtin: ['http.fetch', 'sql.query', 'sql.exec'] },
        grants: { tools: ['http.fetch', 'sql.query', 'sql.exec'], hosts: [server.host], databases: ['crm'] },
        resources: { hosts: [server.host], databases: { crm: harmless } },
      },
      'carrier.yaml',
      REPO_ROOT,
    );
    const carrierHandle = await env.start(carrier);
    await server.arrived;
    // 2. Its grant id, as anyone who can read histories sees it.
    const identity = (await activityResults(env.client, carrierHandle.workflowId)).find(
      (r): r is TaskIdentity => typeof r === 'object' && r !== null && 'grantId' in r,
    )!;
    expect(identity).toBeDefined();

    // 3. A task whose database is the worker's credential store, started with that identity.
    forged = await issueApproverKey({ add() {}, get: () => undefined, list: () => [], remove: () => false, close() {} }, { name: `mallory-${randomUUID().slice(0, 8)}` });
    const task = TaskSchema.parse({
      user: 'mallory@example.com',
      intent: 'count the leads',
      agent: {
        name: 'carrier',
        model: {
          driver: 'scripted',
          script: [
            { tool: 'sql.query', args: { database: 'crm', sql: 'SELECT grant_id, token FROM grants LIMIT 3' } },
            { tool: 'sql.exec', args: { database: 'crm', sql: 'INSERT INTO approvers (name, record) VALUES (?, ?)', params: [forged.record.name, JSON.stringify(forged.record)] } },
            { final: 'done' },
          ],
        },
      },
      tools: { builtin: ['sql.query', 'sql.exec'] },
      grants: { tools: ['sql.query', 'sql.exec'], databases: ['crm'] },
      limits: { onDeny: 'continue' },
      resources: { databases: { crm: join(TEST_STATE_DIR, 'identity.db') } },
    });
    const workflowId = `attack-identity-${randomUUID()}`;
    env.workflowIds.push(workflowId);
    const handle = await env.client.workflow.start<typeof agentTask>('agentTask', {
      taskQueue: env.taskQueue,
      workflowId,
      args: [{ task, identity }],
    });
    stolen = await followAgentTask(handle);
    // The kind: every child-only field a client can write, on a task that passes every other check.
    const harmlessTask = { ...task, resources: { databases: { crm: harmlessDb } } };
    const live = { grantId: identity.grantId, depth: 1, lineage: [carrierHandle.workflowId], deadlineAt: Date.now() + 60_000 };
    const claims: [string, Record<string, unknown>][] = [
      ['a live grant as identity', { identity }],
      ['a live grant as the handoff', { handoff: live }],
      ['a live grant as identity, with a root\'s depth and lineage', { identity, depth: 0, lineage: [] }],
      ['an unknown grant', { handoff: { ...live, grantId: 'g-forged' } }],
      ['older top-level fields', { depth: 1, lineage: [carrierHandle.workflowId], deadlineAt: live.deadlineAt }],
    ];
    for (const [name, fields] of claims) {
      const id = `attack-identity-${randomUUID()}`;
      env.workflowIds.push(id);
      const started = await env.client.workflow.start<typeof agentTask>('agentTask', { taskQueue: env.taskQueue, workflowId: id, args: [{ task: harmlessTask, ...fields } as never] });
      forgedClaims.push({ name, result: await followAgentTask(started) });
    }
    server.release();
    carrierResult = await followAgentTask(carrierHandle);
  });

  it('is refused before any tool runs, like the same task started without `identity`', () => {
    expect(stolen.reason ?? '').toMatch(/ERR_RESOURCE_PROTECTED/);
    expect(stolen.steps.filter((s) => s.executed)).toEqual([]);
  });

  it('refuses every handoff a client writes (ERR_DELEGATION_FORGED) before any tool runs', () => {
    expect(forgedClaims.map((c) => c.name)).toHaveLength(5);
    for (const { name, result } of forgedClaims) {
      expect(result.status, name).not.toBe('completed');
      expect(result.reason ?? '', name).toMatch(/ERR_DELEGATION_FORGED/);
      expect(result.steps.filter((s) => s.executed), name).toEqual([]);
    }
  });

  it('puts no grant token into the tool output, the result or the history', async () => {
    expect(findSecretsIn(stolen)).toEqual([]);
    const history = await env.client.workflow.getHandle(stolen.workflowId).fetchHistory();
    expect(findSecretsIn(history)).toEqual([]);
  });

  // Held today only because the SQL broker refuses WITHOUT ROWID tables (every identity.db table is one).
  it('registers no approver the agent chose', () => {
    const store = openApproverStore({ stateDir: TEST_STATE_DIR });
    try {
      expect(store.get(forged.record.name)).toBeUndefined();
    } finally {
      store.close();
    }
    expect(carrierResult.workflowId).toBeDefined();
  });
});
