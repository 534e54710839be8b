/**
 * Authority handed from a parent to its sub-agents, in real runs: a sub-agent is judged by every
 * pack and rule of its ancestors (the reproduced example: a custom pack's `deny fs.write` and the
 * advanced pack's "sub-agents may not spawn sub-agents"), runs under limits no wider than its
 * parent's, and what a sub-agent that did not complete wrote is discarded, files and rows alike.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskResult } from '../../task/task-run';
import type { Task } from '../../task/task-schema';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';
import { PATCHES_AT_ONCE_2_PATCH, PATCHES_TAKEN_AT_ONCE_2 } from '../../workflows/workflow-patches';

let env: WardenTestEnv;
let dir: string;

beforeAll(async () => {
  env = await startWardenTestEnv();
  dir = mkdtempSync(join(tmpdir(), 'warden-subagent-authority-'));
});
afterAll(async () => env?.close());

const scripted = (name: string, script: unknown[]) => ({ name, model: { driver: 'scripted', script } });

/** The child workflow's own input, as recorded in its history. */
async function childInputOf(workflowId: string): Promise<{ task: Task }> {
  const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
  const payload = history.events?.[0]?.workflowExecutionStartedEventAttributes?.input?.payloads?.[0];
  return JSON.parse(Buffer.from(payload!.data!).toString('utf8')) as { task: Task };
}

describe("a sub-agent is judged by its ancestors' packs and rules", () => {
  let result: TaskResult;
  let workspace: string;

  beforeAll(async () => {
    workspace = join(dir, 'packs-ws');
    mkdirSync(workspace);
    const pack = join(dir, 'mypack');
    mkdirSync(pack);
    writeFileSync(join(pack, 'rules.txt'), 'deny fs.write\n');
    result = await env.runTask(
      {
        user: 'alice@example.com',
        intent: 'write notes, with helpers',
        agent: scripted('writer', [{ tool: 'fs.write', args: { path: 'parent.txt', content: 'p' } }, { spawn: 'kid' }, { final: 'done' }]),
        tools: { builtin: ['fs.write', 'fs.read'] },
        grants: { tools: ['fs.write', 'fs.read'], subagents: ['kid', 'grandkid'] },
        policyPacks: ['advanced', './mypack'],
        limits: { onDeny: 'continue', toolTimeout: '5s', approvalTimeout: '1m' },
        resources: { workspace },
        subagents: {
          kid: {
            intent: 'write kid.txt',
            agent: scripted('kid', [{ tool: 'fs.write', args: { path: 'kid.txt', content: 'k' } }, { spawn: 'grandkid' }, { final: 'kid done' }]),
            tools: { builtin: ['fs.write'] },
            grants: { tools: ['fs.write'], subagents: ['grandkid'] },
            limits: { onDeny: 'continue', toolTimeout: '1h', approvalTimeout: '2h', maxDepth: 10 },
          },
          grandkid: {
            intent: 'write grandkid.txt',
            agent: scripted('grandkid', [{ tool: 'fs.write', args: { path: 'grandkid.txt', content: 'g' } }, { final: 'grandkid done' }]),
            tools: { builtin: ['fs.write'] },
            grants: { tools: ['fs.write'] },
          },
        },
      },
      { baseDir: dir },
    );
  });

  it("denies the parent's and the sub-agent's fs.write by the custom pack", () => {
    expect(result.steps[0]?.error?.code).toBe('ERR_POLICY_DENIED');
    expect(result.steps[0]?.policy?.matched.map((m) => m.sentence)).toContain('deny fs.write');
    const kid = result.children[0]!;
    expect(kid.steps[0]?.tool).toBe('fs.write');
    expect(kid.steps[0]?.error?.code).toBe('ERR_POLICY_DENIED');
    expect(kid.steps[0]?.policy?.matched.map((m) => m.sentence)).toContain('deny fs.write');
  });

  it('denies the sub-agent its own sub-agent (advanced pack)', () => {
    const kid = result.children[0]!;
    expect(kid.steps[1]?.tool).toBe('spawn:grandkid');
    expect(kid.steps[1]?.error?.code).toBe('ERR_POLICY_DENIED');
    expect(kid.steps[1]?.policy?.matched.map((m) => m.sentence)).toContain('sub-agents may not spawn sub-agents');
    expect(kid.children).toEqual([]);
  });

  it('commits nothing and narrows the sub-agent limits to the parent', async () => {
    expect(result.status).toBe('completed');
    expect(existsSync(join(workspace, 'kid.txt'))).toBe(false);
    expect(existsSync(join(workspace, 'parent.txt'))).toBe(false);
    const { task } = await childInputOf(result.children[0]!.workflowId);
    expect(task.limits).toMatchObject({ toolTimeout: '5s', approvalTimeout: '1m', maxDepth: 3 });
    expect(task.policyPacks).toEqual(['advanced', join(dir, 'mypack')]);
  });
});

