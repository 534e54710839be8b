/**
 * Data-plane affinity on the ordinary loop (issue 12, item 2): two real `warden worker` processes
 * with separate state folders (what two machines look like) on one Temporal server and one
 * PostgreSQL database. Tasks without `dataFlow`, with file writes, SQL and sub-agents (and one
 * with a stdio MCP server), must all COMPLETE with every write, each task tree's data-plane
 * activities on the worker that prepared it (before affinity, a task whose calls landed on both
 * workers failed closed with ERR_OVERLAY_MISSING and rolled back). A worker SIGKILLed mid-task:
 * the task fails with ERR_DATA_PLANE_LOST, its SQL is undone on the other worker, its workspace is
 * as it was, and `warden run` exits 1 saying so; the same with a sub-agent's call in flight (the
 * sub-agent and its parent both fail that way and roll back). A starter cannot name a data-plane queue.
 *
 * Which worker ran each activity, and on which queue it was scheduled, is read from the histories.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkflowFailedError, type Client, type Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditCommand } from '../../cli/commands/audit';
import { followAgentTask, startAgentTask } from '../../client/start-agent-task';
import { ledgerPaths } from '../../custody/ledger';
import { parseTask } from '../../task/load-task-file';
import type { StepRecord, TaskResult } from '../../task/task-run';
import { connectClient } from '../../temporal/connect';
import { stopChildren } from '../support/child-output';
import { activitiesOf as activitiesOfWorkflow, type ActivityRun } from '../attacks/fixtures/two-worker-kit';
import { insert, makeLedgerWorkspace, write, type LedgerWorkspace } from '../support/ledger-workspace';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { replayAllRuns } from '../support/replay-runs';
import { waitForTaskState } from '../support/task-kit';
import { testTemporalConfig, wardenProcessEnv } from '../support/temporal';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';

const TASKS = 20;
/** The activities that touch a task tree's overlay, sandbox host or MCP servers. */
const DATA_PLANE = new Set(['runTool', 'commitTask', 'compensate', 'restorePreTaskSnapshot', 'openToolSources', 'closeToolSources']);

let pg: TestDatabase;
let client: Client;
let connection: Connection;
const dirs: string[] = [];
const taskQueue = `warden-affinity-${randomUUID()}`;
interface RunningWorker {
  name: string;
  child: ChildProcess;
  stateDir: string;
}
const workers: RunningWorker[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

async function startWorker(name: string): Promise<void> {
  const stateDir = tempDir(`warden-affinity-${name}-`);
  mkdirSync(join(TEST_STATE_DIR, 'cache'), { recursive: true });
  symlinkSync(join(TEST_STATE_DIR, 'cache'), join(stateDir, 'cache'));
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), 'worker', '--task-queue', taskQueue], {
    // The stdio MCP server's package comes from this repository's node_modules, as in mcp-tools.test.ts.
    env: wardenProcessEnv(stateDir, { WARDEN_DATABASE_URL: pg.url, WARDEN_WORKER_ID: name, WARDEN_MCP_PACKAGES: REPO_ROOT }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  workers.push({ name, child, stateDir });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const read = (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes('worker polling')) resolve();
    };
    child.stdout!.on('data', read);
    child.stderr!.on('data', read);
    child.once('exit', (code) => reject(new Error(`worker ${name} exited ${code}:\n${log}`)));
  });
}

type Fixture = LedgerWorkspace;

function fixture(name: string): Fixture {
  return makeLedgerWorkspace(tempDir(`warden-affinity-${name}-`));
}

/** The files and rows task `i` must leave: every third has a sub-agent (which writes kid.txt and a row). */
function expectedOf(i: number): { files: Record<string, string>; rows: string[] } {
  if (i === MCP_TASK) return { files: MCP_FILES, rows: [] };
  if (i % 3 === 0) return { files: { 'a.txt': `a${i}`, 'c.txt': `c${i}`, 'kid.txt': `kid${i}` }, rows: [`t${i}`, `kid${i}`] };
  return { files: { 'a.txt': `a${i}`, 'b.txt': `b${i}` }, rows: [`t${i}`] };
}

