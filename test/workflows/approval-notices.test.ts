/**
 * Approvals people notice, on the real Temporal server: the worker's approval webhook (a local
 * HTTP receiver here) is called when an action is held and again when it is decided, approved,
 * denied, timed out or withdrawn, each notice signed per Standard Webhooks; `warden approvals`
 * shows the measured effect, the rules and the deadline; `warden run` prints the command that
 * decides a held action. The 42-row delete is held by the foundation pack's "never delete more
 * than 10 rows without explicit approval".
 */
import { spawn } from 'node:child_process';
import { createHmac, randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalsCommand, approveCommand, denyCommand } from '../../cli/commands/approvals';
import { approversCommand } from '../../cli/commands/approvers';
import type { CliIo } from '../../cli/cli-io';
import { followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { Worker } from '@temporalio/worker';
import { workflowBundle } from '../../worker/workflow-bundle';
import { collectOutput, exitOf, waitForOutput } from '../support/child-output';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

const SECRET = `whsec_${Buffer.from('approval-webhook-test-key-32bytes!').toString('base64')}`;

interface Notice {
  headers: IncomingHttpHeaders;
  raw: string;
  body: {
    type: string;
    event: 'held' | 'decided';
    workflowId: string;
    requestId: string;
    tool: string;
    args: Record<string, unknown>;
    effect?: Record<string, unknown>;
    rules: string[];
    expiresAt: string;
    decision?: { status: string; approver?: string; reason?: string };
    commands?: { approve: string; deny: string };
  };
}

let env: WardenTestEnv;
/** A registered approver (unique per run: the test registry outlives runs) and its key file. */
const approver = `sec-lead-${randomUUID().slice(0, 8)}`;
let keyFile: string;
let receiver: Server;
let receiverUrl: string;
const notices: Notice[] = [];
const waiters: { match: (n: Notice) => boolean; resolve: (n: Notice) => void }[] = [];
/** Answers the receiver gives, in order, before it answers 200. */
const failFirst: number[] = [];

/** Resolves with the first notice (already received or still to come) that matches. */
function notice(match: (n: Notice) => boolean): Promise<Notice> {
  const seen = notices.find(match);
  if (seen !== undefined) return Promise.resolve(seen);
  return new Promise((resolve) => waiters.push({ match, resolve }));
}

beforeAll(async () => {
  receiver = createServer((req, res) => {
    let raw = '';
    req.on('data', (chunk: Buffer) => (raw += chunk.toString()));
    req.on('end', () => {
      const status = failFirst.shift() ?? 200;
      res.writeHead(status).end();
      if (status !== 200) return;
      const received: Notice = { headers: req.headers, raw, body: JSON.parse(raw) as Notice['body'] };
      notices.push(received);
      for (const waiter of waiters.filter((w) => w.match(received))) {
        waiters.splice(waiters.indexOf(waiter), 1);
        waiter.resolve(received);
      }
    });
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  receiverUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/warden`;
  env = await startWardenTestEnv({ ...process.env, WARDEN_APPROVAL_WEBHOOK: receiverUrl, WARDEN_APPROVAL_WEBHOOK_SECRET: SECRET });
  keyFile = join(await mkdtemp(join(tmpdir(), 'warden-approver-')), `${approver}.json`);
  const add = cli();
  expect(await approversCommand(['add', approver, '--out', keyFile], add.io), add.out.join('')).toBe(0);
});
afterAll(async () => {
  await env?.close();
  receiver?.close();
});

async function leadsDatabase(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'warden-notices-'));
  const file = join(dir, 'crm.db');
  const db = new Database(file);
  db.exec('CREATE TABLE leads (id INTEGER PRIMARY KEY, stale INTEGER NOT NULL)');
  const insert = db.prepare('INSERT INTO leads (stale) VALUES (?)');
  for (let i = 0; i < 50; i++) insert.run(i < 42 ? 1 : 0);
  db.close();
  return file;
}

function deleteTaskDocument(dbFile: string, limits: Record<string, unknown> = {}) {
  return {
    user: 'fay@example.com',
    intent: 'clean up the stale leads',
    agent: { name: 'janitor', model: { driver: 'scripted', script: [{ tool: 'sql.exec', args: { database: 'crm', sql: 'DELETE FROM leads WHERE stale = 1' } }, { final: 'cleaned' }] } },
    tools: { builtin: ['sql.exec'] },
    grants: { tools: ['sql.exec'], databases: ['crm'] },
    limits,
    resources: { databases: { crm: dbFile } },
  };
}

function cli(): { io: CliIo; out: string[] } {
  const out: string[] = [];
  const port = testTemporalAddress().address.split(':').pop();
  return {
    out,
    io: { stdout: (t) => out.push(t), stderr: (t) => out.push(t), env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port, ...(keyFile === undefined ? {} : { WARDEN_APPROVER_KEY: keyFile }) } },
  };
}

async function startHeld(limits: Record<string, unknown> = {}) {
  const task = parseTask(deleteTaskDocument(await leadsDatabase(), limits), 'task.yaml', REPO_ROOT);
  const handle = await env.start(task);
  const held = await notice((n) => n.body.workflowId === handle.workflowId && n.body.event === 'held');
  return { handle, held };
}

describe('the approval webhook', () => {
  it('announces a held action with its measured effect, rules, deadline and the commands, signed', async () => {
    const { handle, held } = await startHeld();
    expect(held.body).toMatchObject({
      type: 'warden.approval.held',
      tool: 'sql.exec',
      args: { database: 'crm', sql: 'DELETE FROM leads WHERE stale = 1' },
      effect: { rowsChanged: 42 },
      commands: { approve: `warden approve ${handle.workflowId} ${held.body.requestId}`, deny: `warden deny ${handle.workflowId} ${held.body.requestId}` },
    });
    expect(held.body.rules.join(' ')).toContain('never delete more than 10 rows without explicit approval');
    expect(Date.parse(held.body.expiresAt)).toBeGreaterThan(Date.now());
    // Standard Webhooks: HMAC-SHA256 over "id.timestamp.body" with the secret's key.
    const id = String(held.headers['webhook-id']);
    const timestamp = String(held.headers['webhook-timestamp']);
    const key = Buffer.from(SECRET.slice('whsec_'.length), 'base64');
    expect(held.headers['webhook-signature']).toBe(`v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${held.raw}`).digest('base64')}`);
    expect(id).toBe(`${handle.workflowId}:${held.body.requestId}:held`);

    // `warden approvals` shows the same: effect, rules, deadline, the command.
    const listing = cli();
    expect(await approvalsCommand([], listing.io)).toBe(0);
    const text = listing.out.join('');
    expect(text).toContain(`waiting for approval: warden approve ${handle.workflowId} ${held.body.requestId}`);
    expect(text).toContain('effect:   would change 42 row(s) (delete)');
    expect(text).toContain('never delete more than 10 rows');
    expect(text).toContain(`deadline: ${held.body.expiresAt}`);

    const approve = cli();
    expect(await approveCommand([handle.workflowId, held.body.requestId, '--reason', 'quarterly cleanup'], approve.io), approve.out.join('')).toBe(0);
    const decided = await notice((n) => n.body.workflowId === handle.workflowId && n.body.event === 'decided');
    expect(decided.body).toMatchObject({ type: 'warden.approval.decided', decision: { status: 'approved', approver, reason: 'quarterly cleanup' } });
    expect(decided.body.commands).toBeUndefined();
    expect((await followAgentTask(handle)).status).toBe('completed');
  });

  it.each([
    ['denied', async (workflowId: string, requestId: string) => expect(await denyCommand([workflowId, requestId], cli().io)).toBe(0), {}],
    ['timed_out', async () => undefined, { approvalTimeout: '1s' }],
  ])('announces the decision when it is %s', async (status, decide, limits) => {
    const { handle, held } = await startHeld(limits);
    await decide(handle.workflowId, held.body.requestId);
    const decided = await notice((n) => n.body.workflowId === handle.workflowId && n.body.event === 'decided');
    expect(decided.body.decision?.status).toBe(status);
    await followAgentTask(handle);
  });

  it('announces a held action as withdrawn when the task is cancelled first', async () => {
    const { handle } = await startHeld();
    await handle.cancel();
    const decided = await notice((n) => n.body.workflowId === handle.workflowId && n.body.event === 'decided');
    expect(decided.body.decision?.status).toBe('withdrawn');
    expect((await followAgentTask(handle)).status).toBe('cancelled');
  });

  it('retries a receiver that failed, with the same webhook-id', async () => {
    failFirst.push(503);
    const before = notices.length;
    const { handle, held } = await startHeld();
    // The 503 was served (to the first attempt), and the notice still arrived.
    expect(failFirst).toEqual([]);
    expect(notices.length).toBeGreaterThan(before);
    expect(held.headers['webhook-id']).toBe(`${handle.workflowId}:${held.body.requestId}:held`);
    await handle.cancel();
    await followAgentTask(handle);
  });
});

