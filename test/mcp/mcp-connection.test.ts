/**
 * Connections to real MCP servers through the official SDK client: stdio servers from npm in the
 * OS sandbox, a streamable-HTTP server on loopback, a server that changes its tools mid-task,
 * and a hostile server whose attempts the sandbox contains.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CancelledFailure } from '@temporalio/common';
import { McpConnection } from '../../mcp/mcp-connection';
import { McpStdioServerSchema, McpHttpServerSchema } from '../../mcp/mcp-server-config';
import { makeTempDir, startLoopbackServer, type LoopbackServer } from '../sandbox/sandbox-test-kit';
import { FIXTURES, startEverythingHttpServer, testStartContext, textOf, type HttpMcpServer } from './mcp-test-kit';

const CALL = { timeoutMs: 20_000 };
const stdio = (input: Record<string, unknown>) => McpStdioServerSchema.parse(input);

describe('a stdio server from npm, in the OS sandbox', () => {
  let workspace: string;
  let overlayDir: string;
  let connection: McpConnection;

  beforeAll(async () => {
    workspace = makeTempDir('mcp-fs');
    overlayDir = path.join(makeTempDir('mcp-overlay'), 'task');
    fs.writeFileSync(path.join(workspace, 'notes.txt'), 'remember the milk');
    connection = await McpConnection.open(
      'files',
      stdio({ command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '/workspace'] }),
      testStartContext({ workspace: { root: workspace, overlayDir } }),
    );
  });
  afterAll(() => connection?.close());

  it('lists the tools under reversible Warden names and pins the list', () => {
    const names = connection.listing.tools.map((t) => t.name);
    expect(names).toContain('files.read_text_file');
    expect(names).toContain('files.write_file');
    expect(connection.listing.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(connection.listing.serverInfo?.name).toMatch(/filesystem/i);
    const write = connection.listing.tools.find((t) => t.mcpName === 'write_file');
    expect(write?.annotations).toMatchObject({ readOnlyHint: false });
  });

  it('reads workspace files and writes only into the task overlay', async () => {
    const read = await connection.callTool('read_text_file', { path: '/workspace/notes.txt' }, { ...CALL, pin: connection.listing.hash });
    expect(textOf(read)).toBe('remember the milk');
    const write = await connection.callTool('write_file', { path: '/workspace/out.txt', content: 'written by MCP' }, { ...CALL, pin: connection.listing.hash });
    expect(write.isError).toBe(false);
    expect(fs.existsSync(path.join(workspace, 'out.txt'))).toBe(false);
    expect(fs.readFileSync(path.join(overlayDir, 'upper', 'out.txt'), 'utf8')).toBe('written by MCP');
  });

  it('reports a tool error from the server as isError, not as a protocol failure', async () => {
    const result = await connection.callTool('read_text_file', { path: '/etc/passwd' }, { ...CALL, pin: connection.listing.hash });
    expect(result.isError).toBe(true);
  });
});

describe('a streamable-HTTP server on loopback', () => {
  let server: HttpMcpServer;
  let connection: McpConnection;
  beforeAll(async () => {
    server = await startEverythingHttpServer();
    connection = await McpConnection.open('everything', McpHttpServerSchema.parse({ url: server.url }), testStartContext());
  });
  afterAll(async () => {
    await connection?.close();
    await server?.stop();
  });

  it('cancels a call in flight when its signal aborts (a cancelled activity): the reason, not a tool failure; the unanswered call ends the session', async () => {
    const controller = new AbortController();
    const reason = new CancelledFailure('the activity was cancelled');
    const outcomes: string[] = [];
    // A minute-long operation: on code that ignores the signal the call resolves with its result.
    // `on-change`: no listing first, the request is on its way at once.
    const call = connection.callTool('trigger-long-running-operation', { duration: 60, steps: 60 }, { ...CALL, timeoutMs: 120_000, pin: connection.listing.hash, verify: 'on-change', signal: controller.signal, onCancelled: (o) => outcomes.push(o) });
    await new Promise((r) => setTimeout(r, 200));
    controller.abort(reason);
    await expect(call).rejects.toBe(reason);
    // The server does not answer a cancelled request (MCP's rule), so Warden cannot know it
    // stopped: the session is ended (test/mcp/mcp-call-cancel.test.ts), a new one serves.
    expect(outcomes).toEqual(['session-closed']);
    expect(connection.open).toBe(false);
    connection = await McpConnection.open('everything', McpHttpServerSchema.parse({ url: server.url }), testStartContext());
    expect(textOf(await connection.callTool('echo', { message: 'still here' }, { ...CALL, pin: connection.listing.hash }))).toContain('still here');
  }, 120_000);

  it('lists, pins and calls tools', async () => {
    const echo = connection.listing.tools.find((t) => t.mcpName === 'echo');
    expect(echo?.name).toBe('everything.echo');
    const result = await connection.callTool('echo', { message: 'hello over HTTP' }, { ...CALL, pin: connection.listing.hash });
    expect(textOf(result)).toContain('hello over HTTP');
  });
});

describe('rug pulls', () => {
  it.each([
    ['announced with notifications/tools/list_changed', []],
    ['made silently', ['--silent']],
  ])('refuses a server whose tool list changed after the pin (%s)', async (_label, flags) => {
    const connection = await McpConnection.open('dictionary', stdio({ command: 'node', args: [path.join(FIXTURES, 'rug-pull-server.mjs'), ...flags], workspace: 'none' }), testStartContext());
    try {
      const pin = connection.listing.hash;
      const first = await connection.callTool('lookup', { word: 'warden' }, { ...CALL, pin });
      expect(textOf(first)).toBe('definition of warden');
      const second = connection.callTool('lookup', { word: 'again' }, { ...CALL, pin });
      await expect(second).rejects.toMatchObject({ code: 'ERR_MCP_TOOLS_CHANGED' });
      await expect(second).rejects.toThrow(/changed lookup/);
    } finally {
      await connection.close();
    }
  });
});

describe('rug pulls with verify: on-change', () => {
  it('refuses the server once it announces a change', async () => {
    const connection = await McpConnection.open('dictionary', stdio({ command: 'node', args: [path.join(FIXTURES, 'rug-pull-server.mjs')], workspace: 'none', verify: 'on-change' }), testStartContext());
    try {
      const pin = connection.listing.hash;
      await connection.callTool('lookup', { word: 'first' }, { ...CALL, pin, verify: 'on-change' });
      await vi.waitFor(() => expect(connection.announcedChange).toBe(true), { timeout: 60_000 });
      await expect(connection.callTool('lookup', { word: 'second' }, { ...CALL, pin, verify: 'on-change' })).rejects.toMatchObject({ code: 'ERR_MCP_TOOLS_CHANGED' });
    } finally {
      await connection.close();
    }
  });

  it('does not list again before each call, so an unannounced change goes unseen (the documented trade)', async () => {
    const connection = await McpConnection.open('dictionary', stdio({ command: 'node', args: [path.join(FIXTURES, 'rug-pull-server.mjs'), '--silent'], workspace: 'none' }), testStartContext());
    try {
      const pin = connection.listing.hash;
      await connection.callTool('lookup', { word: 'first' }, { ...CALL, pin, verify: 'on-change' });
      const second = await connection.callTool('lookup', { word: 'second' }, { ...CALL, pin, verify: 'on-change' });
      expect(textOf(second)).toBe('definition of second');
      // The default mode catches it on the next call.
      await expect(connection.callTool('lookup', { word: 'third' }, { ...CALL, pin })).rejects.toMatchObject({ code: 'ERR_MCP_TOOLS_CHANGED' });
    } finally {
      await connection.close();
    }
  });
});

describe('a hostile stdio server', () => {
  let connection: McpConnection;
  let workspace: string;
  let overlayDir: string;
  let loopback: LoopbackServer;
  beforeAll(async () => {
    loopback = await startLoopbackServer((_req, res) => res.end('reached'));
    workspace = makeTempDir('mcp-hostile');
    overlayDir = path.join(makeTempDir('mcp-hostile-overlay'), 'task');
    process.env['WARDEN_TEST_WORKER_SECRET'] = 'sk-worker-secret';
    connection = await McpConnection.open(
      'hostile',
      stdio({ command: 'node', args: [path.join(FIXTURES, 'hostile-server.mjs')], maxProcesses: 48 }),
      testStartContext({ workspace: { root: workspace, overlayDir }, env: process.env }),
    );
  });
  afterAll(async () => {
    delete process.env['WARDEN_TEST_WORKER_SECRET'];
    await connection?.close();
    await loopback?.close();
  });
  const call = async (tool: string, args: Record<string, unknown> = {}) => textOf(await connection.callTool(tool, args, { ...CALL, pin: connection.listing.hash }));

  it('cannot open a network connection', async () => {
    expect(await call('fetch_url', { url: `http://127.0.0.1:${loopback.port}/exfiltrate` })).toBe('error: ECONNREFUSED');
    expect(loopback.hits).toEqual([]);
  });

  it('cannot read /root', async () => {
    expect(await call('list_dir', { path: '/root' })).toBe('error: ENOENT');
    expect(await call('read_file', { path: '/etc/shadow' })).toBe('ok: ');
  });

  it('cannot write outside the workspace, and its workspace writes land in the overlay', async () => {
    expect(await call('write_file', { path: '/etc/evil', content: 'x' })).toMatch(/^error: (EROFS|EACCES)/);
    expect(await call('write_file', { path: '/workspace/../usr/evil', content: 'x' })).toMatch(/^error: (EROFS|EACCES)/);
    expect(await call('write_file', { path: '/workspace/inside.txt', content: 'x' })).toBe('ok: written');
    expect(fs.existsSync(path.join(workspace, 'inside.txt'))).toBe(false);
    expect(fs.existsSync(path.join(overlayDir, 'upper', 'inside.txt'))).toBe(true);
  });

  it('sees none of the worker environment', async () => {
    const env = JSON.parse((await call('environment')).slice(0)) as Record<string, string>;
    expect(Object.values(env)).not.toContain('sk-worker-secret');
  });

  it('survives its own fork bomb, contained by the process limit', async () => {
    expect(await call('fork_bomb')).toBe('ok: bomb ended; the server still answers; fork failures seen: true');
    expect(await call('list_dir', { path: '/workspace' })).toMatch(/^ok: /);
  });

  it('leaves no process behind once closed', async () => {
    const extra = await McpConnection.open('hostile', stdio({ command: 'node', args: [path.join(FIXTURES, 'hostile-server.mjs'), 'marker-4711'], workspace: 'none' }), testStartContext());
    expect(countProcesses('marker-4711')).toBe(1);
    await extra.close();
    expect(countProcesses('marker-4711')).toBe(0);
  });
});

describe('failures', () => {
  it('names the install command for a package that is not installed', async () => {
    const open = McpConnection.open('ghost', stdio({ command: 'npx', args: ['-y', '@example/not-installed-server'] }), testStartContext());
    await expect(open).rejects.toMatchObject({ code: 'ERR_MCP_NOT_INSTALLED' });
    await expect(open).rejects.toThrow(/warden mcp install @example\/not-installed-server/);
  });

  it('reports a server that exits at start with its stderr', async () => {
    const open = McpConnection.open('broken', stdio({ command: 'sh', args: ['-c', 'echo cannot start >&2; exit 3'], workspace: 'none' }), testStartContext({ startTimeoutMs: 10_000 }));
    await expect(open).rejects.toMatchObject({ code: 'ERR_MCP_UNAVAILABLE' });
    await expect(open).rejects.toThrow(/cannot start/);
  });

  it('refuses a declared environment variable the worker does not have', async () => {
    const open = McpConnection.open('needs-key', stdio({ command: 'node', args: ['-e', ''], env: ['TEST_ABSENT_KEY'] }), testStartContext());
    await expect(open).rejects.toThrow(/TEST_ABSENT_KEY is declared but not set/);
  });
});

function countProcesses(needle: string): number {
  const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return ps.stdout.split('\n').filter((line) => line.includes(needle) && line.startsWith('node')).length;
}
