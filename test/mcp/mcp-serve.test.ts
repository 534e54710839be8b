/**
 * An existing agent under Warden: the MCP SDK's own client drives `warden mcp serve` (a real
 * child process over stdio, and streamable HTTP on loopback) through a task: tools listed from
 * the grants, a denied call, a call held for approval and approved by a human, the session's end
 * committing the task's writes.
 */
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serveTaskOverHttp } from '../../mcp/task-session-server';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { randomUUID } from 'node:crypto';
import { decideApproval } from '../../client/approvals';
import { issueApproverKey, type ApproverKeyFile } from '../../identity/approval-decision';
import { openApproverStore } from '../../identity/approver-registry';
import { taskStateQuery } from '../../workflows/definitions';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { replayHistories } from './mcp-test-kit';

let env: WardenTestEnv;
let approver: ApproverKeyFile;
/** Every task a session started, replayed at the end. */
const sessions: string[] = [];
beforeAll(async () => {
  env = await startWardenTestEnv();
  const store = openApproverStore({ stateDir: TEST_STATE_DIR });
  approver = (await issueApproverKey(store, { name: `reviewer-${randomUUID().slice(0, 8)}` })).keyFile;
  store.close();
});
afterAll(async () => env?.close());

function taskDocument(workspace: string) {
  return {
    user: 'ide-user@example.com',
    intent: 'edit the notes in my editor',
    agent: { name: 'editor', model: { driver: 'mcp-client' } },
    tools: { builtin: ['fs.read', 'fs.write', 'fs.list'] },
    grants: { tools: ['fs.read', 'fs.write'] },
    policies: ['never use fs.write without approval'],
    resources: { workspace },
    limits: { onDeny: 'continue', approvalTimeout: '2m' },
  };
}

const textOf = (result: unknown) => (((result as { content?: unknown }).content as { type: string; text?: string }[] | undefined) ?? []).map((c) => c.text ?? '').join('');

