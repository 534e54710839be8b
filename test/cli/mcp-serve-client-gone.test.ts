/**
 * `warden mcp serve` over stdio when its MCP client goes away while a call waits for approval:
 * a newcomer's `proc.run node -e …` was held by "never use fs.write without approval", their
 * client timed out and exited, and the server process stayed behind (parent pid 1) with the task
 * RUNNING until someone denied the call or the approval timeout passed. The client's end (stdin
 * closed, or the client process gone with both pipes) now ends the session as it does with no
 * call waiting: the held call is withdrawn undecided (ERR_APPROVAL_WITHDRAWN), the task ends
 * `completed` ("session ended: the client disconnected") and the process exits 0. The hold is
 * announced to the client first, as an MCP progress notification naming `warden approve`.
 *
 * Real parts: the real CLI (bin/warden.js) as a child process, the MCP SDK's own client over the
 * child's pipes (the SDK's framing; the test holds the child to close its pipes as a dying client
 * would), the real Temporal server, the task's workflow and the OS sandbox for `proc.run`.
 */
import type { ChildProcess } from 'node:child_process';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import type { Progress } from '@modelcontextprotocol/sdk/types.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { agentTaskResult } from '../../client/start-agent-task';
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

/** `warden mcp serve <task>` as a child process, its stderr collected; approvals wait an hour. */
const serve = (): ServedTask =>
  serveMcpTask(
    'serve-client-gone',
    {
      user: 'ide-user@example.com',
      intent: 'tidy the notes and check them with a small script',
      agent: { name: 'editor', model: { driver: 'mcp-client' } },
      tools: { builtin: ['fs.read', 'fs.write', 'proc.run'] },
      grants: { tools: ['fs.read', 'fs.write', 'proc.run'], commands: ['node'] },
      policies: ['never use fs.write without approval'],
      limits: { onDeny: 'continue', approvalTimeout: '1h', deadline: '2h' },
    },
    children,
  );

/** How the client goes away. */
const GOING_AWAY: Record<string, (child: ChildProcess) => void> = {
  // A client that closes its transport (the MCP stdio shutdown's first step) and then waits.
  'closes stdin': (child) => child.stdin!.end(),
  // A client process that exits or dies: both of its pipe ends close.
  'exits (both pipes close)': (child) => {
    child.stdin!.destroy();
    child.stdout!.destroy();
  },
};

const HELD_CALLS: Record<string, { tool: string; args: Record<string, unknown> }> = {
  // The newcomer's call: running a program can write the workspace, so the fs.write rule holds it.
  'proc.run node': { tool: 'proc.run', args: { command: 'node', args: ['-e', 'console.log(1+1)'] } },
  'fs.write': { tool: 'fs.write', args: { path: 'notes.txt', content: 'tidied' } },
};

describe('warden mcp serve over stdio, the client goes away while a call is held for approval', () => {
  it.each([
    ['proc.run node', 'exits (both pipes close)'],
    ['fs.write', 'closes stdin'],
  ])('%s held, the client %s: the call is withdrawn, the task completes, the process exits 0', async (callName, howName) => {
    const { child, stderr, exited } = serve();
    const client = new McpClient({ name: 'test-ide', version: '1.0.0' });
    await client.connect(childTransport(child), { timeout: 120_000 });
    const { tool, args } = HELD_CALLS[callName]!;
    let held!: (progress: Progress) => void;
    const announced = new Promise<Progress>((resolve) => (held = resolve));
    // The call never answers (nobody approves); the client hears of the hold through progress.
    const call = client.callTool({ name: tool, arguments: args }, undefined, { timeout: 3_600_000, onprogress: (progress) => held(progress) });
    call.catch(() => undefined);
    const progress = await announced;
    const approve = /warden approve (warden-mcp-editor-\S+) (\S+)`/.exec(progress.message ?? '');
    expect(approve, progress.message).not.toBeNull();
    const workflowId = approve![1]!;
    expect(stderr()).toContain(`warden approve ${workflowId} ${approve![2]}`);

    GOING_AWAY[howName]!(child);
    expect(await exited, stderr()).toEqual({ code: 0, signal: null });
    const handle = env.client.workflow.getHandle(workflowId);
    expect((await handle.describe()).status.name).toBe('COMPLETED');
    const result = await agentTaskResult(handle);
    expect(result.status).toBe('completed');
    const step = result.steps[result.steps.length - 1];
    expect(step).toMatchObject({ tool, executed: false, error: { code: 'ERR_APPROVAL_WITHDRAWN' } });
    expect(step?.approval).toMatchObject({ status: 'withdrawn', reason: 'the client disconnected' });
    expect(step?.approval?.approver).toBeUndefined();
  }, 300_000);
});
