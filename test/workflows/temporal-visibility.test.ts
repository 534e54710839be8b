/**
 * What the Temporal UI shows of agent tasks, read back through the same APIs the UI uses
 * (describe, list, history) on the real server:
 * - search attributes: who (`WardenUser`), which agent and model, which packs, and how it ended
 *   (`WardenStatus`), filterable with a list query;
 * - a static summary and details per workflow (sub-agents too);
 * - a summary on each activity, child workflow and the approval wait (`fs.write out/report.md`,
 *   `approval: sql.exec 42 rows`);
 * - a task that did not complete closes as Failed (`ERR_TASK_<STATUS>`), never as a clean
 *   Completed, and still hands its result to the client and to a parent.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { approveCommand } from '../../cli/commands/approvals';
import { approversCommand } from '../../cli/commands/approvers';
import type { CliIo } from '../../cli/cli-io';
import { agentTaskResult, followAgentTask, startAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { ensureSearchAttributes, searchAttributeCreateCommands, startDevSearchAttributeFlags } from '../../temporal/search-attribute-registry';
import { taskStateQuery } from '../../workflows/definitions';
import { WARDEN_SEARCH_ATTRIBUTES } from '../../workflows/search-attributes';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

const EventType = temporal.api.enums.v1.EventType;
let env: WardenTestEnv;
let workspace: string;

beforeAll(async () => {
  env = await startWardenTestEnv();
  workspace = await mkdtemp(join(tmpdir(), 'warden-visibility-'));
  await writeFile(join(workspace, 'notes.txt'), 'one two');
});
afterAll(async () => env?.close());

const { user, agent, model, packs, status } = WARDEN_SEARCH_ATTRIBUTES;

function task(document: Record<string, unknown>) {
  return parseTask({ user: 'gil@example.com', intent: 'write the report', resources: { workspace }, ...document }, 'task.yaml', REPO_ROOT);
}

/** Summaries the history holds, by the kind of event that carries them. */
async function summariesOf(handle: Pick<WorkflowHandle, 'fetchHistory'>): Promise<Record<string, string[]>> {
  const history = await handle.fetchHistory();
  const out: Record<string, string[]> = {};
  for (const event of history.events ?? []) {
    const summary = event.userMetadata?.summary;
    if (summary === null || summary === undefined) continue;
    const kind = EventType[event.eventType ?? 0] ?? 'unknown';
    (out[kind] ??= []).push(defaultPayloadConverter.fromPayload<string>(summary));
  }
  return out;
}

describe('agent tasks in the Temporal UI', () => {
  let handle: WorkflowHandle;
  let result: TaskResult;

  beforeAll(async () => {
    handle = await env.start(
      task({
        agent: {
          name: 'scribe',
          model: {
            driver: 'scripted',
            id: 'scripted-scribe',
            script: [{ tool: 'fs.write', args: { path: 'out/report.md', content: 'two words' } }, { spawn: 'reviewer' }, { final: 'done' }],
          },
        },
        tools: { builtin: ['fs.write', 'fs.list'] },
        grants: { tools: ['fs.write', 'fs.list'], subagents: ['reviewer'] },
        policyPacks: ['foundation', 'enterprise'],
        subagents: {
          reviewer: {
            intent: 'look at the report',
            agent: { name: 'reviewer', model: { driver: 'scripted', id: 'scripted-reviewer', script: [{ tool: 'fs.list', args: { path: 'out' } }, { final: 'seen' }] } },
            tools: { builtin: ['fs.list'] },
            grants: { tools: ['fs.list'] },
          },
        },
      }),
    );
    result = await followAgentTask(handle);
  }, 120_000);

  it('closes a completed task as Completed, with its search attributes and WardenStatus completed', async () => {
    expect(result.status).toBe('completed');
    const description = await handle.describe();
    expect(description.status.name).toBe('COMPLETED');
    const attributes = description.typedSearchAttributes;
    expect([attributes.get(user), attributes.get(agent), attributes.get(model), attributes.get(packs), attributes.get(status)]).toEqual([
      'gil@example.com',
      'scribe',
      'scripted-scribe',
      ['foundation', 'enterprise'],
      'completed',
    ]);
  });

  it('gives the task and its sub-agent a summary and details', async () => {
    const description = await handle.describe();
    expect(await description.staticSummary()).toBe('scribe for gil@\u200bexample.com: write the report');
    const details = await description.staticDetails();
    expect(details).toContain('**Agent** `scribe` acting for **gil@\u200bexample.com**');
    expect(details).toContain('- granted tools: `fs.write`, `fs.list`');
    expect(details).toContain('- policy packs: `foundation`, `enterprise`');
    const child = await env.client.workflow.getHandle(`${handle.workflowId}/reviewer-1`).describe();
    expect(await child.staticSummary()).toBe('reviewer for gil@\u200bexample.com: look at the report');
    expect(await child.staticDetails()).toContain(`(sub-agent of \`${handle.workflowId}\`)`);
    expect(child.typedSearchAttributes.get(agent)).toBe('reviewer');
    expect(child.typedSearchAttributes.get(status)).toBe('completed');
  });

  it('names every activity and the child workflow in the history', async () => {
    const summaries = await summariesOf(handle);
    expect(summaries.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).toEqual([
      'grant: scribe for gil@example.com',
      'prepare workspace overlay',
      'chat scripted-scribe, turn 0',
      'fs.write out/report.md',
      'chat scripted-scribe, turn 1',
      'delegate to reviewer',
      'chat scripted-scribe, turn 2',
      'commit workspace changes',
      'revoke grant (completed)',
    ]);
    expect(summaries.EVENT_TYPE_START_CHILD_WORKFLOW_EXECUTION_INITIATED).toEqual(['reviewer for gil@\u200bexample.com: look at the report']);
    const child = await summariesOf(env.client.workflow.getHandle(`${handle.workflowId}/reviewer-1`));
    expect(child.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).toContain('fs.list out');
    // The deadline timers are named too.
    expect(new Set(summaries.EVENT_TYPE_TIMER_STARTED)).toEqual(new Set(['deadline 10m']));
  });

  it('finds tasks by user, agent and status with a list query', async () => {
    await vi.waitFor(
      async () => {
        const found: string[] = [];
        for await (const execution of env.client.workflow.list({ query: `WardenUser = "gil@example.com" AND WardenAgent = "scribe" AND WardenStatus = "completed"` })) found.push(execution.workflowId);
        expect(found).toContain(handle.workflowId);
      },
      { timeout: 60_000, interval: 250 },
    );
  });
});

