/**
 * `warden kill` against running tasks on the real Temporal server: a task waiting for approval,
 * a task between tool calls, a task the monitor blocked and holds for a human. Each is blocked
 * (no action after the kill, credentials revoked) and remediated (effects undone). A kill is
 * authenticated like an approval (a registered approver's key over exactly this run): unsigned,
 * forged, removed-approver and replayed kills, and kills of tasks that are not running, are
 * refused with ERR_KILL_REFUSED and change nothing. Also: a blocked sub-agent blocks its parent
 * even when the parent's packs hold no response rule; a forged block signal changes nothing; the
 * model never sees scores, reasons or alerts.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { killCommand } from '../../cli/commands/kill';
import { WorkflowFailedError } from '@temporalio/client';
import { killedTaskResult, killTask } from '../../client/kill-task';
import { followAgentTask } from '../../client/start-agent-task';
import { openCredentialStores } from '../../identity/credential-stores';
import type { Alert } from '../../monitoring/alert';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { issueApproverKey, signApprovalDecision, type ApproverKeyFile } from '../../identity/approval-decision';
import { openApproverStore } from '../../identity/approver-registry';
import { blockSignal, KILL_ACTION, KILL_REQUEST_ID, killUpdate, taskStateQuery } from '../../workflows/definitions';
import { startFakeOpenAIServer, toolCall, toolCallsReply } from '../support/fake-openai-server';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { makeShop, replayTaskQueue, type ShopFixture } from '../support/monitor-kit';
import { testTemporalAddress } from '../support/temporal';

let env: WardenTestEnv;
let shop: ShopFixture;
const printed: Alert[] = [];
let oncall: ApproverKeyFile;
let oncallKeyFile: string;
let removed: ApproverKeyFile;
/** A key under the on-call name that this Warden never issued. */
let impostor: ApproverKeyFile;

beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { printAlert: (alert) => printed.push(alert) });
  shop = await makeShop();
  const suffix = randomUUID().slice(0, 8);
  const store = openApproverStore({ stateDir: TEST_STATE_DIR });
  oncall = (await issueApproverKey(store, { name: `oncall-${suffix}` })).keyFile;
  removed = (await issueApproverKey(store, { name: `gone-${suffix}` })).keyFile;
  store.remove(removed.name);
  store.close();
  const elsewhere = openApproverStore({ stateDir: await mkdtemp(join(tmpdir(), 'warden-elsewhere-')) });
  impostor = (await issueApproverKey(elsewhere, { name: oncall.name })).keyFile;
  elsewhere.close();
  oncallKeyFile = join(await mkdtemp(join(tmpdir(), 'warden-keys-')), 'oncall.json');
  await writeFile(oncallKeyFile, JSON.stringify(oncall), { mode: 0o600 });
});
afterAll(async () => env?.close());

const cliIo = (out: string[]) => ({
  stdout: (t: string) => out.push(t),
  stderr: (t: string) => out.push(t),
  env: { ...process.env, TEMPORAL_ADDRESS: testTemporalAddress().address, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_APPROVER_KEY: oncallKeyFile },
});

function task(script: unknown[], extra: Record<string, unknown> = {}) {
  const agent = `ops-${randomUUID().slice(0, 8)}`;
  return parseTask(
    {
      user: 'erin@example.com',
      intent: 'tidy the orders',
      agent: { name: agent, model: { driver: 'scripted', script } },
      tools: {
        builtin: ['fs.write', 'sql.exec'],
        custom: [{ name: 'tick', description: 'takes a while', input: { type: 'object' }, source: 'const end = Date.now() + 250; while (Date.now() < end) {} return input.n;' }],
      },
      grants: { tools: ['fs.write', 'sql.exec', 'tick'], databases: ['shop'] },
      resources: { workspace: shop.workspace, databases: { shop: shop.dbFile } },
      ...extra,
    },
    'kill-test.yaml',
    REPO_ROOT,
  );
}

