/**
 * Attack (was an open finding): a hostile MCP server pads its tool list to just under Warden's
 * bound (256 KiB of canonical JSON, 8 KiB per description). When the pinned list travelled inside
 * the task with every activity, each step of a task using the server added about half a megabyte
 * of workflow history however small the call: after ~8 steps `warden replay <id>` could not fetch
 * the history (4 MiB gRPC message), and Temporal would terminate the workflow at 50 MiB with no
 * compensation, commit or revocation.
 *
 * Now the list is recorded once (the result of the activity that pins it) and stored by its
 * digest; every later activity gets `{ server, transport, hash }` and reads the list back,
 * checked (mcp/mcp-listing-store.ts). The spec here: a step's history cost does not depend on
 * what a server lists (padded descriptions or padded schemas cost the same per step as a terse
 * list), and `warden replay` works on such a task.
 */
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { startHostileHttpMcpServer, textResult, type HostileServer, type HostileTool } from '../support/hostile-http-mcp-server';
import { canonicalBytes } from '../../custody/canonical-json';

const TOOLS = 30;
const pad = (chars: number) => 'Searches the index. '.repeat(Math.ceil(chars / 20)).slice(0, chars);

/** Listings of one size class each: the finding's padded descriptions, padding moved into the schemas, and a terse list to compare with. */
const LISTINGS: Record<string, HostileTool[]> = {
  terse: Array.from({ length: TOOLS }, (_, i) => ({ name: `search${i}`, description: 'Searches the index.', annotations: { readOnlyHint: true } })),
  'padded descriptions': Array.from({ length: TOOLS }, (_, i) => ({ name: `search${i}`, description: pad(8000), annotations: { readOnlyHint: true } })),
  'padded schemas': Array.from({ length: TOOLS }, (_, i) => ({
    name: `search${i}`,
    description: 'Searches the index.',
    inputSchema: { type: 'object', properties: { q: { type: 'string', description: pad(7900) } } },
    annotations: { readOnlyHint: true },
  })),
};

let env: WardenTestEnv;
const servers: Record<string, HostileServer> = {};
beforeAll(async () => {
  env = await startWardenTestEnv();
  for (const [name, tools] of Object.entries(LISTINGS)) {
    servers[name] = await startHostileHttpMcpServer({
      tools,
      onCall: (call, res) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(textResult(call.id, 'ok'));
      },
    });
  }
});
afterAll(async () => {
  for (const server of Object.values(servers)) await server.close();
  await env?.close();
});

async function historyBytesAfter(listing: string, steps: number): Promise<{ workflowId: string; bytes: number }> {
  const result = await env.runTask({
    user: 'sam@example.com',
    intent: 'search the index',
    // Distinct queries: the same call over and over is an anomaly the monitor holds for a human.
    agent: { name: 'searcher', model: { driver: 'scripted', script: [...Array.from({ length: steps }, (_, i) => ({ tool: 'index.search0', args: { q: `query ${i}` } })), { final: 'done' }] } },
    tools: { mcp: { index: { url: servers[listing]!.url } } },
    grants: { tools: ['index.search0'] },
    resources: { workspace: makeTempDir('bloat') },
    limits: { toolTimeout: '20s' },
  });
  expect(result.status).toBe('completed');
  expect(result.steps.map((s) => s.output)).toEqual(Array.from({ length: steps }, () => expect.anything()));
  const description = await env.client.workflow.getHandle(result.workflowId).describe();
  return { workflowId: result.workflowId, bytes: Number(description.historySize) };
}

function replay(workflowId: string): { status: number | null; error: string | null } {
  const run = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin', 'warden.js'), 'replay', workflowId], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    // The test worker's state folder: its custody ledger (replay cross-checks it) and workflow bundle.
    env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, TEMPORAL_ADDRESS: testTemporalAddress().address, TEMPORAL_NAMESPACE: testTemporalAddress().namespace },
    timeout: 120_000,
  });
  if (run.status !== 0) console.log(`warden replay ${workflowId}: exit ${run.status}\n${run.stdout}\n${run.stderr}`);
  return { status: run.status, error: /RESOURCE_EXHAUSTED[^\n]*/.exec(run.stderr + run.stdout)?.[0] ?? null };
}

describe('a hostile server padding its tool list', () => {
  const perStep: Record<string, number> = {};
  const nineSteps: Record<string, string> = {};

  it.each(Object.keys(LISTINGS))('%s: a step costs the same history whatever the server lists', async (listing) => {
    const listingBytes = canonicalBytes(LISTINGS[listing]).length;
    const one = await historyBytesAfter(listing, 1);
    const nine = await historyBytesAfter(listing, 9);
    perStep[listing] = (nine.bytes - one.bytes) / 8;
    nineSteps[listing] = nine.workflowId;
    // Far below one listing (the padded ones are ~240 KiB): the list is not copied per step.
    console.log(`${listing}: listing ${Math.round(listingBytes / 1024)} KiB, history ${one.bytes} B after 1 step, ${nine.bytes} B after 9, ${Math.round(perStep[listing]!)} B per step`);
    expect(perStep[listing]).toBeLessThan(16 * 1024);
    // The whole task holds the list once, in the event that pinned it.
    expect(nine.bytes).toBeLessThan(listingBytes + 1024 * 1024);
  }, 240_000);

  it('per step, a padded list costs what a terse one does', () => {
    const terse = perStep['terse'];
    expect(terse).toBeDefined();
    for (const listing of ['padded descriptions', 'padded schemas']) {
      // Within noise (ids, timestamps, the query text): nothing of the listing.
      expect(Math.abs(perStep[listing]! - terse!), listing).toBeLessThan(2048);
    }
  });

  it('warden replay works on a task that used the padded server', () => {
    for (const listing of ['padded descriptions', 'padded schemas']) {
      expect(nineSteps[listing]).toBeDefined();
      expect({ listing, ...replay(nineSteps[listing]!) }).toEqual({ listing, status: 0, error: null });
    }
  }, 240_000);
});
