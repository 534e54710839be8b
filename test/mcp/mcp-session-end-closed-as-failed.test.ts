/**
 * Attack on close-as-Failed from the MCP side: an MCP session (`warden mcp serve`) ends its task
 * when the client disconnects, then reads the result with `handle.result()` (mcp/
 * task-session-server.ts `end`). A session task that did not complete (here: denied, onDeny stop)
 * now closes as a Failed workflow, so `end()` rejects instead of giving the result: `onEnded`
 * (which prints the outcome) never runs, and the transport's close handler calls it as
 * `void session.end(...)`, an unhandled rejection that ends a Node process by default.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { createTaskSession, serveTaskOverHttp } from '../../mcp/task-session-server';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
}, 120_000);
afterAll(async () => env?.close());

async function deniedTask() {
  const workspace = await mkdtemp(join(tmpdir(), 'warden-attack-mcp-'));
  return parseTask(
      {
        user: 'ide-user@example.com',
        intent: 'edit the notes',
        agent: { name: 'editor', model: { driver: 'mcp-client' } },
        tools: { builtin: ['fs.read', 'fs.write'] },
        grants: { tools: ['fs.read', 'fs.write'] },
        policies: ['never use fs.write'],
        limits: { onDeny: 'stop' },
        resources: { workspace },
      },
      'task.yaml',
      REPO_ROOT,
    );
}

describe('an MCP session whose task was denied', () => {
  it('ends with the task\'s result (denied), reported through onEnded', async () => {
    const task = await deniedTask();
    const ended: TaskResult[] = [];
    const session = createTaskSession({ client: env.client, taskQueue: env.taskQueue, task, onEnded: (r) => ended.push(r) });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await session.server.connect(serverSide);
    const client = new McpClient({ name: 'attacker-ide', version: '1' });
    await client.connect(clientSide);
    const call = await client.callTool({ name: 'fs.write', arguments: { path: 'x.txt', content: 'hi' } });
    expect(call.isError).toBe(true);
    await client.close();

    const outcome = await session.end('the client closed the session').then(
      (result) => ({ result }),
      (error: unknown) => ({ error: `${(error as Error).name}: ${(error as Error).message}` }),
    );
    expect(outcome).toMatchObject({ result: { status: 'denied' } });
    expect(ended.map((r) => r.status)).toEqual(['denied']);
  });

  it('over HTTP, a client ending its session leaves no unhandled rejection (it would end `warden mcp serve --http` and every other session)', async () => {
    const rejections: unknown[] = [];
    const onRejection = (reason: unknown) => rejections.push(reason);
    // Vitest's own handler stays; this one records what the process would die of.
    process.on('unhandledRejection', onRejection);
    const ended: TaskResult[] = [];
    const server = await serveTaskOverHttp({ client: env.client, taskQueue: env.taskQueue, task: await deniedTask(), onEnded: (r) => ended.push(r) });
    try {
      // Later versions of the server require a bearer token by default (generated when none is given).
      const token = (server as { bearerToken?: string }).bearerToken;
      const transport = new StreamableHTTPClientTransport(new URL(server.url), token === undefined ? {} : { requestInit: { headers: { authorization: `Bearer ${token}` } } });
      const client = new McpClient({ name: 'attacker-ide', version: '1' });
      await client.connect(transport);
      const call = await client.callTool({ name: 'fs.write', arguments: { path: 'x.txt', content: 'hi' } });
      expect(call.isError).toBe(true);
      await transport.terminateSession();
      await client.close();
      // The session's end either reports the result (onEnded) or rejects with nobody to catch it.
      await vi.waitFor(() => expect(ended.length + rejections.length).toBeGreaterThan(0), { timeout: 30_000, interval: 100 });
      expect(rejections.map((r) => `${(r as Error).name}: ${(r as Error).message}`)).toEqual([]);
      expect(ended.map((r) => r.status)).toEqual(['denied']);
    } finally {
      process.off('unhandledRejection', onRejection);
      await server.close().catch(() => undefined);
    }
  });
});
