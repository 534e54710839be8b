/**
 * `warden run` when a standalone `warden worker` already polls the task queue (embedded server,
 * same machine): on the same state folder the task runs on that worker and `run` is a client only
 * (the workflow history shows only the standalone worker's identity), with the same output, exit
 * codes and Ctrl-C behaviour; on another state folder `run` starts its own worker, as before, and
 * says that the other folder's worker also polls the queue. `--worker` always runs one in-process.
 * The worker is recognised by its record in the state folder (worker/standalone-worker.ts), which
 * it removes when it stops; forged pollers: test/attacks/run-reuses-forged-standalone-worker.test.ts.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import type { Client, Connection } from '@temporalio/client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentTaskResult } from '../../client/start-agent-task';
import type { TaskResult } from '../../task/task-run';
import { connectClient } from '../../temporal/connect';
import { loadTemporalConfig } from '../../temporal/temporal-config';
import { runningStandaloneWorkerIdentity, standaloneWorkerNonce } from '../support/standalone-worker-record';
import { collectOutput, exitOf, stopChildren, waitForOutput, type CollectedOutput } from '../support/child-output';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT, TEST_STATE_DIR } from '../support/warden-test-env';

const BIN = join(REPO_ROOT, 'bin/warden.js');
const taskQueue = `warden-reuse-${randomUUID()}`;

function testEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const port = testTemporalAddress().address.split(':').pop()!;
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port, WARDEN_APPROVER: 'ops', ...extra };
  delete env.TEMPORAL_ADDRESS;
  return env;
}

async function warden(args: string[], env = testEnv()): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env, maxBuffer: 16 * 1024 * 1024 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** The identities of the workers that took the workflow's workflow and activity tasks. */
async function workerIdentities(workflowId: string): Promise<Set<string>> {
  const history = await client.workflow.getHandle(workflowId).fetchHistory();
  const identities = new Set<string>();
  for (const event of history.events ?? []) {
    const identity = event.workflowTaskStartedEventAttributes?.identity ?? event.activityTaskStartedEventAttributes?.identity;
    if (identity) identities.add(identity);
  }
  return identities;
}

let worker: ChildProcess;
let workerOutput: CollectedOutput;
let client: Client;
let connection: Connection;