function taskDocument(i: number, f: Fixture) {
  const withKid = i % 3 === 0;
  const script = withKid
    ? [write('a.txt', `a${i}`), insert(`t${i}`), { spawn: 'kid' }, write('c.txt', `c${i}`), { final: 'done' }]
    : [write('a.txt', `a${i}`), insert(`t${i}`), write('b.txt', `b${i}`), { final: 'done' }];
  return {
    user: 'ops@example.com',
    intent: `record run ${i}`,
    agent: { name: 'recorder', model: { driver: 'scripted', script } },
    tools: { builtin: ['fs.write', 'sql.exec'] },
    grants: { tools: ['fs.write', 'sql.exec'], databases: ['ledger'], ...(withKid ? { subagents: ['kid'] } : {}) },
    limits: { toolTimeout: '60s', deadline: '10m' },
    resources: { workspace: f.workspace, databases: { ledger: f.dbFile } },
    ...(withKid
      ? {
          subagents: {
            kid: {
              intent: 'write kid.txt and a row',
              agent: { name: 'kid', model: { driver: 'scripted', script: [write('kid.txt', `kid${i}`), insert(`kid${i}`), { final: 'kid done' }] } },
              tools: { builtin: ['fs.write', 'sql.exec'] },
              grants: { tools: ['fs.write', 'sql.exec'], databases: ['ledger'] },
            },
          },
        }
      : {}),
  };
}

/** One task with a stdio MCP server (its process lives on the data plane's worker) writing beside a built-in call. */
const MCP_TASK = TASKS;
const MCP_FILES = { 'a.txt': 'a by fs.write', 'mcp.txt': 'by the MCP server' };

