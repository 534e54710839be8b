/**
 * `warden mcp serve <task>` as a child process the test holds, and the MCP SDK's stdio framing
 * over its pipes (the SDK's StdioClientTransport spawns and hides its own child, so a test could
 * not signal it or read its exit code). Used by the CLI tests of how a stdio session ends.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ReadBuffer, serializeMessage } from '@modelcontextprotocol/sdk/shared/stdio.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { testTemporalAddress } from './temporal';
import { REPO_ROOT, TEST_STATE_DIR } from './warden-test-env';

export interface ServedTask {
  child: ChildProcess;
  /** What the child wrote on stderr so far. */
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/**
 * Writes `task` (a task file's fields, `resources.workspace` filled in with a fresh folder holding
 * `notes.txt`) and starts `warden mcp serve` on it against the test server. The child is pushed
 * onto `children`, for the test's afterEach to kill.
 */
export function serveMcpTask(label: string, task: Record<string, unknown>, children: ChildProcess[]): ServedTask {
  const workspace = makeTempDir(label);
  fs.writeFileSync(path.join(workspace, 'notes.txt'), 'draft');
  const taskFile = path.join(workspace, '..', `${path.basename(workspace)}.task.json`);
  fs.writeFileSync(taskFile, JSON.stringify({ ...task, resources: { workspace } }));
  const port = testTemporalAddress().address.split(':').pop()!;
  const child = spawn(process.execPath, [path.join(REPO_ROOT, 'bin', 'warden.js'), 'mcp', 'serve', taskFile], {
    cwd: REPO_ROOT,
    env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port, TEMPORAL_ADDRESS: '' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return { child, stderr: () => stderr, exited };
}

/** The SDK's stdio framing (newline-delimited JSON-RPC) over a child we hold. */
export function childTransport(child: ChildProcess): Transport {
  const buffer = new ReadBuffer();
  const transport: Transport = {
    async start() {
      child.stdout!.on('data', (chunk: Buffer) => {
        buffer.append(chunk);
        for (let message = buffer.readMessage(); message !== null; message = buffer.readMessage()) transport.onmessage?.(message);
      });
      child.once('exit', () => transport.onclose?.());
    },
    async send(message: JSONRPCMessage) {
      child.stdin!.write(serializeMessage(message));
    },
    async close() {
      child.stdin!.end();
    },
  };
  return transport;
}