/** Waits until the task holds a call for approval, then approves it as a registered approver would. */
async function approveWhenHeld(workflowId: string): Promise<void> {
  const handle = env.client.workflow.getHandle(workflowId);
  for (let i = 0; i < 600; i += 1) {
    const state = await handle.query(taskStateQuery);
    const pending = state.pendingApprovals[0];
    if (pending !== undefined) {
      await decideApproval(env.client, { workflowId, requestId: pending.requestId, approved: true, reason: 'looks right', key: approver });
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error('no call was held for approval');
}

/** The session as an agent would drive it; returns the workflow id it saw. */
async function driveSession(client: McpClient): Promise<string> {
  const { tools } = await client.listTools();
  expect(tools.map((t) => t.name).sort()).toEqual(['fs.read', 'fs.write']);
  expect(tools.find((t) => t.name === 'fs.read')?.annotations).toMatchObject({ readOnlyHint: true });

  const read = await client.callTool({ name: 'fs.read', arguments: { path: 'notes.txt' } });
  expect(read.isError).toBeFalsy();
  expect(textOf(read)).toBe('draft');
  const workflowId = (read._meta as Record<string, unknown>)['warden/workflowId'] as string;
  expect(workflowId).toMatch(/^warden-mcp-editor-/);
  sessions.push(workflowId);

  const denied = await client.callTool({ name: 'fs.list', arguments: {} });
  expect(denied.isError).toBe(true);
  expect(textOf(denied)).toMatch(/^ERR_TOOL_NOT_GRANTED: /);

  const [written] = await Promise.all([
    client.callTool({ name: 'fs.write', arguments: { path: 'notes.txt', content: 'final' } }, undefined, { timeout: 120_000 }),
    approveWhenHeld(workflowId),
  ]);
  expect(written.isError, textOf(written)).toBeFalsy();
  expect((written._meta as Record<string, unknown>)['warden/decision']).toBe('allow');
  return workflowId;
}

async function expectCommitted(workflowId: string, workspace: string): Promise<TaskResult> {
  const result = (await env.client.workflow.getHandle(workflowId).result()) as TaskResult;
  expect(result.status).toBe('completed');
  expect(result.model.id).toBe('test-ide');
  expect(result.steps.map((s) => [s.tool, s.decision])).toEqual([
    ['fs.read', 'allow'],
    ['fs.list', 'deny'],
    ['fs.write', 'allow'],
  ]);
  expect(result.steps[2]?.approval).toMatchObject({ status: 'approved', approver: approver.name, reason: 'looks right' });
  expect(fs.readFileSync(path.join(workspace, 'notes.txt'), 'utf8')).toBe('final');
  return result;
}

describe('warden mcp serve', () => {
  it('over stdio: the SDK client drives a task with a denied call and an approved one', async () => {
    const workspace = makeTempDir('serve-stdio');
    fs.writeFileSync(path.join(workspace, 'notes.txt'), 'draft');
    const taskFile = path.join(workspace, '..', `${path.basename(workspace)}.task.json`);
    fs.writeFileSync(taskFile, JSON.stringify(taskDocument(workspace)));
    const port = testTemporalAddress().address.split(':').pop()!;
    const transport = new StdioClientTransport({
      command: process.execPath,
      args: [path.join(REPO_ROOT, 'bin', 'warden.js'), 'mcp', 'serve', taskFile],
      cwd: REPO_ROOT,
      env: { ...(process.env as Record<string, string>), WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port, TEMPORAL_ADDRESS: '' },
      stderr: 'pipe',
    });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const client = new McpClient({ name: 'test-ide', version: '1.0.0' });
    await client.connect(transport, { timeout: 120_000 });
    let workflowId: string;
    try {
      workflowId = await driveSession(client);
    } finally {
      await client.close();
    }
    await expectCommitted(workflowId, workspace);
    expect(stderr).toContain(`session started task ${workflowId}`);
  });

  it('over streamable HTTP on loopback: one session is one task', async () => {
    const workspace = makeTempDir('serve-http');
    fs.writeFileSync(path.join(workspace, 'notes.txt'), 'draft');
    const task = parseTask(taskDocument(workspace), 'serve-http.json', workspace);
    const server = await serveTaskOverHttp({ client: env.client, taskQueue: env.taskQueue, task });
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/mcp$/);
      const transport = new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers: { authorization: `Bearer ${server.bearerToken}` } } });
      const client = new McpClient({ name: 'test-ide', version: '1.0.0' });
      await client.connect(transport);
      const workflowId = await driveSession(client);
      await transport.terminateSession();
      await client.close();
      await expectCommitted(workflowId, workspace);
      expect(server.sessions).toBe(0);
    } finally {
      await server.close();
    }
  });

  it('with a bearer token, refuses requests without it and serves those with it', async () => {
    const workspace = makeTempDir('serve-token');
    fs.writeFileSync(path.join(workspace, 'notes.txt'), 'draft');
    const task = parseTask(taskDocument(workspace), 'serve-token.json', workspace);
    const token = 'a-long-enough-test-token-4711';
    const server = await serveTaskOverHttp({ client: env.client, taskQueue: env.taskQueue, task, bearerToken: token });
    try {
      const anonymous = new McpClient({ name: 'intruder', version: '1' });
      await expect(anonymous.connect(new StreamableHTTPClientTransport(new URL(server.url)))).rejects.toThrow(/401|unauthorized/i);
      const client = new McpClient({ name: 'test-ide', version: '1.0.0' });
      const transport = new StreamableHTTPClientTransport(new URL(server.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } });
      await client.connect(transport);
      expect((await client.listTools()).tools.map((t) => t.name).sort()).toEqual(['fs.read', 'fs.write']);
      await transport.terminateSession();
      await client.close();
    } finally {
      await server.close();
    }
  });

  it('refuses a request whose Host header is not loopback (DNS rebinding)', async () => {
    const workspace = makeTempDir('serve-rebind');
    const task = parseTask(taskDocument(workspace), 'serve-rebind.json', workspace);
    const server = await serveTaskOverHttp({ client: env.client, taskQueue: env.taskQueue, task });
    try {
      // A page on evil.example whose name now resolves to 127.0.0.1 sends its own Host header.
      const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
      const status = await new Promise<number>((resolve, reject) => {
        const request = http.request(
          server.url,
          { method: 'POST', headers: { host: `evil.example:${server.port}`, authorization: `Bearer ${server.bearerToken}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' } },
          (response) => {
            response.resume();
            resolve(response.statusCode ?? 0);
          },
        );
        request.on('error', reject);
        request.end(body);
      });
      expect(status).toBe(403);
    } finally {
      await server.close();
    }
  });
});

it('replays every session task deterministically', async () => {
  expect(sessions.length).toBe(2);
  const { failures, replayed } = await replayHistories(env.client, { workflowIds: sessions });
  expect(failures).toEqual([]);
  expect(replayed).toBe(2);
});
