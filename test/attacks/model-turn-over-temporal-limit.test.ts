/**
 * Attack (issue 12, payload budget on the original loop): a model (or an injection steering it)
 * proposes arguments larger than Temporal's 2 MiB payload limit.
 *
 * The README promises that arguments over Warden's payload budget end the task with
 * ERR_PAYLOAD_TOO_LARGE and that the saga runs (dataplane/README.md). The existing test sends
 * 1.7 MB, "under Temporal's 2 MiB (so the turn itself is recorded)". The data flow bounds the
 * model's turn itself (`MODEL_TURN_MAX_BYTES`, activities/next-turn.ts); the original loop's
 * `proposeTurn` does not: a turn of 2.5 MB cannot complete its activity at all. The task should
 * still end failed with ERR_PAYLOAD_TOO_LARGE, its earlier write rolled back, in bounded time.
 * Found: it ended `ERR_UNKNOWN: Complete result exceeds size limit.` (Temporal's words; the error
 * named neither the model, the turn nor the limit to raise). Fixed: both loops pass every turn
 * through one cap (`refuseOversizedTurn`, activities/next-turn.ts); the original loop's is Warden's
 * payload budget, and the reason names the turn and the limit.
 */
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { PAYLOAD_BUDGET_BYTES } from '../../task/data-refs';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';
import { startFakeOpenAIServer, toolCall, toolCallsReply, type FakeOpenAIServer } from '../support/fake-openai-server';

let env: WardenTestEnv;
let model: FakeOpenAIServer;
beforeAll(async () => {
  env = await startWardenTestEnv();
  model = await startFakeOpenAIServer();
});
afterAll(async () => {
  await env?.close();
  await model?.close();
});

describe('a model turn larger than Temporal\'s payload limit on the original loop', () => {
  it('ends the task ERR_PAYLOAD_TOO_LARGE and rolls it back', async () => {
    const workspace = await mkdtemp(path.join(tmpdir(), 'warden-turn-too-large-'));
    const huge = toolCallsReply([toolCall('fs__write', { path: 'second.txt', content: 'y'.repeat(2_600_000) })]);
    model.enqueue(
      toolCallsReply([toolCall('fs__write', { path: 'first.txt', content: 'written before the large turn' })]),
      // Replies to every retry of the turn the same way (a model asked again says the same).
      ...Array.from({ length: 20 }, () => huge),
    );
    const task = parseTask(
      {
        user: 'ops@example.com',
        intent: 'write a file, then a huge one',
        agent: { name: 'writer', model: { driver: 'openai-compatible', id: 'gpt-test', baseUrl: model.url } },
        tools: { builtin: ['fs.write'] },
        grants: { tools: ['fs.write'] },
        limits: { deadline: '20m' },
        resources: { workspace },
      },
      'turn-too-large.yaml',
      REPO_ROOT,
    );
    const workflowId = `turn-too-large-${Date.now()}`;
    const handle = await env.start(task, workflowId);
    const result = await Promise.race([
      followAgentTask(handle),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no result after 8 minutes; the model was asked ${model.requests.length} times`)), 480_000)),
    ]).catch(async (error: Error) => {
      const described = await handle.describe();
      await handle.terminate('test over').catch(() => undefined);
      throw new Error(`${error.message}; workflow ${described.status.name}, pending activities: ${JSON.stringify((described.raw.pendingActivities ?? []).map((a) => ({ type: a.activityType?.name, attempt: a.attempt, failure: a.lastFailure?.message })))}`);
    });
    expect({ status: result.status, reason: result.reason?.split(':')[0], committed: existsSync(path.join(workspace, 'first.txt')), modelAsked: model.requests.length }, result.reason).toEqual({
      status: 'failed',
      reason: 'ERR_PAYLOAD_TOO_LARGE',
      committed: false,
      modelAsked: 2,
    });
    expect(result.reason).toMatch(new RegExp(`the model's turn 1 is \\d+ bytes as sent, more than ${PAYLOAD_BUDGET_BYTES}`));
  }, 600_000);
});
