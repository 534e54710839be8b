/**
 * Finding (issue 17 area, `warden run`'s poller notes; severity medium): `run` names every poller
 * of its task queue it cannot vouch for, workflow and activity pollers alike, but a task's tool
 * calls do not run on that queue: once `prepareTask` answers, the workflow pins its data-plane
 * activities (the tool calls, each with its per-call credential and arguments, and the overlay
 * work) to the worker's private queue `<taskQueue>@<worker id>` (workflows/data-plane-affinity.ts),
 * and the worker id is `<host>-<first 8 hex of SHA-256 of the state folder path>`
 * (dataplane/shared-storage.ts `workerIdOf`): predictable, and written in every task's history.
 * `run` never reads that queue's pollers, so a stranger who polls it, under any identity, is
 * never named, although Temporal hands it the task's tool calls as readily as the run's own
 * worker (it can read their inputs and credentials, and answer them with results of its own).
 *
 * Verdict: FIXED (was open). The fix followed the suggestion: read the activity pollers of the data-plane queue
 * (`recentPollers(client, dataPlaneQueue, undefined, 'activity')`) with the main queue's and name
 * every one that is not this run's own identity or a vouched standalone worker; table over
 * {main queue, data-plane queue} × {workflow, activity} pollers.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { temporal } from '@temporalio/proto';
import { afterAll, expect, it } from 'vitest';
import { recentPollers } from '../../cli/temporal-client';
import { workerIdOf } from '../../dataplane/shared-storage';
import { connectClient } from '../../temporal/connect';
import { REPO_ROOT } from '../support/warden-test-env';
import { testTemporalAddress, testTemporalConfig } from '../support/temporal';

const root = fs.mkdtempSync(join(tmpdir(), 'warden-data-plane-poller-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));

it("a stranger polling the run's data-plane queue is named like one on the task queue", async () => {
  const stateDir = join(root, 'state');
  const workspace = join(root, 'workspace');
  fs.mkdirSync(workspace);
  fs.writeFileSync(join(workspace, 'notes.txt'), 'secret notes');
  const queue = `atk2-dp-${randomUUID()}`;
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_STATE_DIR: stateDir, WARDEN_TEMPORAL_PORT: testTemporalAddress().address.split(':').pop()! };
  const dataPlaneQueue = `${queue}@${workerIdOf(stateDir, env)}`;
  const task = join(root, 'task.json');
  fs.writeFileSync(task, JSON.stringify({ user: 'u@example.com', intent: 'read the notes', agent: { name: 'reader', model: { driver: 'scripted', script: [{ tool: 'fs.read', args: { path: 'notes.txt' } }, { final: 'read' }] } }, tools: { builtin: ['fs.read'] }, grants: { tools: ['fs.read'] }, resources: { workspace } }));

  // The stranger: a bare long poll on the data-plane queue, as anyone who reaches the server can make.
  const { client, connection } = await connectClient(testTemporalConfig());
  let stopped = false;
  const handed: string[] = [];
  const stranger = (async () => {
    while (!stopped) {
      const answer = await connection
        .withDeadline(Date.now() + 5_000, () =>
          connection.workflowService.pollActivityTaskQueue({ namespace: testTemporalConfig().namespace, taskQueue: { name: dataPlaneQueue, kind: temporal.api.enums.v1.TaskQueueKind.TASK_QUEUE_KIND_NORMAL }, identity: 'stranger-on-the-data-plane' }),
        )
        .catch(() => undefined);
      if (answer?.taskToken?.length) handed.push(answer.activityType?.name ?? '?');
    }
  })();
  try {
    while (!(await recentPollers(client, dataPlaneQueue, undefined, 'activity')).includes('stranger-on-the-data-plane')) await new Promise((resolve) => setTimeout(resolve, 100));
    const run = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), 'run', task, '--task-queue', queue], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    run.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    run.stdout.resume();
    await new Promise((resolve) => run.once('exit', resolve));
    // Whether Temporal handed the stranger a tool call this time is chance (two pollers); that it may is the point.
    console.log(`activities handed to the stranger: ${handed.join(', ') || 'none this time'}`);
    expect(stderr).toContain('stranger-on-the-data-plane');
  } finally {
    stopped = true;
    await stranger;
    await connection.close();
  }
}, 300_000);
