/**
 * Attack by a malicious tool (found while attacking custody off the hot path, issue 17): a tool
 * whose error message holds a lone surrogate (`throw new Error('bad ' + String.fromCharCode(0xd800))`
 * in a sandboxed custom tool; the same text can come from an MCP server's error or a program's
 * output) fails its activity with that message. Temporal's failure message is a protobuf
 * `string`, which must be UTF-8: Core refuses the whole activity completion ("Cannot decode
 * Completion from buffer: DecodeError { description: InvalidString ... ("Failure", "message") }")
 * and the worker stops ("Worker failed"). Every task on that worker stops with it (a standalone
 * `warden worker` serves many), and the failed call is never reported to Temporal.
 *
 * Fixed: the step fails ERR_TOOL_THREW with the message made well-formed (U+FFFD), the task goes
 * on to its next step, and the worker keeps running: one activity inbound interceptor, outermost
 * on both task queues, mends every failure's message, stack and name and its causes'
 * (worker/well-formed-failure.ts), whatever kind of tool or activity raised it.
 */
import { execFile } from 'node:child_process';
import { cpSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, it } from 'vitest';
import type { TaskResult } from '../../task/task-run';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT } from '../support/warden-test-env';

const BIN = join(REPO_ROOT, 'bin/warden.js');

it('a tool error holding a lone surrogate fails its step, not the worker', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'warden-lone-surrogate-'));
  cpSync(join(REPO_ROOT, 'examples/workspace'), join(dir, 'workspace'), { recursive: true });
  const file = join(dir, 'task.json');
  writeFileSync(
    file,
    JSON.stringify({
      user: 'alice@example.com',
      intent: 'Run the boom tool, then read notes.txt.',
      agent: { name: 'scribe', model: { driver: 'scripted', id: 's', version: '1', script: [{ tool: 'boom', args: {} }, { tool: 'fs.read', args: { path: 'notes.txt' } }, { final: 'done' }] } },
      tools: {
        builtin: ['fs.read'],
        custom: [{ name: 'boom', description: 'Throws.', input: { type: 'object', properties: {}, additionalProperties: false }, source: "throw new Error('bad ' + String.fromCharCode(0xd800));" }],
      },
      grants: { tools: ['fs.read', 'boom'] },
      limits: { maxSteps: 10, deadline: '2m' },
      resources: { workspace: './workspace' },
    }),
  );
  const port = testTemporalAddress().address.split(':').pop()!;
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_STATE_DIR: join(dir, 'state'), WARDEN_TEMPORAL_PORT: port };
  delete env.TEMPORAL_ADDRESS;
  let stdout = '';
  let stderr = '';
  try {
    ({ stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, 'run', file, '--json', '--worker', '--task-queue', `warden-lone-${Date.now()}`], { cwd: REPO_ROOT, env, maxBuffer: 16 * 1024 * 1024 }));
  } catch (error) {
    ({ stdout, stderr } = error as { stdout: string; stderr: string });
  }
  expect(stderr).not.toContain('Worker failed');
  const result = JSON.parse(stdout) as TaskResult;
  expect(result.status, stderr).toBe('completed');
  expect(JSON.stringify(result)).toContain('ERR_TOOL_THREW');
}, 600_000);
