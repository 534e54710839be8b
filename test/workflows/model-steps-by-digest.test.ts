/**
 * History grows linearly with the steps, whatever the tools return. Every step holds its tool's
 * output, and the agent loop used to send every step so far to every model turn: with a tool
 * answering 100 KB per call (an MCP server may answer up to 1 MiB), nine steps cost ~6 MB of
 * history (step k costing k outputs), `warden replay` could not fetch it (4 MiB gRPC message)
 * and a few more steps would have Temporal terminate the task with no compensation. Now a turn gets the steps since the last
 * turn and the earlier ones by digest (workflows/model-turn-input.ts,
 * activities/model-context-store.ts): each output is in history a fixed number of times (its
 * call's result, the next turn's new steps, the task's result), however many steps follow.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assembleTaskResult } from '../../client/assemble-task-result';
import { openBlobStore } from '../../dataplane/blob-store';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { startHostileHttpMcpServer, textResult, type HostileServer } from '../support/hostile-http-mcp-server';
import { startFakeOpenAIServer, toolCall, toolCallsReply, type FakeOpenAIServer } from '../support/fake-openai-server';

const OUTPUT_CHARS = 100_000;
/** Text like a page's (a 200 KB run of one character takes the provenance index a minute: a separate finding). */
const PAGE = Array.from({ length: 20_000 }, (_, i) => `w${i % 4999}`).join(' ').slice(0, OUTPUT_CHARS);

let env: WardenTestEnv;
let server: HostileServer;
let model: FakeOpenAIServer;
beforeAll(async () => {
  env = await startWardenTestEnv();
  model = await startFakeOpenAIServer();
  server = await startHostileHttpMcpServer({
    tools: [{ name: 'fetch', description: 'Fetches a page.', annotations: { readOnlyHint: true } }],
    onCall: (call, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(textResult(call.id, `${String(call.arguments.q)}: ${PAGE}`));
    },
  });
});
afterAll(async () => {
  await server?.close();
  await env?.close();
  await model?.close();
});

/** The tool results the model's last request carried back to it (OpenAI `tool` messages). */
function toolMessagesOfLastRequest(): string[] {
  const body = model.requests[model.requests.length - 1]?.body as { messages: { role: string; content: string | null }[] };
  return body.messages.filter((m) => m.role === 'tool').map((m) => m.content ?? '');
}

async function run(steps: number): Promise<{ workflowId: string; bytes: number; outputs: number[] }> {
  model.enqueue(
    ...Array.from({ length: steps }, (_, i) => toolCallsReply([toolCall('pages__fetch', { q: `page ${i}` })])),
    toolCallsReply([toolCall('final_answer', { answer: 'done' })]),
  );
  const given = await env.runTask({
    user: 'sam@example.com',
    intent: 'read the pages',
    agent: { name: 'reader', model: { driver: 'openai-compatible', id: 'gpt-test', baseUrl: model.url } },
    tools: { mcp: { pages: { url: server.url } } },
    grants: { tools: ['pages.fetch'] },
    resources: { workspace: makeTempDir('big-outputs') },
    limits: { toolTimeout: '20s' },
  });
  // Outputs over 16 KiB are claim checks in history (warden-claim-check-outputs): the client reads them back, as `warden run` does.
  const result = await assembleTaskResult(given, openBlobStore(TEST_STATE_DIR));
  expect(result.status, result.reason).toBe('completed');
  const description = await env.client.workflow.getHandle(result.workflowId).describe();
  return { workflowId: result.workflowId, bytes: Number(description.historySize), outputs: result.steps.map((s) => JSON.stringify(s.output).length) };
}

describe('a tool answering 100 KB per call', () => {
  let nine: Awaited<ReturnType<typeof run>>;

  it('costs each output a fixed number of times: a step costs the same at step 9 as at step 2', async () => {
    const one = await run(1);
    const three = await run(3);
    nine = await run(9);
    // The model's last turn still carried every earlier result back, in order: the earlier
    // steps were read back by digest, not dropped.
    expect(nine.outputs.every((chars) => chars > OUTPUT_CHARS)).toBe(true);
    const results = toolMessagesOfLastRequest();
    expect(results.map((content) => /page \d+(?=: w0 w1 )/.exec(content)?.[0])).toEqual(Array.from({ length: 9 }, (_, i) => `page ${i}`));
    const early = (three.bytes - one.bytes) / 2;
    const late = (nine.bytes - three.bytes) / 6;
    console.log(`history: ${one.bytes} B after 1 step, ${three.bytes} after 3, ${nine.bytes} after 9; per step ${Math.round(early)} B (steps 2-3), ${Math.round(late)} B (steps 4-9)`);
    // Linear: the later steps cost what the early ones did (quadratic growth would double it).
    expect(late).toBeLessThan(early * 1.1);
    // A fixed number of copies per step (call result, next turn's new steps, task result), not one per step so far.
    expect(late).toBeLessThan(OUTPUT_CHARS * 3.5);
  }, 240_000);

  it('warden replay works on the nine-step task', () => {
    expect(nine).toBeDefined();
    const replay = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'warden.js'), 'replay', nine.workflowId], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, TEMPORAL_ADDRESS: testTemporalAddress().address, TEMPORAL_NAMESPACE: testTemporalAddress().namespace },
      timeout: 180_000,
    });
    expect({ status: replay.status, error: /RESOURCE_EXHAUSTED[^\n]*/.exec(replay.stderr + replay.stdout)?.[0] ?? null }).toEqual({ status: 0, error: null });
  }, 240_000);
});