describe('warden run', () => {
  it('prints the command that decides a held action, and finishes once it is approved', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-run-held-'));
    const file = join(dir, 'task.yaml');
    await writeFile(file, stringify(deleteTaskDocument(await leadsDatabase())));
    const port = testTemporalAddress().address.split(':').pop();
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'run', file, '--json'], {
      cwd: REPO_ROOT,
      env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const output = collectOutput(child);
    const exited = exitOf(child);
    const stderr = await waitForOutput(child, output, 'stderr', /waiting for approval: warden approve (\S+) (\S+)/);
    const [, workflowId, requestId] = /waiting for approval: warden approve (\S+) (\S+)/.exec(stderr)!;
    expect(stderr).toContain('effect:   would change 42 row(s) (delete)');
    expect(stderr).toContain('rules:    ');
    expect(stderr).toContain('deadline: ');
    expect(await approveCommand([workflowId!, requestId!], cli().io)).toBe(0);
    expect((await exited).code, output.stderr).toBe(0);
    expect(JSON.parse(output.stdout)).toMatchObject({ status: 'completed', steps: [{ approval: { status: 'approved' } }] });
  }, 240_000);
});

describe('determinism', () => {
  it('every run of this file (held, approved, denied, timed out, cancelled) replays against the current workflow code', async () => {
    const bundle = await workflowBundle();
    const failures: string[] = [];
    for (const workflowId of env.workflowIds) {
      const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
      try {
        await Worker.runReplayHistory({ workflowBundle: bundle }, history, workflowId);
      } catch (error) {
        failures.push(`${workflowId}: ${(error as Error).message.slice(0, 200)}`);
      }
    }
    expect(env.workflowIds.length).toBeGreaterThanOrEqual(5);
    expect(failures).toEqual([]);
  }, 300_000);
});
