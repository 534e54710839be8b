/**
 * The reproduced loss of issue 12, on the ordinary loop (no `dataFlow`): two real `warden worker`
 * processes with separate state folders (what two machines look like) on one Temporal server and
 * one PostgreSQL database, and tasks started by real `warden run` processes. Half the tasks write
 * three files and have a sub-agent write a fourth, half write one file. A call's writes land in the overlay of whichever worker
 * ran it, so a task whose calls and commit did not all run on one worker cannot commit them: it
 * must fail with ERR_OVERLAY_MISSING, roll back, exit non-zero and say why, never report
 * `completed` over a workspace missing its files (before the commit proof, it did).
 *
 * Which worker ran each activity is read from the histories (ActivityTaskStarted's identity), so
 * the expected outcome of every task is known exactly: all on one worker, the task commits exactly
 * what its steps wrote; split, it fails with the typed error. And every run replays.
 *
 * With data-plane affinity (`warden-ordinary-affinity`) every task tree runs on one worker and
 * completes (affinity-two-workers.test.ts); the split outcome is what runs from before it get.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import type { TaskResult } from '../../task/task-run';
import { connectClient } from '../../temporal/connect';
import { stopChildren } from '../support/child-output';
import { createTestDatabase, type TestDatabase } from '../support/postgres';
import { replayAllRuns } from '../support/replay-runs';
import { testTemporalConfig, wardenProcessEnv } from '../support/temporal';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';

const TASKS = 8;
/** The files each task's steps write (`kid.txt` by its sub-agent), with their content. */
const FILES = (i: number): Record<string, string> => (i % 2 === 1 ? { 'a.txt': `a${i}` } : { 'a.txt': `a${i}`, 'b.txt': `b${i}`, 'c.txt': `c${i}`, 'kid.txt': `kid${i}` });

let pg: TestDatabase;
let client: Client;
let connection: Connection;
const workers: ChildProcess[] = [];
const dirs: string[] = [];
const taskQueue = `warden-commit-proof-${randomUUID()}`;

interface Run {
  i: number;
  workflowId: string;
  workspace: string;
  exitCode: number | null;
  stdout: string;
  result?: TaskResult;
  /** Identities of the workers that ran the task tree's file writes, and its commit. */
  writers?: Set<string>;
  committer?: string;
}
const runs: Run[] = [];

function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  dirs.push(dir);
  return dir;
}

function processEnv(stateDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return wardenProcessEnv(stateDir, { WARDEN_DATABASE_URL: pg.url, ...extra });
}

async function startWorker(name: string): Promise<void> {
  const stateDir = tempDir(`warden-proof-${name}-`);
  // Both reuse the test run's workflow bundle cache instead of building their own.
  mkdirSync(join(TEST_STATE_DIR, 'cache'), { recursive: true });
  symlinkSync(join(TEST_STATE_DIR, 'cache'), join(stateDir, 'cache'));
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), 'worker', '--task-queue', taskQueue], {
    env: processEnv(stateDir, { WARDEN_WORKER_ID: name }),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  workers.push(child);
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

/** Even tasks write three files and have a sub-agent write a fourth; odd ones write one file (so some run on one worker only). */
function taskYaml(i: number, workspace: string): string {
  const write = (path: string) => `      - { tool: fs.write, args: { path: ${path}, content: ${FILES(i)[path]} } }`;
  const writer = ['agent:', '  name: writer', '  model:', '    driver: scripted', '    script:'];
  if (i % 2 === 1) {
    return [
      'user: alice@example.com',
      `intent: write the note of run ${i}`,
      ...writer,
      write('a.txt'),
      '      - { final: done }',
      'tools: { builtin: [fs.write] }',
      'grants: { tools: [fs.write] }',
      `resources: { workspace: ${JSON.stringify(workspace)} }`,
      '',
    ].join('\n');
  }
  return [
    'user: alice@example.com',
    `intent: write the report of run ${i}, with a helper`,
    ...writer,
    write('a.txt'),
    write('b.txt'),
    '      - { spawn: kid }',
    write('c.txt'),
    '      - { final: done }',
    'tools: { builtin: [fs.write] }',
    'grants: { tools: [fs.write], subagents: [kid] }',
    `resources: { workspace: ${JSON.stringify(workspace)} }`,
    'subagents:',
    '  kid:',
    '    intent: write kid.txt',
    '    agent:',
    '      name: kid',
    '      model:',
    '        driver: scripted',
    '        script:',
    `          - { tool: fs.write, args: { path: kid.txt, content: ${FILES(i)['kid.txt']} } }`,
    '          - { final: kid done }',
    '    tools: { builtin: [fs.write] }',
    '    grants: { tools: [fs.write] }',
    '',
  ].join('\n');
}

/** One real `warden run` process against the standalone workers. */
async function warden(i: number): Promise<Run> {
  const dir = tempDir(`warden-proof-task-${i}-`);
  const workspace = join(dir, 'ws');
  mkdirSync(workspace);
  await writeFile(join(dir, 'task.yaml'), taskYaml(i, workspace));
  const workflowId = `commit-proof-two-${i}-${randomUUID()}`;
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), 'run', join(dir, 'task.yaml'), '--no-worker', '--task-queue', taskQueue, '--workflow-id', workflowId], {
    env: processEnv(join(dir, 'state')),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  child.stdout!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr!.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  const exitCode = await new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { i, workflowId, workspace, exitCode, stdout };
}

