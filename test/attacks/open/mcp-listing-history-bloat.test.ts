/**
 * Attack: a hostile MCP server pads its tool list to just under Warden's bound (256 KiB of
 * canonical JSON, 8 KiB per description). The pinned list then travels inside the task with every
 * activity, so each step of a task that uses the server adds about half a megabyte to the
 * workflow history, however small the call. Consequences, with one such server:
 * - after ~8 steps the history no longer fits a 4 MiB gRPC message: `warden replay <id>` (and
 *   `warden policy test --against`) cannot fetch it, so the forensic tools fail on the very tasks
 *   a hostile server was in;
 * - Temporal terminates a workflow at 50 MiB of history (~100 steps; ~50 with two such servers),
 *   with no compensation, commit or revocation.
 *
 * Expected: a step's history cost does not grow with a server's listing (the pin travels by its
 * hash, the listing once), and `warden replay` works on such a task.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../../support/warden-test-env';
import { testTemporalAddress } from '../../support/temporal';
import { makeTempDir } from '../../sandbox/sandbox-test-kit';
import { startHostileHttpMcpServer, textResult, type HostileServer } from '../../support/hostile-http-mcp-server';

let env: WardenTestEnv;
let server: HostileServer;
beforeAll(async () => {
  env = await startWardenTestEnv();
  const pad = 'Searches the index. '.repeat(400); // 8,000 characters: within MAX_DESCRIPTION_CHARS
  server = await startHostileHttpMcpServer({
    tools: Array.from({ length: 30 }, (_, i) => ({ name: `search${i}`, description: pad, annotations: { readOnlyHint: true } })),
    onCall: (call, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(textResult(call.id, 'ok'));
    },
  });
});
afterAll(async () => {
  await server?.close();
  await env?.close();
});

async function historyBytesAfter(steps: number): Promise<{ workflowId: string; bytes: number }> {
  const result = await env.runTask({
    user: 'sam@example.com',
    intent: 'search the index',
    agent: { name: 'searcher', model: { driver: 'scripted', script: [...Array.from({ length: steps }, () => ({ tool: 'index.search0', args: { q: 'x' } })), { final: 'done' }] } },
    tools: { mcp: { index: { url: server.url } } },
    grants: { tools: ['index.search0'] },
    resources: { workspace: makeTempDir('bloat') },
    limits: { toolTimeout: '20s' },
  });
  expect(result.status).toBe('completed');
  const description = await env.client.workflow.getHandle(result.workflowId).describe();
  return { workflowId: result.workflowId, bytes: Number(description.historySize) };
}

describe('a hostile server padding its tool list', () => {
  it('does not make every step cost its listing in history, nor break warden replay', async () => {
    const one = await historyBytesAfter(1);
    const nine = await historyBytesAfter(9);
    const perStep = (nine.bytes - one.bytes) / 8;
    const replay = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'warden.js'), 'replay', nine.workflowId], {
      cwd: REPO_ROOT,
      encoding: 'utf8',
      env: { ...process.env, TEMPORAL_ADDRESS: testTemporalAddress().address, TEMPORAL_NAMESPACE: testTemporalAddress().namespace },
      timeout: 120_000,
    });
    expect({
      perStepKiB: Math.round(perStep / 1024),
      replayExit: replay.status,
      replayError: /RESOURCE_EXHAUSTED[^\n]*/.exec(replay.stderr + replay.stdout)?.[0] ?? null,
    }).toEqual({ perStepKiB: expect.any(Number), replayExit: 0, replayError: null });
    expect(perStep).toBeLessThan(64 * 1024);
  }, 180_000);
});
