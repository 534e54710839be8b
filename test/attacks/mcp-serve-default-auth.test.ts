/**
 * Attack: `warden mcp serve task.yaml --http` without `--token-env` (the default) accepts any
 * local process (any local user, any container sharing the host network, any sandbox of another
 * tool that reaches loopback). Each such client gets a session of the task: the task's grants, the
 * task's user as the principal, the workspace, its programs. The README says so ("without it, any
 * local process can open sessions of the task"); it is still the default of a zero-trust product.
 *
 * Expected: the HTTP transport needs a credential by default (a generated token printed once,
 * as Jupyter does, or refusing to start without `--token-env`), and an explicit flag opts out.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveTaskOverHttp, type HttpTaskServer } from '../../mcp/task-session-server';
import { parseTask } from '../../task/load-task-file';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';

let env: WardenTestEnv;
let served: HttpTaskServer | undefined;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => {
  await served?.close();
  await env?.close();
});

describe('warden mcp serve --http, started as the README shows but without --token-env', () => {
  it('does not serve the task to a local process that presents no credential', async () => {
    const workspace = makeTempDir('serve-noauth');
    fs.writeFileSync(path.join(workspace, '.env'), 'DB_PASSWORD=hunter2\n');
    const task = parseTask(
      {
        user: 'dana@example.com',
        intent: 'fix the failing test in src/',
        agent: { name: 'ide', model: { driver: 'mcp-client' } },
        tools: { builtin: ['fs.read', 'fs.list'] },
        grants: { tools: ['fs.read', 'fs.list'] },
        resources: { workspace },
        limits: { onDeny: 'continue', deadline: '2m' },
      },
      'task.yaml',
      workspace,
    );
    served = await serveTaskOverHttp({ client: env.client, taskQueue: env.taskQueue, task });
    // Another local process: no token, nothing but the port.
    const intruder = new McpClient({ name: 'intruder', version: '1' });
    let text = '';
    try {
      await intruder.connect(new StreamableHTTPClientTransport(new URL(served.url)));
      const result = await intruder.callTool({ name: 'fs.read', arguments: { path: '.env' } });
      text = JSON.stringify(result.content);
      await intruder.close();
    } catch (error) {
      text = `refused: ${(error as Error).message}`;
    }
    expect(text).not.toContain('hunter2');
  }, 120_000);
});