/** The identity of the worker that ran each activity of a workflow, by activity type. */
async function activityWorkers(workflowId: string): Promise<{ type: string; identity: string }[]> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const typeOf = new Map<string, string>();
  const out: { type: string; identity: string }[] = [];
  for (const event of history.events ?? []) {
    const scheduled = event.activityTaskScheduledEventAttributes;
    if (scheduled != null) typeOf.set(String(event.eventId), scheduled.activityType?.name ?? '');
    const started = event.activityTaskStartedEventAttributes;
    if (started != null) out.push({ type: typeOf.get(String(started.scheduledEventId)) ?? '', identity: started.identity ?? '' });
  }
  return out;
}

function filesOf(workspace: string): Record<string, string> {
  return Object.fromEntries(readdirSync(workspace).map((name) => [name, readFileSync(join(workspace, name), 'utf8')]));
}

beforeAll(async () => {
  pg = await createTestDatabase();
  await Promise.all([startWorker('worker-a'), startWorker('worker-b')]);
  ({ client, connection } = await connectClient(testTemporalConfig()));
  runs.push(...(await Promise.all(Array.from({ length: TASKS }, (_, i) => warden(i)))));
  for (const run of runs) {
    run.result = await followAgentTask(client.workflow.getHandle(run.workflowId));
    const root = await activityWorkers(run.workflowId);
    const kids = await Promise.all(run.result.children.map((child) => activityWorkers(child.workflowId)));
    run.writers = new Set([...root, ...kids.flat()].filter((a) => a.type === 'runTool').map((a) => a.identity));
    run.committer = root.find((a) => a.type === 'commitTask')?.identity;
  }
}, 900_000);

afterAll(async () => {
  await connection?.close();
  await stopChildren(workers);
  await pg?.drop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}, 120_000);

describe('two workers, separate state folders, the ordinary loop: a commit that cannot lie', () => {
  it('loses nothing silently: every task commits exactly what its steps wrote, or fails and leaves the workspace as it was', () => {
    const silentLosses = runs.filter((r) => r.result?.status === 'completed' && JSON.stringify(filesOf(r.workspace)) !== JSON.stringify(FILES(r.i)));
    expect(silentLosses.map((r) => `${r.workflowId}: ${JSON.stringify(filesOf(r.workspace))}`)).toEqual([]);
    for (const run of runs) {
      if (run.result?.status === 'completed') expect(filesOf(run.workspace)).toEqual(FILES(run.i));
      else expect(filesOf(run.workspace)).toEqual({});
    }
    const split = runs.filter((r) => r.result?.status !== 'completed').length;
    console.log(`commit proof, two workers: ${TASKS - split} of ${TASKS} tasks ran on one worker and committed; ${split} split across workers failed with the typed error; 0 silent losses`);
  });

  it('a task whose writes and commit ran on one worker completes; one split across workers fails with ERR_OVERLAY_MISSING', () => {
    for (const run of runs) {
      const oneWorker = run.writers!.size === 1 && run.writers!.has(run.committer ?? '');
      expect({ id: run.workflowId, status: run.result?.status }).toEqual({ id: run.workflowId, status: oneWorker ? 'completed' : 'failed' });
      if (!oneWorker) expect(run.result?.reason).toContain("the task's files could not be committed: ERR_OVERLAY_MISSING");
    }
  });

  it('a failed commit rolls back, exits non-zero from `warden run` and says why; a good one exits 0', () => {
    for (const run of runs) {
      if (run.result?.status === 'completed') {
        expect(run.exitCode, run.stdout).toBe(0);
        expect(run.result.recovery?.committed?.sort()).toEqual(Object.keys(FILES(run.i)).sort());
        continue;
      }
      expect(run.exitCode, run.stdout).toBe(1);
      expect(run.stdout).toContain('ERR_OVERLAY_MISSING');
      expect(run.result?.recovery?.committed).toBeUndefined();
      expect(run.result?.recovery?.rolledBack.map((r) => r.kind)).toContain('fs-overlay-discard');
      expect(run.result?.recovery?.rolledBack.filter((r) => r.status === 'failed')).toEqual([]);
    }
  });

  it('every run of every task replays', async () => {
    const { failures, workflows } = await replayAllRuns(client, taskQueue);
    expect(failures).toEqual([]);
    // Visibility may list a just-closed workflow a moment late; what it lists all replayed.
    expect(workflows.size).toBeGreaterThanOrEqual(TASKS);
  }, 300_000);
});
