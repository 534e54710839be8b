/**
 * Attack (s23, lead, the class of the failed-call egress finding): what a tool call did before it
 * FAILED was never counted. activities/run-tool.ts threw a custom tool's error without the
 * capability calls its sandbox gate had applied, and the workflow recorded nothing of a failed
 * call in the task's policy state, not even the call itself. So a rate rule saw none of it:
 * - `never make more than 2 calls of http.fetch per minute`: a tool that POSTs and then throws,
 *   called 5 times, POSTed 5 times (4 in the run that found it, the 5th held by the monitor);
 * - `never make more than 2 tool calls per minute`: a tool that throws was called 5 times.
 * Now the failure carries the applied capability calls (`effects` in its first details,
 * activities/call-outcome.ts) and the workflow counts the failed call (status `error`) and each
 * of them before the failure goes on (`countFailedCall` in workflows/tool-step.ts, patch
 * `warden-count-failed-calls`). The control: a tool that completes was already counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';
import { startLoopbackServer, type LoopbackServer } from '../support/monitor-kit';

let env: WardenTestEnv;
let hook: LoopbackServer;

beforeAll(async () => {
  hook = await startLoopbackServer();
  env = await startWardenTestEnv(process.env);
}, 600_000);

afterAll(async () => {
  await env?.close();
  await hook?.close();
});

function notifyTask(source: string, rule: string, calls: number): Record<string, unknown> {
  const url = `${hook.url}/post`;
  return {
    user: 'erin@example.com',
    intent: `post the status to ${url}`,
    agent: { name: 'notifier', model: { driver: 'scripted', script: [...Array.from({ length: calls }, () => ({ tool: 'notify', args: { url } })), { final: 'done' }] } },
    tools: { builtin: ['http.fetch'], custom: [{ name: 'notify', description: 'Posts the status to a URL.', source, capabilities: ['http.fetch'], effects: { urls: [{ arg: 'url' }], families: ['network'] } }] },
    grants: { tools: ['notify', 'http.fetch'], hosts: [hook.host] },
    resources: { hosts: [hook.host] },
    policies: [rule],
    limits: { maxSteps: 20, deadline: '5m' },
  };
}

const POST = "await warden.http.fetch(input.url, { method: 'POST', body: 'status' });";

describe('a rate rule counts what a tool call did, however the call ends', () => {
  it.each([
    ['its capability calls, the tool completing (control)', `${POST} return 'ok';`, 'never make more than 2 calls of http.fetch per minute', 2],
    ['its capability calls, the tool failing after them', `${POST} throw new Error('boom');`, 'never make more than 2 calls of http.fetch per minute', 2],
    ['the call itself, the tool failing', "throw new Error('boom');", 'never make more than 2 tool calls per minute', 0],
  ])('%s', async (_what, source, rule, posts) => {
    hook.received.length = 0;
    const result = await env.runTask(notifyTask(source, rule, 5));
    const seen = `status ${result.status}; hook got ${hook.received.length}; steps ${JSON.stringify(result.steps.map((s) => [s.tool, s.decision, s.error?.code, s.effects?.length]))}`;
    expect(hook.received.length, seen).toBe(posts);
    // The first two calls ran; the rule refuses the third (the call, or its capability call in the
    // gate), which ends the task (onDeny: stop).
    expect(result.steps.map((s) => s.decision), seen).toEqual(['allow', 'allow', 'deny']);
    expect(result.steps[2]!.error?.code, seen).toBe('ERR_POLICY_DENIED');
    expect(result.status, seen).toBe('denied');
    // A failed call's applied capability calls are in its record, as a completed call's are.
    if (posts > 0) expect(result.steps[0]!.effects?.some((e) => e.tool === 'http.fetch'), seen).toBe(true);
  });
});
