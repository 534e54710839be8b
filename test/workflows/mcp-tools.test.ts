/**
 * MCP servers as tool sources in real runs on the Temporal server: a real npm server over stdio
 * (in the OS sandbox) and one over streamable HTTP, guarded end to end; an ungranted MCP tool
 * denied; a server that changes its tool list mid-task refused; the pin recorded in custody.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WARDEN_ATTR } from '../../custody/attributes';
import { LedgerReader } from '../../custody/ledger-reader';
import type { LedgerRecord } from '../../custody/ledger-record';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { FIXTURES, REPO_ROOT, replayHistories, startEverythingHttpServer, type HttpMcpServer } from '../mcp/mcp-test-kit';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { mcpPackagesDir: REPO_ROOT, sandboxReadOnlyPaths: [FIXTURES] });
});
afterAll(async () => env?.close());

function readRecords(taskId: string): LedgerRecord[] {
  const reader = LedgerReader.open({ stateDir: TEST_STATE_DIR });
  try {
    return reader.records(taskId);
  } finally {
    reader.close();
  }
}

function task(workspace: string, mcp: Record<string, unknown>, granted: string[], script: unknown[], extra: Record<string, unknown> = {}) {
  return {
    user: 'mia@example.com',
    intent: 'update the notes',
    agent: { name: 'scribe', model: { driver: 'scripted', script } },
    tools: { mcp },
    grants: { tools: granted },
    resources: { workspace },
    limits: { onDeny: 'continue', toolTimeout: '20s' },
    ...extra,
  };
}

describe('a stdio MCP server from npm, guarded end to end', () => {
  it('runs granted tools as steps, denies an ungranted one, and commits the server’s writes with the task', async () => {
    const workspace = makeTempDir('wf-mcp');
    fs.writeFileSync(path.join(workspace, 'notes.txt'), 'buy milk');
    const result = await env.runTask(
      task(
        workspace,
        { files: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/workspace'] } },
        ['files.read_text_file', 'files.write_file'],
        [
          { tool: 'files.read_text_file', args: { path: '/workspace/notes.txt' } },
          { tool: 'files.write_file', args: { path: '/workspace/notes.txt', content: 'buy milk and eggs' } },
          { tool: 'files.move_file', args: { source: '/workspace/notes.txt', destination: '/workspace/gone.txt' } },
          { final: 'updated' },
        ],
      ),
    );
    expect(result.status, JSON.stringify(result.steps)).toBe('completed');
    const [read, write, move] = result.steps;
    expect(read?.output).toMatchObject({ content: [{ type: 'text', text: 'buy milk' }] });
    expect(read?.credential?.scope).toEqual(['files.read_text_file:invoke']);
    expect(write?.error).toBeUndefined();
    expect(move).toMatchObject({ decision: 'deny', error: { code: 'ERR_TOOL_NOT_GRANTED' } });
    // Written through the overlay, committed with the task.
    expect(result.recovery?.committed).toEqual(['notes.txt']);
    expect(fs.readFileSync(path.join(workspace, 'notes.txt'), 'utf8')).toBe('buy milk and eggs');
    expect(fs.existsSync(path.join(workspace, 'gone.txt'))).toBe(false);
    // The server is gone once the task has ended.
    expect(env.worker.mcp.size).toBe(0);
  });

  it('records the pinned tool list in custody', async () => {
    const workspace = makeTempDir('wf-mcp-custody');
    const result = await env.runTask(
      task(workspace, { files: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/workspace'] } }, ['files.list_directory'], [
        { tool: 'files.list_directory', args: { path: '/workspace' } },
        { final: 'listed' },
      ]),
    );
    expect(result.status).toBe('completed');
    if (env.telemetry === undefined) return; // WARDEN_TELEMETRY=0: no ledger to look at
    await env.telemetry.forceFlush();
    const opened = readRecords(result.workflowId).find((r) => (r.body as { name?: string }).name?.includes('openToolSources'));
    const attributes = (opened?.body as { attributes?: Record<string, unknown> } | undefined)?.attributes ?? {};
    expect(attributes[WARDEN_ATTR.mcpServers]).toEqual(['files']);
    expect(String(attributes[WARDEN_ATTR.mcpPins])).toMatch(/^files:[0-9a-f]{64}$/);
    expect(attributes[WARDEN_ATTR.mcpTools]).toContain('files.list_directory');
  });
});

describe('a streamable-HTTP MCP server on loopback', () => {
  let server: HttpMcpServer;
  beforeAll(async () => {
    server = await startEverythingHttpServer();
  });
  afterAll(() => server?.stop());

  it('is reached, pinned and called as a guarded step', async () => {
    const workspace = makeTempDir('wf-mcp-http');
    const result = await env.runTask(
      task(workspace, { everything: { url: server.url } }, ['everything.echo'], [
        { tool: 'everything.echo', args: { message: 'hello from the agent' } },
        { tool: 'everything.get--sum', args: { a: 1, b: 2 } },
        { final: 'echoed' },
      ]),
    );
    expect(result.status).toBe('completed');
    expect(JSON.stringify(result.steps[0]?.output)).toContain('hello from the agent');
    expect(result.steps[1]).toMatchObject({ decision: 'deny', error: { code: 'ERR_TOOL_NOT_GRANTED' } });
  });
});

describe('rug pulls', () => {
  it('refuses every call once the server has changed its tool list', async () => {
    const workspace = makeTempDir('wf-rug');
    const result = await env.runTask(
      task(
        workspace,
        { dictionary: { command: 'node', args: [path.join(FIXTURES, 'rug-pull-server.mjs'), '--silent'], workspace: 'none' } },
        ['dictionary.lookup'],
        [{ tool: 'dictionary.lookup', args: { word: 'first' } }, { tool: 'dictionary.lookup', args: { word: 'second' } }, { final: 'looked up' }],
      ),
    );
    expect(result.steps[0]?.output).toMatchObject({ content: [{ text: 'definition of first' }] });
    expect(result.steps[1]?.error?.code).toBe('ERR_MCP_TOOLS_CHANGED');
  });
});

describe('compensation of MCP tools', () => {
  it('undoes a call with the tool the task file names, its arguments mapped from the original call', async () => {
    const workspace = makeTempDir('wf-mcp-undo');
    const memory = {
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-memory'],
      setEnv: { MEMORY_FILE_PATH: '/workspace/memory.jsonl' },
      tools: { create_entities: { compensate: { tool: 'memory.delete_entities', args: { entityNames: '/args/entities/*/name' } } } },
    };
    const entities = [
      { name: 'alice', entityType: 'person', observations: ['likes tea'] },
      { name: 'bob', entityType: 'person', observations: [] },
    ];
    const result = await env.runTask(
      task(workspace, { memory }, ['memory.create_entities', 'memory.delete_entities', 'memory.read_graph'], [
        { tool: 'memory.create_entities', args: { entities } },
        { tool: 'memory.read_graph', args: {} },
        { tool: 'memory.delete_relations', args: { relations: [] } },
        { final: 'never' },
      ], { limits: { onDeny: 'stop', toolTimeout: '20s' } }),
    );
    expect(result.status).toBe('denied');
    expect(JSON.stringify(result.steps[1]?.output)).toContain('alice');
    const undo = result.recovery?.rolledBack.find((r) => r.kind === 'tool');
    expect(undo, JSON.stringify(result.recovery)).toMatchObject({ forTool: 'memory.create_entities', status: 'done' });
  });
});

describe('names and failures', () => {
  it('fails the task clearly when a server cannot start', async () => {
    const workspace = makeTempDir('wf-mcp-missing');
    const result = await env.runTask(task(workspace, { ghost: { command: 'npx', args: ['-y', '@example/not-installed'] } }, ['ghost.anything'], [{ final: 'never' }]));
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/^ERR_MCP_NOT_INSTALLED: .*warden mcp install @example\/not-installed/);
  });
});

it('replays every history of this file deterministically', async () => {
  const { failures, replayed } = await replayHistories(env.client, { taskQueue: env.taskQueue });
  expect(failures).toEqual([]);
  expect(replayed).toBeGreaterThanOrEqual(env.workflowIds.length);
});