function mcpTaskDocument(f: Fixture) {
  return {
    user: 'ops@example.com',
    intent: 'write a note through an MCP server',
    agent: {
      name: 'scribe',
      model: {
        driver: 'scripted',
        script: [write('a.txt', MCP_FILES['a.txt']), { tool: 'files.write_file', args: { path: '/workspace/mcp.txt', content: MCP_FILES['mcp.txt'] } }, { final: 'done' }],
      },
    },
    tools: { builtin: ['fs.write'], mcp: { files: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/workspace'] } } },
    grants: { tools: ['fs.write', 'files.write_file'] },
    limits: { toolTimeout: '60s', deadline: '10m' },
    resources: { workspace: f.workspace },
  };
}

/** Each activity of a workflow (the attack kit's reader): its type, queue and the worker that started it. */
const activitiesOf = (workflowId: string): Promise<ActivityRun[]> => activitiesOfWorkflow(client, workflowId);

/** The activities of a task tree (the root and every sub-agent). */
async function treeActivities(result: TaskResult): Promise<ActivityRun[]> {
  const own = await activitiesOf(result.workflowId);
  const kids = await Promise.all(result.children.map((child) => treeActivities(child as TaskResult)));
  return [...own, ...kids.flat()];
}

function allSteps(result: TaskResult): StepRecord[] {
  return [...result.steps, ...result.children.flatMap((child) => allSteps(child as TaskResult))];
}

function filesOf(workspace: string): Record<string, string> {
  return Object.fromEntries(readdirSync(workspace).map((name) => [name, readFileSync(join(workspace, name), 'utf8')]));
}

interface Run {
  i: number;
  f: Fixture;
  result: TaskResult;
  activities: ActivityRun[];
}
const runs: Run[] = [];

beforeAll(async () => {
  pg = await createTestDatabase();
  await Promise.all([startWorker('worker-a'), startWorker('worker-b')]);
  ({ client, connection } = await connectClient(testTemporalConfig()));
  const started = await Promise.all(
    Array.from({ length: TASKS }, async (_, i) => {
      const f = fixture(`t${i}`);
      const handle = await startAgentTask(client, parseTask(taskDocument(i, f), 'affinity.yaml', REPO_ROOT), { taskQueue, workflowId: `affinity-${i}-${randomUUID()}` });
      return { i, f, handle };
    }),
  );
  const mcpFixture = fixture('mcp');
  started.push({ i: MCP_TASK, f: mcpFixture, handle: await startAgentTask(client, parseTask(mcpTaskDocument(mcpFixture), 'affinity-mcp.yaml', REPO_ROOT), { taskQueue, workflowId: `affinity-mcp-${randomUUID()}` }) });
  for (const { i, f, handle } of started) {
    const result = await followAgentTask(handle);
    runs.push({ i, f, result, activities: await treeActivities(result) });
  }
}, 900_000);

afterAll(async () => {
  await connection?.close();
  await stopChildren(workers.map((w) => w.child));
  await pg?.drop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('two workers, the ordinary loop, data-plane affinity', () => {
  it('every task completes with every write: 0 lost writes, 0 credential errors', () => {
    let lostWrites = 0;
    for (const { i, f } of runs) {
      const { files, rows } = expectedOf(i);
      const have = filesOf(f.workspace);
      for (const [name, content] of Object.entries(files)) if (have[name] !== content) lostWrites += 1;
      const got = f.rows();
      for (const row of rows) if (!got.includes(row)) lostWrites += 1;
    }
    const credentialErrors = runs.flatMap((r) => allSteps(r.result)).filter((s) => s.error?.code.startsWith('ERR_CREDENTIAL') === true);
    const completed = runs.filter((r) => r.result.status === 'completed').length;
    process.stderr.write(`affinity, two workers: ${completed} of ${runs.length} tasks completed, ${lostWrites} lost writes, ${credentialErrors.length} credential errors\n`);
    expect(runs.map((r) => [r.i, r.result.status, r.result.reason])).toEqual(runs.map((r) => [r.i, 'completed', undefined]));
    expect(credentialErrors).toEqual([]);
    expect(lostWrites).toBe(0);
    for (const { i, f, result } of runs) {
      expect(filesOf(f.workspace)).toEqual(expectedOf(i).files);
      expect(f.rows().sort()).toEqual([...expectedOf(i).rows].sort());
      expect([...(result.recovery?.committed ?? [])].sort()).toEqual(Object.keys(expectedOf(i).files).sort());
      expect(allSteps(result).filter((s) => s.error !== undefined)).toEqual([]);
    }
  });

  it("each task tree's data-plane activities ran on the worker that prepared it, scheduled on its own queue", () => {
    const holders = new Set<string>();
    for (const { result, activities } of runs) {
      const prepared = activities.find((a) => a.type === 'prepareTask')!;
      const dataPlane = activities.filter((a) => DATA_PLANE.has(a.type));
      // Sub-agents' calls included: the tree shares one overlay.
      expect(dataPlane.filter((a) => a.type === 'runTool').length).toBeGreaterThanOrEqual(2);
      expect(new Set(dataPlane.map((a) => a.identity)), result.workflowId).toEqual(new Set([prepared.identity]));
      const queues = new Set(dataPlane.map((a) => a.queue));
      expect(queues.size, result.workflowId).toBe(1);
      const queue = [...queues][0]!;
      expect(queue).toMatch(new RegExp(`^${taskQueue}@worker-[ab]$`));
      holders.add(queue);
    }
    // The shared queue spread the tasks over both workers.
    expect(holders.size).toBe(2);
    // The MCP server was opened and closed where its calls ran.
    const mcp = runs.find((r) => r.i === MCP_TASK)!.activities;
    expect(mcp.filter((a) => a.type === 'openToolSources' || a.type === 'closeToolSources').map((a) => a.type).sort()).toEqual(['closeToolSources', 'openToolSources']);
  });

  it('the custody records of both workers are one ledger that verifies, with every task in it', async () => {
    const io = { out: '', err: '', stdout: (t: string) => void (io.out += t), stderr: (t: string) => void (io.err += t), env: { WARDEN_DATABASE_URL: pg.url, WARDEN_STATE_DIR: workers[0]!.stateDir } };
    const keys = workers.flatMap((w) => ['--keys', ledgerPaths({ stateDir: w.stateDir }).keyDir]);
    expect(await auditCommand(['verify', '--json', ...keys], io), io.err).toBe(0);
    expect((JSON.parse(io.out) as { ok: boolean }).ok).toBe(true);
    for (const { result } of runs.slice(0, 4)) {
      const task = { ...io, out: '', stdout: (t: string) => void (task.out += t) };
      expect(await auditCommand(['verify', '--task', result.workflowId, '--json', ...keys], task)).toBe(0);
    }
  });

  it('a starter cannot name a data-plane queue: not in a plain start, not in a forged handoff', async () => {
    const f = fixture('forged');
    const task = parseTask(taskDocument(1, f), 'forged.yaml', REPO_ROOT);
    const victim = `${taskQueue}@worker-a`;
    // A plain start with a queue of its choosing: refused before anything runs.
    const plain = client.workflow.start('agentTask', { taskQueue, workflowId: `affinity-forged-plain-${randomUUID()}`, args: [{ task, dataPlaneQueue: victim }] });
    await expect((await plain).result()).rejects.toThrow(WorkflowFailedError);
    // A handoff naming another task's worker, with a grant id of a real sub-agent: its signature does not cover it.
    const kid = runs.find((r) => r.i % 3 === 0)!.result.children[0]!;
    const grantId = kid.identity!.grantId;
    const workflowId = `affinity-forged-handoff-${randomUUID()}`;
    const handle = await client.workflow.start('agentTask', {
      taskQueue,
      workflowId,
      args: [{ task, handoff: { grantId, depth: 1, lineage: [runs[0]!.result.workflowId], deadlineAt: Date.now() + 600_000, dataPlane: { taskQueue: victim, startTimeoutSeconds: 30 } } }],
    });
    const outcome = await followAgentTask(handle).catch((error: unknown) => error);
    expect(JSON.stringify(outcome instanceof Error ? outcome.message : outcome)).toMatch(/ERR_DELEGATION_FORGED|ERR_CREDENTIAL_REVOKED|ERR_CREDENTIAL_GRANT_UNKNOWN/);
    const activities = await activitiesOf(workflowId);
    expect(activities.filter((a) => a.queue === victim)).toEqual([]);
    expect(activities.filter((a) => DATA_PLANE.has(a.type))).toEqual([]);
    expect(filesOf(f.workspace)).toEqual({});
  }, 300_000);

  it('the worker holding a task is SIGKILLed mid-task: ERR_DATA_PLANE_LOST, rolled back on the other worker, `warden run` exits 1', async () => {
    const f = fixture('killed');
    writeFileSync(join(f.workspace, 'keep.txt'), 'as it was');
    const doc = {
      user: 'ops@example.com',
      intent: 'record, then wait',
      agent: { name: 'recorder', model: { driver: 'scripted', script: [write('a.txt', 'before the crash'), insert('killed'), { tool: 'wait-for-go', args: {} }, write('b.txt', 'never'), { final: 'never' }] } },
      tools: {
        builtin: ['fs.write', 'fs.read', 'sql.exec'],
        custom: [{ name: 'wait-for-go', description: 'waits for go.txt', capabilities: ['fs.read'], source: "for (;;) { try { return warden.fs.read('go.txt'); } catch (e) {} }" }],
      },
      grants: { tools: ['fs.write', 'fs.read', 'sql.exec', 'wait-for-go'], databases: ['ledger'] },
      limits: { toolTimeout: '120s', deadline: '15m' },
      resources: { workspace: f.workspace, databases: { ledger: f.dbFile } },
    };
    writeFileSync(join(f.dir, 'task.json'), JSON.stringify(doc));
    const workflowId = `affinity-killed-${randomUUID()}`;
    const cli = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), 'run', join(f.dir, 'task.json'), '--no-worker', '--task-queue', taskQueue, '--workflow-id', workflowId], {
      env: wardenProcessEnv(join(f.dir, 'state'), { WARDEN_DATABASE_URL: pg.url }),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    cli.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    cli.stderr!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => cli.once('exit', (code) => resolve(code)));
    let handle = client.workflow.getHandle(workflowId);
    for (let i = 0; i < 1200; i += 1) {
      if ((await handle.describe().catch(() => undefined)) !== undefined) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    handle = client.workflow.getHandle(workflowId);
    await waitForTaskState(handle, (s) => s.steps.length >= 3 && s.steps[1]!.executed, 6000);
    const waiting = (await activitiesOf(workflowId)).filter((a) => a.type === 'runTool');
    const holderQueue = waiting[waiting.length - 1]!.queue;
    // Before affinity, calls went to the shared queue: no worker holds the task.
    const holder = workers.find((w) => holderQueue.endsWith(`@${w.name}`));
    if (holder === undefined) throw new Error(`the task's calls went to ${holderQueue}, no worker's own queue`);
    const exit = new Promise((resolve) => holder.child.once('exit', resolve));
    holder.child.kill('SIGKILL');
    await exit;
    const code = await exited;
    const result = await followAgentTask(handle);
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/^ERR_DATA_PLANE_LOST: /);
    expect(code, output).toBe(1);
    expect(output).toContain('ERR_DATA_PLANE_LOST');
    // Rolled back: the workspace as it was, the row undone from the shared journal.
    expect(filesOf(f.workspace)).toEqual({ 'keep.txt': 'as it was' });
    expect(f.rows()).toEqual([]);
    expect(result.recovery?.committed).toBeUndefined();
    const undo = result.recovery?.rolledBack.find((r) => r.kind === 'sql-undo');
    expect(undo?.status).toBe('done');
    // The compensations ran on the survivor, from the shared queue.
    const survivor = workers.find((w) => w !== holder)!;
    const compensations = (await activitiesOf(workflowId)).filter((a) => a.type === 'compensate');
    expect(compensations.length).toBeGreaterThan(0);
    for (const c of compensations.filter((c) => c.queue === taskQueue)) expect(c.identity).not.toBe('');
    expect(compensations.some((c) => c.queue === taskQueue)).toBe(true);
    workers.splice(workers.indexOf(holder), 1);
    expect(survivor.child.exitCode).toBeNull();
  }, 600_000);

  it("the worker holding a sub-agent's call is SIGKILLed: the sub-agent and its parent fail with ERR_DATA_PLANE_LOST, and both roll back", async () => {
    await startWorker('worker-c');
    const f = fixture('kid-killed');
    writeFileSync(join(f.workspace, 'keep.txt'), 'as it was');
    const waitForGo = { name: 'wait-for-go', description: 'waits for go.txt', capabilities: ['fs.read'], source: "for (;;) { try { return warden.fs.read('go.txt'); } catch (e) {} }" };
    const doc = {
      user: 'ops@example.com',
      intent: 'record, then have a helper wait',
      agent: { name: 'recorder', model: { driver: 'scripted', script: [write('a.txt', 'by the parent'), insert('parent'), { spawn: 'kid' }, { final: 'never' }] } },
      tools: { builtin: ['fs.write', 'fs.read', 'sql.exec'], custom: [waitForGo] },
      grants: { tools: ['fs.write', 'fs.read', 'sql.exec', 'wait-for-go'], databases: ['ledger'], subagents: ['kid'] },
      limits: { toolTimeout: '120s', deadline: '15m' },
      resources: { workspace: f.workspace, databases: { ledger: f.dbFile } },
      subagents: {
        kid: {
          intent: 'record and wait',
          agent: { name: 'kid', model: { driver: 'scripted', script: [write('kid.txt', 'by the kid'), insert('kid'), { tool: 'wait-for-go', args: {} }, { final: 'never' }] } },
          tools: { builtin: ['fs.write', 'fs.read', 'sql.exec'], custom: [waitForGo] },
          grants: { tools: ['fs.write', 'fs.read', 'sql.exec', 'wait-for-go'], databases: ['ledger'] },
        },
      },
    };
    const workflowId = `affinity-kid-killed-${randomUUID()}`;
    // The start timeout reaches the sub-agent through its signed handoff.
    const handle = await client.workflow.start('agentTask', { taskQueue, workflowId, args: [{ task: parseTask(doc, 'kid-killed.yaml', REPO_ROOT), flow: { dataPlaneStartTimeoutSeconds: 15 } }] });
    const kidId = `${workflowId}/kid-2`;
    await waitForTaskState(client.workflow.getHandle(kidId), (s) => s.steps.length >= 3 && s.steps[1]!.executed, 6000);
    const calls = (await activitiesOf(kidId)).filter((a) => a.type === 'runTool');
    const holderQueue = calls[calls.length - 1]!.queue;
    const holder = workers.find((w) => holderQueue.endsWith(`@${w.name}`));
    if (holder === undefined) throw new Error(`the sub-agent's calls went to ${holderQueue}, no worker's own queue`);
    const exit = new Promise((resolve) => holder.child.once('exit', resolve));
    holder.child.kill('SIGKILL');
    await exit;
    workers.splice(workers.indexOf(holder), 1);
    const result = await followAgentTask(handle);
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/^ERR_DATA_PLANE_LOST: sub-agent kid lost the task's data plane/);
    expect(result.children[0]).toMatchObject({ status: 'failed', reason: expect.stringMatching(/^ERR_DATA_PLANE_LOST: /) });
    expect(result.reason).toContain('did not take work for 15s');
    expect(filesOf(f.workspace)).toEqual({ 'keep.txt': 'as it was' });
    expect(f.rows()).toEqual([]);
    expect(result.recovery?.committed).toBeUndefined();
    // Each undid its own row from the shared journal, on a worker that was alive; nothing failed.
    for (const recovery of [(result.children[0] as TaskResult).recovery, result.recovery]) {
      expect(recovery?.rolledBack.filter((r) => r.kind === 'sql-undo').map((r) => r.status)).toContain('done');
      expect(recovery?.rolledBack.filter((r) => r.status === 'failed')).toEqual([]);
    }
  }, 600_000);

  it('every run of every task replays', async () => {
    const { failures, workflows } = await replayAllRuns(client, taskQueue);
    expect(failures).toEqual([]);
    expect(workflows.size).toBeGreaterThanOrEqual(TASKS);
  }, 300_000);
});
