/**
 * `warden mcp serve` over stdio stopped by a signal (issue 17): an MCP client stops its stdio
 * server by closing stdin and then, if it does not exit, SIGTERM; a terminal that closes sends
 * SIGHUP, Ctrl-C SIGINT. Node's default action exited at once and left the session's task RUNNING,
 * for the next worker to carry on with nobody driving it. Now each of those signals cancels the
 * session's task (its compensations run) and the process exits 128 + the signal's number; a signal
 * before any session started a task starts none.
 *
 * Real parts: the real CLI (bin/warden.js) as a child process, the MCP SDK's own client over its
 * stdio (a minimal Transport over the child's pipes, with the SDK's framing, so the test holds the
 * child and its exit code), the real Temporal server and the task's workflow.
 */
import type { ChildProcess } from 'node:child_process';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';
import { childTransport, serveMcpTask, type ServedTask } from '../support/mcp-serve-child';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
}, 180_000);
afterAll(async () => env?.close(), 60_000);

const children: ChildProcess[] = [];
afterEach(() => {
  for (const child of children.splice(0)) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
});

/** `warden mcp serve <task>` as a child process, its stderr collected. */
const serve = (): ServedTask =>
  serveMcpTask(
    'serve-signal',
    {
      user: 'ide-user@example.com',
      intent: 'edit the notes in my editor',
      agent: { name: 'editor', model: { driver: 'mcp-client' } },
      tools: { builtin: ['fs.read'] },
      grants: { tools: ['fs.read'] },
    },
    children,
  );

/** Resolves once `text()` contains `needle` (the child's stderr), or rejects when the child exits first. */
async function waitFor(text: () => string, needle: string, exited: Promise<unknown>): Promise<void> {
  let done = false;
  void exited.then(() => (done = true));
  while (!text().includes(needle)) {
    if (done) throw new Error(`the server exited before "${needle}":\n${text()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('warden mcp serve over stdio, stopped by a signal', () => {
  it.each<[NodeJS.Signals, number]>([
    ['SIGTERM', 143],
    ['SIGHUP', 129],
    ['SIGINT', 130],
  ])('%s cancels the session\'s task and exits %i', async (signal, exitCode) => {
    const { child, stderr, exited } = serve();
    const client = new McpClient({ name: 'test-ide', version: '1.0.0' });
    await client.connect(childTransport(child), { timeout: 120_000 });
    const read = await client.callTool({ name: 'fs.read', arguments: { path: 'notes.txt' } }, undefined, { timeout: 120_000 });
    expect(read.isError).toBeFalsy();
    const workflowId = (read._meta as Record<string, unknown>)['warden/workflowId'] as string;
    expect(workflowId).toMatch(/^warden-mcp-editor-/);

    child.kill(signal);
    expect(await exited, stderr()).toEqual({ code: exitCode, signal: null });
    // The task is not left running: cancelled.
    expect((await env.client.workflow.getHandle(workflowId).describe()).status.name).toBe('CANCELLED');
    expect(stderr()).toContain(`${signal}: cancelling the session's task`);
    expect(stderr()).toContain(`task ${workflowId} cancelled`);
  }, 240_000);

  it('a signal before any client started a session starts no task and exits 143', async () => {
    const { child, stderr, exited } = serve();
    await waitFor(stderr, 'over MCP stdio', exited);
    child.kill('SIGTERM');
    expect(await exited, stderr()).toEqual({ code: 143, signal: null });
    expect(stderr()).not.toContain('session started task');
  }, 240_000);
});
