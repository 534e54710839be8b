/**
 * Finding (issue 17 area, `warden mcp serve` stopped by a signal; severity medium): dabeffc made
 * SIGTERM/SIGHUP/SIGINT cancel the session's task over stdio, but `mcp serve --http` still waits
 * for SIGINT and SIGTERM only (`process.once` in cli/commands/mcp.ts): a SIGHUP (the terminal
 * that ran it closes, an ssh session drops) takes Node's default action and the process dies with
 * its sessions' tasks left RUNNING, for the next worker on the queue to carry on with nobody
 * driving them: the fault the stdio fix closed, on the other transport. (SIGINT/SIGTERM there end
 * each session as a client's close would, committing, and exit 0: not what the stdio path does.)
 *
 * Verdict: FIXED (was open). The fix followed the suggestion: one signal handling for both transports (the stdio
 * path's `INTERRUPT_EXIT_CODES` handlers), cancelling every open session's task; table over
 * {stdio, http} × {SIGTERM, SIGHUP, SIGINT}.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, afterEach, expect, it } from 'vitest';
import { connectClient } from '../../temporal/connect';
import { REPO_ROOT } from '../support/warden-test-env';
import { testTemporalAddress, testTemporalConfig } from '../support/temporal';

const root = fs.mkdtempSync(join(tmpdir(), 'warden-http-sighup-'));
afterAll(() => fs.rmSync(root, { recursive: true, force: true }));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

it("SIGHUP to warden mcp serve --http leaves no session's task running", async () => {
  const workspace = join(root, 'workspace');
  fs.mkdirSync(workspace);
  fs.writeFileSync(join(workspace, 'notes.txt'), 'draft');
  const taskFile = join(root, 'session.json');
  fs.writeFileSync(taskFile, JSON.stringify({ user: 'u@example.com', intent: 'edit the notes', agent: { name: 'editor', model: { driver: 'mcp-client' } }, tools: { builtin: ['fs.read'] }, grants: { tools: ['fs.read'] }, resources: { workspace } }));
  const queue = `atk2-http-${randomUUID()}`;
  const env = { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_STATE_DIR: join(root, 'state'), WARDEN_TEMPORAL_PORT: testTemporalAddress().address.split(':').pop()! };
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'warden.js'), 'mcp', 'serve', taskFile, '--http', '--no-auth', '--task-queue', queue], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  let stderr = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      const match = /over MCP streamable HTTP at (\S+)/.exec(stderr);
      if (match) resolve(match[1]!);
    });
    child.stdout!.resume();
    child.once('exit', () => reject(new Error(`exited:\n${stderr}`)));
  });
  const exited = new Promise<unknown>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const client = new McpClient({ name: 'ide', version: '1' });
  await client.connect(new StreamableHTTPClientTransport(new URL(url)), { timeout: 120_000 });
  const read = await client.callTool({ name: 'fs.read', arguments: { path: 'notes.txt' } }, undefined, { timeout: 120_000 });
  const workflowId = (read._meta as Record<string, unknown>)['warden/workflowId'] as string;
  expect(workflowId).toMatch(/^warden-mcp-editor-/);

  child.kill('SIGHUP');
  console.log('exit', await exited);
  const { client: temporalClient, connection } = await connectClient(testTemporalConfig());
  try {
    const status = (await temporalClient.workflow.getHandle(workflowId).describe()).status.name;
    // Cleanup: the test leaves nothing running on the shared server.
    if (status === 'RUNNING') await temporalClient.workflow.getHandle(workflowId).terminate('test cleanup');
    expect(status).not.toBe('RUNNING');
  } finally {
    await connection.close();
  }
}, 300_000);