describe('tasks that did not complete', () => {
  it('a denied task closes as Failed with ERR_TASK_DENIED, WardenStatus denied, and its result intact', async () => {
    const handle = await env.start(
      task({
        agent: { name: 'intruder', model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: 'x', content: 'y' } }, { final: 'never' }] } },
        tools: { builtin: ['fs.write', 'fs.read'] },
        grants: { tools: ['fs.read'] },
      }),
    );
    const failure = await handle.result().then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(failure).toBeInstanceOf(WorkflowFailedError);
    expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'ERR_TASK_DENIED', nonRetryable: true, category: 'BENIGN' });
    expect((failure as WorkflowFailedError).cause?.message).toMatch(/^denied: /);
    const result = await agentTaskResult(handle);
    expect(result).toMatchObject({ status: 'denied', steps: [{ tool: 'fs.write', decision: 'deny', error: { code: 'ERR_TOOL_NOT_GRANTED' } }] });
    const description = await handle.describe();
    expect(description.status.name).toBe('FAILED');
    expect(description.typedSearchAttributes.get(status)).toBe('denied');
    await vi.waitFor(
      async () => {
        const found: string[] = [];
        for await (const e of env.client.workflow.list({ query: `ExecutionStatus = "Failed" AND WardenStatus = "denied" AND WardenAgent = "intruder"` })) found.push(e.workflowId);
        expect(found).toContain(handle.workflowId);
      },
      { timeout: 60_000, interval: 250 },
    );
  });

  it.each([
    ['failed', 'ERR_TASK_FAILED', { driver: 'scripted', script: [{ tool: 'fs.read', args: { path: 'notes.txt' } }] }, {}],
    ['limit_exceeded', 'ERR_TASK_LIMIT_EXCEEDED', { driver: 'scripted', script: [{ tool: 'fs.read', args: { path: 'notes.txt' } }, { tool: 'fs.read', args: { path: 'notes.txt' } }, { final: 'x' }] }, { maxSteps: 1 }],
    ['timed_out', 'ERR_TASK_TIMED_OUT', { driver: 'scripted', script: [{ tool: 'busy', args: {} }, { final: 'x' }] }, { deadline: '1s', toolTimeout: '10s' }],
  ])('a task ending %s closes as Failed with %s', async (ended, type, agentModel, limits) => {
    const busy = { name: 'busy', description: 'busy for a while', source: 'const end = Date.now() + 4000; while (Date.now() < end) {} return 1;' };
    const handle = await env.start(task({ agent: { name: 'worker', model: agentModel }, tools: { builtin: ['fs.read'], custom: [busy] }, grants: { tools: ['fs.read', 'busy'] }, limits }));
    await expect(handle.result()).rejects.toMatchObject({ cause: { type } });
    expect((await agentTaskResult(handle)).status).toBe(ended);
    const description = await handle.describe();
    expect([description.status.name, description.typedSearchAttributes.get(status)]).toEqual(['FAILED', ended]);
  });

  it('a sub-agent that is denied closes as Failed, and its parent goes on with the sub-agent\'s result', async () => {
    const handle = await env.start(
      task({
        agent: { name: 'lead', model: { driver: 'scripted', script: [{ spawn: 'helper' }, { final: 'handled' }] } },
        tools: { builtin: ['fs.read', 'fs.write'] },
        grants: { tools: ['fs.read', 'fs.write'], subagents: ['helper'] },
        subagents: {
          helper: {
            intent: 'help',
            agent: { name: 'helper', model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: 'x', content: 'y' } }, { final: 'never' }] } },
            tools: { builtin: ['fs.write', 'fs.read'] },
            grants: { tools: ['fs.read'] },
          },
        },
      }),
    );
    const result = await followAgentTask(handle);
    expect(result.status).toBe('completed');
    expect(result.children[0]).toMatchObject({ status: 'denied', agent: 'helper', steps: [{ decision: 'deny' }] });
    expect(result.steps[0]).toMatchObject({ executed: true, output: { status: 'denied' }, error: { code: 'ERR_SUBAGENT_FAILED' } });
    const child = await env.client.workflow.getHandle(`${handle.workflowId}/helper-0`).describe();
    expect([child.status.name, child.typedSearchAttributes.get(status)]).toEqual(['FAILED', 'denied']);
  });

  it('in a namespace without the search attributes, a task runs and closes the same, without them', async () => {
    const handle = await startAgentTask(
      env.client,
      task({ agent: { name: 'plain', model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: 'x', content: 'y' } }] } }, tools: { builtin: ['fs.write'] }, grants: { tools: [] } }),
      { taskQueue: env.taskQueue, workflowId: `plain-${Date.now()}`, searchAttributes: false },
    );
    env.workflowIds.push(handle.workflowId);
    expect((await agentTaskResult(handle)).status).toBe('denied');
    const description = await handle.describe();
    expect(description.status.name).toBe('FAILED');
    expect(description.typedSearchAttributes.get(status)).toBeUndefined();
    expect(await description.staticSummary()).toBe('plain for gil@\u200bexample.com: write the report');
  });
});

