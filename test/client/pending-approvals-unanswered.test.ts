/**
 * A running task that does not answer the approvals listing's query in time (its worker busy or
 * gone) may still hold an action for a human: every front end is told so, never shown "nothing
 * waits". Found as a console card, and what the approver had typed in it, vanishing under load
 * (test/console/console-browser.test.ts has the page's side).
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readPendingApprovals, unansweredReason } from '../../client/approvals';
import { approvalsCommand } from '../../cli/commands/approvals';
import { ConsoleData } from '../../console/console-data';
import { startConsoleServer, type ConsoleServer } from '../../console/console-server';
import { AGENT_TASK_WORKFLOW } from '../../workflows/definitions';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let consoleServer: ConsoleServer;
/** An agent task on a queue no worker polls: it runs, and answers no query. */
let silentId: string;

beforeAll(async () => {
  env = await startWardenTestEnv();
  silentId = `warden-silent-${randomUUID()}`;
  await env.client.workflow.start(AGENT_TASK_WORKFLOW, { taskQueue: `nobody-polls-${randomUUID()}`, workflowId: silentId, args: [{}] as never });
  // The listing reads visibility, which may lag the start under load (stop 25's CI): wait until the
  // listing's own query sees the task, so the rows below test the answer, not the index.
  await vi.waitFor(
    async () => {
      const seen: string[] = [];
      for await (const e of env.client.workflow.list({ query: `WorkflowId = "${silentId}" AND ExecutionStatus = "Running"` })) seen.push(e.workflowId);
      expect(seen).toEqual([silentId]);
    },
    { timeout: 60_000, interval: 250 },
  );
  consoleServer = await startConsoleServer({ data: new ConsoleData({ client: env.client, stateDir: TEST_STATE_DIR }) });
}, 180_000);

afterAll(async () => {
  await env?.client.workflow.getHandle(silentId).terminate('test over').catch(() => undefined);
  await consoleServer?.close();
  await env?.close();
});

describe('a running task that does not answer the listing', () => {
  it('is named by readPendingApprovals, with why, and lists no approval of it', async () => {
    const reading = await readPendingApprovals(env.client);
    expect(reading.unanswered).toContainEqual({ workflowId: silentId, reason: 'no answer within 2 s (its worker is busy or not running)' });
    expect(reading.approvals.filter((a) => a.workflowId === silentId)).toEqual([]);
  }, 60_000);

  it.each([[[] as string[]], [['--json']]])('warden approvals %j says on stderr that it did not answer; stdout keeps its shape', async (argv) => {
    const out: string[] = [];
    const err: string[] = [];
    const code = await approvalsCommand(argv, { stdout: (t) => void out.push(t), stderr: (t) => void err.push(t), env: process.env });
    expect(code).toBe(0);
    expect(err.join('')).toContain(`warden approvals: task ${silentId} did not answer (no answer within 2 s (its worker is busy or not running)); actions it holds, if any, are not listed`);
    if (argv.includes('--json')) expect(Array.isArray(JSON.parse(out.join('')))).toBe(true);
    else expect(out.join('')).not.toMatch(/^no actions are waiting for approval\n$/);
  }, 60_000);

  it('the console\'s /api/approvals names it under unanswered', async () => {
    const response = await fetch(`${consoleServer.url}/api/approvals`, { headers: { authorization: `Bearer ${consoleServer.token}` } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { approvals: { workflowId: string }[]; unanswered: { workflowId: string; reason: string }[] };
    expect(body.unanswered.map((u) => u.workflowId)).toContain(silentId);
    expect(body.approvals.map((a) => a.workflowId)).not.toContain(silentId);
  }, 60_000);
});

describe('why a task did not answer', () => {
  const past = () => Date.now() - 1;
  const ahead = () => Date.now() + 60_000;
  const deadlineReason = 'no answer within 2 s (its worker is busy or not running)';
  const grpc = (code: number, details: string) => Object.assign(new Error(`${code} ${details}`), { code });
  it.each([
    ['past the deadline, an error naming no deadline (as seen at load 13)', new Error('Failed to query Workflow', { cause: grpc(1, 'CANCELLED: Call cancelled') }), past, deadlineReason],
    ['DEADLINE_EXCEEDED deep in the chain, before the deadline', new Error('Failed to query Workflow', { cause: new Error('wrapped', { cause: grpc(4, 'DEADLINE_EXCEEDED: Deadline exceeded') }) }), ahead, deadlineReason],
    ['another failure: the outer message and what caused it', new Error('Failed to query Workflow', { cause: grpc(14, 'UNAVAILABLE: connection dropped') }), ahead, 'Failed to query Workflow: 14 UNAVAILABLE: connection dropped'],
    ['a plain error: its first line', new Error('workflow not found\nmore'), ahead, 'workflow not found'],
    ['not an Error', 'odd', ahead, 'odd'],
  ])('%s', (_what, error, deadline, reason) => {
    expect(unansweredReason(error, deadline())).toBe(reason);
  });
});