async function waitForState(workflowId: string, ready: (state: Awaited<ReturnType<typeof queryState>>) => boolean): Promise<void> {
  for (;;) {
    const state = await queryState(workflowId).catch(() => undefined);
    if (state !== undefined && ready(state)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function queryState(workflowId: string) {
  return env.client.workflow.getHandle(workflowId).query(taskStateQuery);
}

async function revocationOf(result: TaskResult) {
  const stores = openCredentialStores({ stateDir: TEST_STATE_DIR });
  try {
    return await stores.revocation.isRevoked([result.identity!.grantId]);
  } finally {
    stores.close();
  }
}

it('kills a task waiting for approval: blocked now, credentials revoked, its write discarded and its update undone', async () => {
  const before = shop.rows();
  const handle = await env.start(
    task([
      { tool: 'fs.write', args: { path: 'plan.txt', content: 'hijacked' } },
      { tool: 'sql.exec', args: { database: 'shop', sql: 'UPDATE orders SET qty = 0 WHERE id = 3' } },
      { tool: 'sql.exec', args: { database: 'shop', sql: 'DELETE FROM orders WHERE id > 15' } },
      { final: 'never' },
    ]),
  );
  await waitForState(handle.workflowId, (s) => s.pendingApprovals.length > 0);
  const out: string[] = [];
  expect(await killCommand([handle.workflowId, '--reason', 'suspicious delete', '--json'], cliIo(out)), out.join('')).toBe(0);
  const { kill, killToBlockMs, result } = JSON.parse(out.join('')) as { kill: { status: string; operator: string; alertId: string }; killToBlockMs: number; result: TaskResult };
  expect(kill).toMatchObject({ status: 'blocked', operator: oncall.name });
  expect(killToBlockMs).toBeGreaterThanOrEqual(0);
  expect(result.status).toBe('blocked');
  expect(result.reason).toBe(`killed by ${oncall.name}: suspicious delete`);
  // The held delete was never run; the approval wait ended as denied by Warden.
  expect(result.steps[2]).toMatchObject({ executed: false, approval: { status: 'denied', approver: 'warden' } });
  // The held delete was measured in a transaction the host rolled back and is the call's only
  // statement: nothing of it applied, so no undo is registered for it (patch `warden-undo-what-ran`).
  expect(result.recovery?.rolledBack.map((r) => [r.kind, r.status])).toEqual([
    ['sql-undo', 'done'],
    ['fs-overlay-discard', 'done'],
  ]);
  expect(shop.rows()).toEqual(before);
  expect(existsSync(join(shop.workspace, 'plan.txt'))).toBe(false);
  const alert = result.alerts!.find((a) => a.id === kill.alertId)!;
  expect(alert).toMatchObject({ source: 'kill', response: 'remediate', operator: oncall.name, operatorKey: oncall.kid, reason: 'suspicious delete' });
  expect(printed.map((a) => a.id)).toContain(alert.id);
  expect((await revocationOf(result))?.reason).toBe(`killed by ${oncall.name}`);
});

it('a kill while the monitor holds a step for approval: the step says a person stopped it, not the monitor', async () => {
  // The step-up rule fires at the fourth call; from then on every action waits for a human.
  const script = [...Array.from({ length: 6 }, (_, n) => ({ tool: 'tick', args: { n } })), { final: 'never' }];
  const handle = await env.start(task(script, { policies: ['require approval for the next actions when it makes more than 3 calls of tool tick'] }));
  await waitForState(handle.workflowId, (s) => s.pendingApprovals.length > 0);
  const out: string[] = [];
  expect(await killCommand([handle.workflowId, '--reason', 'looping', '--json'], cliIo(out)), out.join('')).toBe(0);
  const { result } = JSON.parse(out.join('')) as { result: TaskResult };
  expect(result.status).toBe('blocked');
  const held = result.steps.find((step) => step.approval !== undefined)!;
  expect(held).toMatchObject({ executed: false, decision: 'deny' });
  expect(held.reason).toBe(`stopped while it waited for approval: killed by ${oncall.name}: looping`);
});

it('kills a task between tool calls: nothing starts after the kill', async () => {
  const handle = await env.start(task([...Array.from({ length: 40 }, (_, n) => ({ tool: 'tick', args: { n } })), { final: 'never' }], { limits: { maxSteps: 50 } }));
  await waitForState(handle.workflowId, (s) => s.steps.filter((step) => step.executed).length >= 2);
  const kill = await killTask(env.client, { workflowId: handle.workflowId, key: oncall, reason: 'runaway' });
  expect(kill.status).toBe('blocked');
  const result = await followAgentTask(handle);
  expect(result.status).toBe('blocked');
  expect(result.steps.length).toBeLessThan(40);
  // At most the call in flight when the kill arrived ran after it; its credential was minted before.
  const blockedAt = Date.parse(kill.blockedAt!);
  const startedAfter = result.steps.filter((s) => Date.parse(s.startedAt) > blockedAt && s.executed);
  expect(startedAfter).toEqual([]);
  expect((await revocationOf(result))?.reason).toBe(`killed by ${oncall.name}`);
  // In Temporal the blocked task closes as Failed (a guardrail outcome), its result intact.
  const failure = await handle.result().then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(failure).toBeInstanceOf(WorkflowFailedError);
  expect((failure as WorkflowFailedError).cause).toMatchObject({ type: 'ERR_TASK_BLOCKED', nonRetryable: true, category: 'BENIGN', message: expect.stringMatching(/^blocked: killed by/) });
  expect((await killedTaskResult(env.client, handle.workflowId)).steps).toEqual(result.steps);
});

it('a block without remediation holds the task until `warden kill` remediates it', async () => {
  const before = shop.rows();
  const same = { tool: 'sql.exec', args: { database: 'shop', sql: 'UPDATE orders SET qty = qty + 1 WHERE id = 7' } };
  const handle = await env.start(task([same, same, same, same, { final: 'never' }], { policies: ['block the task when it makes the same call 3 times in a row'] }));
  await waitForState(handle.workflowId, (s) => s.status === 'blocked');
  // Held: two updates ran and are still in place while a human looks.
  expect(shop.rows().find((r) => r.id === 7)!.qty).toBe(before.find((r) => r.id === 7)!.qty + 2);
  const out: string[] = [];
  expect(await killCommand([handle.workflowId], cliIo(out)), out.join('')).toBe(0);
  expect(out.join('')).toContain(`${handle.workflowId} was already blocked; remediating it now`);
  expect(out.join('')).toMatch(/ended blocked[\s\S]*undone: sql-undo/);
  const result = await followAgentTask(handle);
  expect(result.steps).toHaveLength(3);
  expect(result.alerts?.map((a) => [a.source, a.response])).toEqual([
    ['monitor', 'block'],
    ['kill', 'remediate'],
  ]);
  expect(shop.rows()).toEqual(before);
});

it('refuses kills that cannot apply, saying why', async () => {
  const done = await env.runTask({
    user: 'erin@example.com',
    intent: 'nothing',
    agent: { name: `ops-${randomUUID().slice(0, 8)}`, model: { driver: 'scripted', script: [{ final: 'ok' }] } },
  });
  expect(done.status).toBe('completed');
  const out: string[] = [];
  expect(await killCommand([done.workflowId], cliIo(out))).toBe(1);
  expect(out.join('')).toMatch(/ERR_KILL_REFUSED: .*not running/);
  const unknown: string[] = [];
  expect(await killCommand(['no-such-task-xyz'], cliIo(unknown))).toBe(1);
  expect(unknown.join('')).toContain('ERR_TASK_NOT_FOUND: no task with workflow id no-such-task-xyz');
  const usage: string[] = [];
  expect(await killCommand([], cliIo(usage))).toBe(2);

  const handle = await env.start(task([{ tool: 'sql.exec', args: { database: 'shop', sql: 'DELETE FROM orders WHERE id > 10' } }, { final: 'x' }]));
  const other = await env.start(task([{ tool: 'sql.exec', args: { database: 'shop', sql: 'DELETE FROM orders WHERE id > 20' } }, { final: 'x' }]));
  await waitForState(handle.workflowId, (s) => s.pendingApprovals.length > 0);
  await waitForState(other.workflowId, (s) => s.pendingApprovals.length > 0);
  // A key Warden never issued, a removed approver's key.
  await expect(killTask(env.client, { workflowId: handle.workflowId, key: impostor })).rejects.toMatchObject({ code: 'ERR_KILL_REFUSED', message: expect.stringContaining('not signed with the key issued') });
  await expect(killTask(env.client, { workflowId: handle.workflowId, key: removed })).rejects.toMatchObject({ code: 'ERR_KILL_REFUSED', message: expect.stringContaining('was removed') });
  // No signature at all: the validator rejects it before anything is recorded.
  await expect(env.client.workflow.getHandle(handle.workflowId).executeUpdate(killUpdate, { args: [{ requestedAt: new Date().toISOString() } as never] })).rejects.toMatchObject({
    cause: { type: 'ERR_KILL_REFUSED', message: expect.stringContaining('signature: a kill must be signed with a registered approver key') },
  });
  // A valid kill of one task replayed against another.
  const otherRun = (await env.client.workflow.getHandle(other.workflowId).describe()).runId;
  const signature = await signApprovalDecision(oncall, { workflowId: other.workflowId, runId: otherRun, requestId: KILL_REQUEST_ID, action: KILL_ACTION, approved: true });
  await expect(
    env.client.workflow.getHandle(handle.workflowId).executeUpdate(killUpdate, { args: [{ requestedAt: new Date().toISOString(), signature }] }),
  ).rejects.toMatchObject({ cause: { type: 'ERR_KILL_REFUSED', message: expect.stringContaining('another decision (workflowId, runId differ)') } });
  // A signature over another reason does not carry over.
  await expect(
    env.client.workflow.getHandle(other.workflowId).executeUpdate(killUpdate, { args: [{ requestedAt: new Date().toISOString(), signature, reason: 'something else' }] }),
  ).rejects.toMatchObject({ cause: { type: 'ERR_KILL_REFUSED', message: expect.stringContaining('reason differ') } });
  // Refused kills changed nothing: both tasks still wait.
  expect((await queryState(handle.workflowId)).status).toBe('running');
  expect((await queryState(other.workflowId)).status).toBe('running');
  expect((await killTask(env.client, { workflowId: handle.workflowId, key: oncall })).status).toBe('blocked');
  expect((await env.client.workflow.getHandle(other.workflowId).executeUpdate(killUpdate, { args: [{ requestedAt: new Date().toISOString(), signature }] })).status).toBe('blocked');
  expect((await followAgentTask(other)).status).toBe('blocked');
  expect((await followAgentTask(handle)).status).toBe('blocked');
});

it('a blocked sub-agent blocks and remediates its parent even when the parent\'s packs hold no response rule', async () => {
  const pack = await mkdtemp(join(tmpdir(), 'warden-pack-'));
  await writeFile(join(pack, 'rules.txt'), 'deny destructive tools\n');
  const before = shop.rows();
  const child = `child-${randomUUID().slice(0, 8)}`;
  const loop = Array.from({ length: 6 }, () => ({ tool: 'tick', args: { n: 1 } }));
  const result = await env.runTask(
    {
      user: 'erin@example.com',
      intent: 'tidy',
      agent: { name: `ops-${randomUUID().slice(0, 8)}`, model: { driver: 'scripted', script: [{ tool: 'sql.exec', args: { database: 'shop', sql: 'UPDATE orders SET qty = 50 WHERE id = 9' } }, { spawn: child }, { final: 'never' }] } },
      tools: { builtin: ['sql.exec'], custom: [{ name: 'tick', description: 'ticks', input: { type: 'object' }, source: 'return 1;' }] },
      grants: { tools: ['sql.exec', 'tick'], databases: ['shop'], subagents: [child] },
      resources: { workspace: shop.workspace, databases: { shop: shop.dbFile } },
      policyPacks: [pack],
      subagents: {
        [child]: {
          intent: 'tick',
          agent: { name: child, model: { driver: 'scripted', script: [...loop, { final: 'never' }] } },
          tools: { custom: [{ name: 'tick', description: 'ticks', input: { type: 'object' }, source: 'return 1;' }] },
          grants: { tools: ['tick'] },
          policies: ['block the task and roll it back when it makes the same call 3 times in a row'],
        },
      },
    },
    { baseDir: REPO_ROOT },
  );
  expect(result.status, result.reason).toBe('blocked');
  expect(result.children[0]?.status).toBe('blocked');
  expect(result.alerts).toEqual([expect.objectContaining({ source: 'subagent', response: 'remediate', stepIndex: 1, reason: `sub-agent ${child} was blocked` })]);
  expect(shop.rows()).toEqual(before);
});

it('a block signal sent by anyone but a parent whose block revoked the grant is ignored', async () => {
  const before = shop.rows();
  // 25 rows: the foundation pack holds the delete for approval, so the task waits with its grant live.
  const handle = await env.start(task([{ tool: 'tick', args: { n: 1 } }, { tool: 'sql.exec', args: { database: 'shop', sql: 'DELETE FROM orders WHERE id > 15' } }, { final: 'done' }]));
  await waitForState(handle.workflowId, (s) => s.pendingApprovals.length > 0);
  // Anyone who reaches the frontend can signal; the grant is not revoked, so the task goes on.
  await handle.signal(blockSignal, { reason: 'forged', remediate: true });
  await waitForSignalHandled(handle.workflowId);
  const state = await queryState(handle.workflowId);
  expect(state.status).toBe('running');
  expect(state.pendingApprovals).toHaveLength(1);
  await killTask(env.client, { workflowId: handle.workflowId, key: oncall });
  const result = await followAgentTask(handle);
  // The only alert is the kill's: the forged block raised nothing and blocked nothing.
  expect(result.alerts?.map((a) => a.source)).toEqual(['kill']);
  expect(result.status).toBe('blocked');
  expect(result.reason).toContain(`killed by ${oncall.name}`);
  expect(shop.rows()).toEqual(before);
});

/** Waits until the workflow has run the block signal's handler: its revocation check is recorded after the signal. */
async function waitForSignalHandled(workflowId: string): Promise<void> {
  for (;;) {
    const { events } = await env.client.workflow.getHandle(workflowId).fetchHistory();
    const signalled = (events ?? []).findIndex((e) => e.workflowExecutionSignaledEventAttributes != null);
    if (signalled >= 0 && (events ?? []).slice(signalled).some((e) => e.markerRecordedEventAttributes != null)) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

it('the model never sees the monitor: no score, reason or alert reaches its prompts', async () => {
  const model = await startFakeOpenAIServer();
  try {
    const call = (id: string) => toolCallsReply([toolCall('tick', { n: 7 }, id)]);
    model.enqueue(call('c1'), call('c2'), call('c3'), call('c4'), toolCallsReply([toolCall('final_answer', { answer: 'done', claims: [] }, 'c5')]));
    const result = await env.runTask({
      user: 'erin@example.com',
      intent: 'tick',
      agent: { name: `llm-${randomUUID().slice(0, 8)}`, model: { driver: 'openai-compatible', id: 'gpt-test', baseUrl: model.url } },
      tools: { custom: [{ name: 'tick', description: 'ticks', input: { type: 'object' }, source: 'return input.n;' }] },
      grants: { tools: ['tick'] },
      policies: ['alert when it makes the same call 3 times in a row'],
    });
    expect(result.status).toBe('completed');
    expect(result.steps.map((s) => s.monitor?.score)).toEqual([0, 0, 30, 45]);
    expect(result.alerts?.length).toBeGreaterThanOrEqual(1);
    expect(model.requests.length).toBe(5);
    for (const request of model.requests) expect(request.rawBody).not.toMatch(/anomaly|identical-loop|monitor|"score"|alert/i);
  } finally {
    await model.close();
  }
});

it('replays every history of this file (kills, holds, signals to sub-agents) deterministically', async () => {
  const { replayed, failures } = await replayTaskQueue(env);
  expect(failures).toEqual([]);
  expect(replayed).toBeGreaterThanOrEqual(7);
});