describe('the approval wait', () => {
  it('is a named timer: approval: sql.exec 42 rows', async () => {
    const dbFile = join(workspace, `crm-${Date.now()}.db`);
    const db = new Database(dbFile);
    db.exec('CREATE TABLE leads (id INTEGER PRIMARY KEY, stale INTEGER NOT NULL)');
    const insert = db.prepare('INSERT INTO leads (stale) VALUES (?)');
    for (let i = 0; i < 50; i++) insert.run(i < 42 ? 1 : 0);
    db.close();
    const handle = await env.start(
      task({
        agent: { name: 'janitor', model: { driver: 'scripted', script: [{ tool: 'sql.exec', args: { database: 'crm', sql: 'DELETE FROM leads WHERE stale = 1' } }, { final: 'cleaned' }] } },
        tools: { builtin: ['sql.exec'] },
        grants: { tools: ['sql.exec'], databases: ['crm'] },
        resources: { databases: { crm: dbFile } },
      }),
    );
    await vi.waitFor(async () => expect((await handle.query(taskStateQuery)).pendingApprovals).toHaveLength(1), { timeout: 30_000, interval: 100 });
    // A registered approver decides, as `warden approve` does (unique per run: the registry outlives runs).
    const approver = `sec-lead-${randomUUID().slice(0, 8)}`;
    const keyFile = join(await mkdtemp(join(tmpdir(), 'warden-approver-')), `${approver}.json`);
    const out: string[] = [];
    const io: CliIo = {
      stdout: (t) => void out.push(t),
      stderr: (t) => void out.push(t),
      env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: testTemporalAddress().address.split(':').pop(), WARDEN_APPROVER_KEY: keyFile },
    };
    expect(await approversCommand(['add', approver, '--out', keyFile], io), out.join('')).toBe(0);
    const pendingId = (await handle.query(taskStateQuery)).pendingApprovals[0]!.requestId;
    expect(await approveCommand([handle.workflowId, pendingId], io), out.join('')).toBe(0);
    expect((await followAgentTask(handle)).status).toBe('completed');
    const summaries = await summariesOf(handle);
    expect(summaries.EVENT_TYPE_TIMER_STARTED).toContain('approval: sql.exec 42 rows');
    expect(summaries.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED).toContain('sql.exec crm: DELETE FROM leads');
  });
});

describe('registering the search attributes', () => {
  it('registers idempotently on the server, and documents the flags and cluster commands', async () => {
    const { address, namespace } = testTemporalAddress();
    const { Connection } = await import('@temporalio/client');
    const connection = await Connection.connect({ address });
    try {
      // The embedded server has them already (start-dev flags, or registration on reuse).
      expect(await ensureSearchAttributes(connection, namespace)).toEqual({ added: [], present: ['WardenUser', 'WardenAgent', 'WardenModel', 'WardenPacks', 'WardenStatus'] });
    } finally {
      await connection.close();
    }
    expect(startDevSearchAttributeFlags()).toEqual([
      '--search-attribute', 'WardenUser=Keyword',
      '--search-attribute', 'WardenAgent=Keyword',
      '--search-attribute', 'WardenModel=Keyword',
      '--search-attribute', 'WardenPacks=KeywordList',
      '--search-attribute', 'WardenStatus=Keyword',
    ]);
    expect(searchAttributeCreateCommands('prod')[4]).toBe('temporal operator search-attribute create --namespace prod --name WardenStatus --type Keyword');
  });
});