describe('a sub-agent inherits every limit it does not name (patch warden-subagent-limits-inherited)', () => {
  // None of the parent's limits is the schema's default, so an unnamed limit filled with a default shows.
  const parentLimits = { maxSteps: 120, deadline: '30m', toolTimeout: '90s', toolMemoryMb: 128, onDeny: 'continue', approvalTimeout: '20m', maxDepth: 4 };
  let result: TaskResult;
  let parentHistory: Awaited<ReturnType<ReturnType<WardenTestEnv['client']['workflow']['getHandle']>['fetchHistory']>>;

  beforeAll(async () => {
    const kid = (name: string, limits?: Record<string, unknown>) => ({ intent: `be ${name}`, agent: scripted(name, [{ final: `${name} done` }]), ...(limits === undefined ? {} : { limits }) });
    result = await env.runTask({
      user: 'alice@example.com',
      intent: 'delegate twice',
      agent: scripted('delegator', [{ spawn: 'quiet' }, { spawn: 'named' }, { final: 'done' }]),
      grants: { subagents: ['quiet', 'named'] },
      limits: parentLimits,
      subagents: { quiet: kid('quiet'), named: kid('named', { toolTimeout: '30s' }) },
    });
    parentHistory = await env.client.workflow.getHandle(result.workflowId).fetchHistory();
  });

  it("gives a sub-agent naming no limit every one of its parent's", async () => {
    expect(result.status).toBe('completed');
    const { task } = await childInputOf(result.children[0]!.workflowId);
    expect(task.limits).toMatchObject(parentLimits);
  });

  it("gives a sub-agent naming one limit that one and its parent's for the rest", async () => {
    const { task } = await childInputOf(result.children[1]!.workflowId);
    expect(task.limits).toMatchObject({ ...parentLimits, toolTimeout: '30s' });
  });

  it('takes the patch in the parent, which declares sub-agents, by the at-once marker that stands for it', () => {
    const markers = (parentHistory.events ?? []).filter((e) => e.markerRecordedEventAttributes?.markerName === 'core_patch').map((e) => Buffer.from(e.markerRecordedEventAttributes!.details!['patch-data']!.payloads![0]!.data!).toString('utf8'));
    // A new run records `warden-patches-at-once-2` (workflow-patches.ts PATCHES_TAKEN_AT_ONCE_2) instead of a marker of its own.
    expect(PATCHES_TAKEN_AT_ONCE_2.has('warden-subagent-limits-inherited')).toBe(true);
    expect(markers.some((m) => m.includes(`"${PATCHES_AT_ONCE_2_PATCH}"`))).toBe(true);
    expect(markers.some((m) => m.includes('"warden-subagent-limits-inherited"'))).toBe(false);
  });
});

describe('what a sub-agent that did not complete wrote is discarded', () => {
  it('drops its files from the overlay and undoes its rows, while the parent completes and commits its own', async () => {
    const workspace = join(dir, 'denied-ws');
    mkdirSync(workspace);
    writeFileSync(join(workspace, 'shared.txt'), 'original');
    const dbFile = join(dir, 'denied.db');
    const db = new Database(dbFile);
    db.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT); INSERT INTO items (label) VALUES ('a'), ('b')");
    db.close();
    const result = await env.runTask({
      user: 'alice@example.com',
      intent: 'update the items with a helper',
      agent: scripted('lead', [
        { tool: 'fs.write', args: { path: 'from-parent.txt', content: 'parent' } },
        { spawn: 'kid' },
        { tool: 'fs.read', args: { path: 'shared.txt' } },
        { final: 'done' },
      ]),
      tools: { builtin: ['fs.write', 'fs.read', 'sql.exec', 'http.fetch'] },
      grants: { tools: ['fs.write', 'fs.read', 'sql.exec'], subagents: ['kid'], databases: ['items'] },
      limits: { onDeny: 'continue' },
      resources: { workspace, databases: { items: dbFile } },
      subagents: {
        kid: {
          intent: 'change things, then overreach',
          agent: scripted('kid', [
            { tool: 'fs.write', args: { path: 'from-denied-kid.txt', content: 'kid' } },
            { tool: 'fs.write', args: { path: 'shared.txt', content: 'changed by the kid' } },
            { tool: 'sql.exec', args: { database: 'items', sql: "UPDATE items SET label = 'kid' WHERE id = 1" } },
            { tool: 'http.fetch', args: { url: 'http://127.0.0.1:9/' } },
            { final: 'never' },
          ]),
          tools: { builtin: ['fs.write', 'sql.exec', 'http.fetch'] },
          grants: { tools: ['fs.write', 'sql.exec'], databases: ['items'] },
          limits: { onDeny: 'stop' },
        },
      },
    });
    const kid = result.children[0]!;
    expect(kid.status).toBe('denied');
    expect(kid.steps[3]?.error?.code).toBe('ERR_TOOL_NOT_GRANTED');
    // The parent read the workspace file after the kid ended: the kid's write is gone already.
    expect(result.steps[2]?.output).toBe('original');
    expect(result.status).toBe('completed');
    expect(result.recovery?.committed).toEqual(['from-parent.txt']);
    expect(existsSync(join(workspace, 'from-denied-kid.txt'))).toBe(false);
    expect(readFileSync(join(workspace, 'shared.txt'), 'utf8')).toBe('original');
    expect(readFileSync(join(workspace, 'from-parent.txt'), 'utf8')).toBe('parent');
    const check = new Database(dbFile, { readonly: true });
    expect(check.prepare('SELECT label FROM items ORDER BY id').all()).toEqual([{ label: 'a' }, { label: 'b' }]);
    check.close();
  });
});
