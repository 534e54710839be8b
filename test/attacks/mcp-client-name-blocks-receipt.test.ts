/**
 * Fixed finding, now a regression test (severity: medium; issue 17 area, lone-surrogate
 * handling at entry points).
 *
 * `warden mcp serve` runs a task for the connecting MCP client (an IDE's agent: untrusted) and
 * names the task's model after the client's `clientInfo` (mcp/task-session-server.ts `start`):
 * `id: clientInfo.name.slice(0, 200)`, `version: clientInfo.version.slice(0, 100)`. That entry
 * point is not made well-formed (the session's tool calls are, `wellFormedJson`), and the cut by
 * UTF-16 index can itself split a pair. The model id goes into the grant, the task result and the
 * signed receipt, whose in-toto Statement is canonical JSON: with a lone surrogate there,
 * `warden receipt` of the session's task throws.
 *
 * So the agent on the other end of an MCP session decides, with its client name, whether the user
 * can get a signed receipt of what it did in the session. Both ways are tried: a name holding a
 * lone surrogate as sent (JSON "\ud800" over stdio or HTTP), and a well-formed name of 199
 * characters and an emoji that Warden's own cut at 200 splits.
 *
 * Fixed: every cut of such text goes through cut-text.ts, which never splits a pair (at most N
 * units, one fewer rather than half a character), and the client's clientInfo is made
 * well-formed at entry (`wellFormedJson`).
 *
 * Safe behaviour asserted: the session task's model id is well-formed and `warden receipt` writes
 * its receipt (exit 0).
 *
 * Real parts: a real Temporal server and Warden worker (test/support), the MCP SDK's client and
 * the task session server, `warden receipt` as the CLI runs it.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client as McpClient } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main';
import type { CliIo } from '../../cli/cli-io';
import { createTaskSession } from '../../mcp/task-session-server';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { REPO_ROOT, TEST_STATE_DIR, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';
import { testTemporalAddress } from '../support/temporal';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
}, 120_000);
afterAll(async () => env?.close());

async function warden(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const { address } = testTemporalAddress();
  let stdout = '';
  let stderr = '';
  const io: CliIo = {
    stdout: (t) => void (stdout += t),
    stderr: (t) => void (stderr += t),
    env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: address.split(':').pop() },
  };
  let code: number;
  try {
    code = await main(args, io);
  } catch (error) {
    stderr += `threw ${String(error)}`;
    code = -1;
  }
  return { code, stdout, stderr };
}

const isWellFormed = (text: string): boolean => (text as string & { isWellFormed(): boolean }).isWellFormed();

describe("an MCP session task named after the client's clientInfo", () => {
  it.each([
    ['a lone surrogate as sent', 'ide-agent\ud800'],
    ["an emoji Warden's cut at 200 splits", `${'n'.repeat(199)}\u{1F600}`],
  ])('%s: the task still gets a well-formed model id and a signed receipt', async (_what, name) => {
    const workspace = await mkdtemp(join(tmpdir(), 'warden-attack-mcp-name-'));
    const task = await parseTask(
      {
        user: 'ide-user@example.com',
        intent: 'read the notes',
        agent: { name: 'editor', model: { driver: 'mcp-client' } },
        tools: { builtin: ['fs.list'] },
        grants: { tools: ['fs.list'] },
        resources: { workspace },
      },
      'task.yaml',
      REPO_ROOT,
    );
    const ended: TaskResult[] = [];
    const session = createTaskSession({ client: env.client, taskQueue: env.taskQueue, task, onEnded: (r) => ended.push(r) });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await session.server.connect(serverSide);
    const client = new McpClient({ name, version: '1' });
    await client.connect(clientSide);
    const call = await client.callTool({ name: 'fs.list', arguments: { path: '.' } });
    expect(call.isError ?? false).toBe(false);
    await client.close();
    const result = await session.end('the client closed the session');
    expect(result).toBeDefined();
    const workflowId = (result as TaskResult).workflowId;

    const out = await warden(['receipt', workflowId, '--out', join(workspace, '..', `${workflowId}.receipt.json`)]);
    expect(out.code, out.stderr).toBe(0);
    expect(isWellFormed((result as TaskResult).model.id)).toBe(true);
  }, 300_000);
});
