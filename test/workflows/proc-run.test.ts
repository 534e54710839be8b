/**
 * `proc.run` in real runs: a test command in the task's workspace, in the OS sandbox, its writes
 * committed with a completed task and rolled back with a failed one; programs granted by name.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { replayHistories } from '../mcp/mcp-test-kit';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

/** A workspace with a Node test file whose test writes `report.txt` and passes (or fails). */
function workspaceWithTests(passes = true): string {
  const workspace = makeTempDir('proc-ws');
  fs.writeFileSync(
    path.join(workspace, 'sum.test.js'),
    `const test = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
test('sum', () => {
  fs.writeFileSync('report.txt', 'tests ran');
  assert.strictEqual(1 + 1, ${passes ? 2 : 3});
});
`,
  );
  return workspace;
}

function task(workspace: string, script: unknown[], extra: Record<string, unknown> = {}) {
  return {
    user: 'sam@example.com',
    intent: 'run the tests',
    agent: { name: 'tester', model: { driver: 'scripted', script } },
    tools: { builtin: ['proc.run', 'fs.read'] },
    grants: { tools: ['proc.run', 'fs.read'], commands: ['node'] },
    resources: { workspace },
    limits: { toolTimeout: '60s' },
    ...extra,
  };
}

const RUN_TESTS = { tool: 'proc.run', args: { command: 'node', args: ['--test', 'sum.test.js'] } };

describe('proc.run', () => {
  it('runs a test command in the workspace and commits its writes when the task completes', async () => {
    const workspace = workspaceWithTests();
    const result = await env.runTask(task(workspace, [RUN_TESTS, { tool: 'fs.read', args: { path: 'report.txt' } }, { final: 'tests pass', claims: ['the tests pass'] }]));
    expect(result.status, JSON.stringify(result.steps)).toBe('completed');
    expect(result.steps[0]?.output).toMatchObject({ exitCode: 0, reason: 'exited' });
    expect((result.steps[0]?.output as { stdout: string }).stdout).toMatch(/# pass 1/);
    expect(result.steps[0]?.credential?.scope).toEqual(['proc.run:node']);
    // The agent saw the program's write through the overlay; the commit made it real.
    expect(result.steps[1]?.output).toBe('tests ran');
    expect(fs.readFileSync(path.join(workspace, 'report.txt'), 'utf8')).toBe('tests ran');
  });

  it("rolls back the program's writes when the task fails", async () => {
    const workspace = workspaceWithTests();
    const result = await env.runTask(
      task(workspace, [RUN_TESTS, { tool: 'fs.write', args: { path: 'x', content: 'x' } }, { final: 'never' }], { limits: { toolTimeout: '60s', onDeny: 'stop' } }),
    );
    expect(result.status).toBe('denied');
    expect(result.steps[0]?.output).toMatchObject({ exitCode: 0 });
    expect(fs.existsSync(path.join(workspace, 'report.txt'))).toBe(false);
    expect(fs.readdirSync(workspace)).toEqual(['sum.test.js']);
    expect(result.recovery?.rolledBack.map((r) => r.kind)).toContain('fs-overlay-discard');
  });

  it('returns a failing exit code as the output, for the agent to read', async () => {
    const workspace = workspaceWithTests(false);
    const result = await env.runTask(task(workspace, [RUN_TESTS, { final: 'tests fail' }]));
    expect(result.steps[0]?.output).toMatchObject({ exitCode: 1, reason: 'exited' });
    expect((result.steps[0]?.output as { stdout: string }).stdout).toMatch(/# fail 1/);
  });

  it.each([
    ['a program not granted', { command: 'sh', args: ['-c', 'echo hi'] }, 'ERR_COMMAND_NOT_GRANTED'],
    ['a workspace file named like a granted program', { command: './node', args: [] }, 'ERR_COMMAND_NOT_GRANTED'],
    ['nothing but the system\'s program for a granted name', { command: 'node', args: [] }, undefined],
  ])('refuses %s', async (_label, args, code) => {
    const workspace = workspaceWithTests();
    fs.writeFileSync(path.join(workspace, 'node'), '#!/bin/sh\necho impostor\n', { mode: 0o755 });
    const result = await env.runTask(task(workspace, [{ tool: 'proc.run', args }, { final: 'done' }], { limits: { toolTimeout: '60s', onDeny: 'continue' } }));
    if (code === undefined) {
      // `node` is installed: it runs the real node (reading an empty stdin), never the workspace file.
      expect(result.steps[0]?.output).toMatchObject({ exitCode: 0 });
      expect((result.steps[0]?.output as { stdout: string }).stdout).not.toContain('impostor');
    } else {
      expect(result.steps[0]?.error?.code).toBe(code);
    }
  });

  it('contains the program: no network, no /root, no writes outside the workspace', async () => {
    const workspace = workspaceWithTests();
    const probe = `
      const fs = require('fs'); const net = require('net');
      const out = {};
      try { fs.readdirSync('/root'); out.root = 'read'; } catch (e) { out.root = e.code; }
      try { fs.writeFileSync('/etc/evil', 'x'); out.etc = 'written'; } catch (e) { out.etc = e.code; }
      const s = net.connect(443, '1.1.1.1');
      s.on('connect', () => { out.net = 'connected'; done(); });
      s.on('error', (e) => { out.net = e.code; done(); });
      function done() { console.log(JSON.stringify(out)); process.exit(0); }`;
    const result = await env.runTask(task(workspace, [{ tool: 'proc.run', args: { command: 'node', args: ['-e', probe] } }, { final: 'probed' }]));
    const output = JSON.parse((result.steps[0]?.output as { stdout: string }).stdout);
    expect(output).toEqual({ root: 'ENOENT', etc: 'EROFS', net: 'ENETUNREACH' });
  });
});

it('replays every history of this file deterministically', async () => {
  const { failures, replayed } = await replayHistories(env.client, { taskQueue: env.taskQueue });
  expect(failures).toEqual([]);
  expect(replayed).toBeGreaterThanOrEqual(env.workflowIds.length);
});