beforeAll(async () => {
  const { address, namespace } = testTemporalAddress();
  ({ client, connection } = await connectClient({ ...loadTemporalConfig({}), address, namespace }));
  worker = spawn(process.execPath, [BIN, 'worker', '--task-queue', taskQueue], { cwd: REPO_ROOT, env: testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
  workerOutput = collectOutput(worker);
  await waitForOutput(worker, workerOutput, 'stderr', `worker polling ${taskQueue}`);
}, 300_000);

afterAll(async () => {
  const nonce = worker.exitCode === null ? standaloneWorkerNonce(TEST_STATE_DIR, worker.pid!) : undefined;
  await stopChildren([worker]);
  // A clean exit keeps the worker's record, its time the end, while the server still lists the
  // worker (worker/standalone-worker.ts); its process ended, it vouches for no live worker.
  if (nonce !== undefined) expect(existsSync(join(TEST_STATE_DIR, 'standalone-workers', `${nonce}.json`))).toBe(true);
  await connection?.close();
});

describe('warden run with a standalone worker on the same state folder', () => {
  const identity = () => runningStandaloneWorkerIdentity(TEST_STATE_DIR, worker.pid!);

  it('runs the task on that worker (no worker of its own), with the same --json result and exit 0', async () => {
    const { code, stdout, stderr } = await warden(['run', 'examples/hello.yaml', '--json', '--task-queue', taskQueue]);
    expect(code, stderr).toBe(0);
    expect(stderr).toContain(`running on the standalone worker ${identity()} (same state folder`);
    const result = JSON.parse(stdout) as TaskResult;
    expect(result.status).toBe('completed');
    expect(result.children[0]?.status).toBe('completed');
    // Temporal's own record: every workflow and activity task went to the standalone worker.
    expect([...(await workerIdentities(result.workflowId))]).toEqual([identity()]);
  }, 300_000);

  it('a denied task still exits 1 with the same summary', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-reuse-'));
    const file = join(dir, 'denied.yaml');
    await writeFile(file, `user: eve\nintent: try\nagent:\n  name: rogue\n  model:\n    driver: scripted\n    script:\n      - tool: sql.exec\n        args: { database: x, sql: "DELETE FROM t" }\n      - final: done\n`);
    const { code, stdout, stderr } = await warden(['run', file, '--task-queue', taskQueue]);
    expect(code, stderr).toBe(1);
    expect(stderr).toContain('running on the standalone worker');
    expect(stderr).toMatch(/#0 sql\.exec .*DENIED.*ERR_TOOL_UNKNOWN/);
    expect(stdout).toMatch(/^task rogue \(.*\): DENIED/);
  }, 300_000);

  it('Ctrl-C cancels the task, the standalone worker runs its compensations, exit 130', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-reuse-sigint-'));
    const db = join(dir, 'crm.db');
    const database = new Database(db);
    database.exec('CREATE TABLE leads (id INTEGER PRIMARY KEY, stale INTEGER NOT NULL)');
    for (let i = 0; i < 42; i++) database.prepare('INSERT INTO leads (stale) VALUES (1)').run();
    database.close();
    const file = join(dir, 'task.yaml');
    await writeFile(
      file,
      stringify({
        user: 'fay@example.com',
        intent: 'clean up the stale leads',
        agent: { name: 'janitor', model: { driver: 'scripted', script: [{ tool: 'sql.exec', args: { database: 'crm', sql: 'DELETE FROM leads WHERE stale = 1' } }, { final: 'cleaned' }] } },
        tools: { builtin: ['sql.exec'] },
        grants: { tools: ['sql.exec'], databases: ['crm'] },
        resources: { databases: { crm: db } },
      }),
    );
    const child = spawn(process.execPath, [BIN, 'run', file, '--task-queue', taskQueue], { cwd: REPO_ROOT, env: testEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
    const output = collectOutput(child);
    const exited = exitOf(child);
    const stderr = await waitForOutput(child, output, 'stderr', /waiting for approval: warden approve (\S+) /);
    const workflowId = /waiting for approval: warden approve (\S+) /.exec(stderr)![1]!;
    expect(stderr).toContain('running on the standalone worker');
    child.kill('SIGINT');
    expect((await exited).code, output.stderr).toBe(130);
    expect(output.stderr).toMatch(new RegExp(`warden: cancelled ${workflowId}: `));
    expect(output.stderr).not.toMatch(/\n\s+at /);
    const result = await agentTaskResult(client.workflow.getHandle(workflowId));
    expect(result.status).toBe('cancelled');
    expect([...(await workerIdentities(workflowId))]).toEqual([identity()]);
  }, 300_000);

  it('--worker runs a worker in this process anyway', async () => {
    const { code, stdout, stderr } = await warden(['run', 'examples/hello.yaml', '--json', '--worker', '--task-queue', `warden-own-${randomUUID()}`]);
    expect(code, stderr).toBe(0);
    expect(stderr).not.toContain('running on the standalone worker');
    const result = JSON.parse(stdout) as TaskResult;
    expect(result.status).toBe('completed');
    const identities = await workerIdentities(result.workflowId);
    expect(identities.size).toBeGreaterThan(0);
    expect([...identities].some((i) => i.startsWith('warden-worker/'))).toBe(false);
  }, 300_000);
});

describe('warden run with a standalone worker on another state folder', () => {
  it('starts its own worker and says that the other folder\'s worker polls the queue too', async () => {
    const other = await mkdtemp(join(tmpdir(), 'warden-other-state-'));
    const { code, stderr } = await warden(['run', 'examples/hello.yaml', '--json', '--task-queue', taskQueue], testEnv({ WARDEN_STATE_DIR: other }));
    expect(stderr).not.toContain('running on the standalone worker');
    expect(stderr).toContain(`note: worker ${runningStandaloneWorkerIdentity(TEST_STATE_DIR, worker.pid!)} also polls ${taskQueue} from another state folder`);
    // Not a usage error; which of the two workers ran it is Temporal's choice (documented).
    expect([0, 1]).toContain(code);
  }, 300_000);
});
