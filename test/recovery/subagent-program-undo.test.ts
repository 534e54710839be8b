/**
 * Regression for attack 11 finding 5. A sub-agent that does not complete "leaves nothing behind while its parent goes on: its
 * SQL is undone and each of its file writes is taken back out of the overlay" (README). Its
 * fs.write calls are; the files its `proc.run` programs write are not: they stay in the task
 * tree's overlay and are committed with the parent.
 *
 * The kind: every write of a sub-agent that does not complete is taken back, whichever way it
 * reached the overlay: a sub-agent's program call records what it changed in the upper folder
 * (new files, changed files, deletions) and is undone per call (patch subagent-program-undo).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

describe('a failed sub-agent\'s program writes', () => {
  it('are taken back like its fs.write calls', async () => {
    const workspace = makeTempDir('sub-proc');
    fs.writeFileSync(path.join(workspace, 'keep.txt'), 'original\n');
    fs.writeFileSync(path.join(workspace, 'gone.txt'), 'still here\n');
    const result = await env.runTask({
      user: 'sam@example.com',
      intent: 'tidy the workspace',
      agent: { name: 'lead', model: { driver: 'scripted', script: [{ spawn: 'helper' }, { final: 'done' }] } },
      tools: { builtin: ['proc.run', 'fs.write', 'fs.read'] },
      grants: { tools: ['proc.run', 'fs.write', 'fs.read'], commands: ['sh', 'mkdir', 'rm'], subagents: ['helper'] },
      resources: { workspace },
      limits: { toolTimeout: '60s' },
      subagents: {
        helper: {
          intent: 'help',
          agent: {
            name: 'helper',
            model: {
              driver: 'scripted',
              script: [
                { tool: 'fs.write', args: { path: 'by-fs-write.txt', content: 'x' } },
                { tool: 'proc.run', args: { command: 'sh', args: ['-c', 'echo planted > by-program.txt; echo changed > keep.txt; mkdir -p sub; echo x > sub/new.txt; rm gone.txt'] } },
                // Not granted to the sub-agent: denied, and the sub-agent stops without completing.
                { tool: 'fs.read', args: { path: 'keep.txt' } },
                { final: 'never' },
              ],
            },
          },
          tools: { builtin: ['proc.run', 'fs.write'] },
          grants: { tools: ['proc.run', 'fs.write'], commands: ['sh', 'mkdir', 'rm'] },
        },
      },
    });
    const child = result.children[0]!;
    expect(child.status).toBe('denied');
    expect(child.steps[1]).toMatchObject({ tool: 'proc.run', executed: true, output: { exitCode: 0 } });
    expect(result.status, JSON.stringify(result.steps)).toBe('completed');
    const left = fs.readdirSync(workspace).sort();
    expect({ files: left, keep: fs.readFileSync(path.join(workspace, 'keep.txt'), 'utf8') }).toEqual({ files: ['gone.txt', 'keep.txt'], keep: 'original\n' });
    expect(child.recovery?.rolledBack.filter((r) => r.kind === 'fs-overlay-undo').map((r) => r.forTool).sort()).toEqual(['fs.write', 'proc.run']);
  });

  it('of a sub-agent that completes are committed with its parent', async () => {
    const workspace = makeTempDir('sub-proc-ok');
    fs.writeFileSync(path.join(workspace, 'keep.txt'), 'original\n');
    const result = await env.runTask({
      user: 'sam@example.com',
      intent: 'tidy the workspace',
      agent: { name: 'lead', model: { driver: 'scripted', script: [{ spawn: 'helper' }, { final: 'done' }] } },
      tools: { builtin: ['proc.run'] },
      grants: { tools: ['proc.run'], commands: ['sh'], subagents: ['helper'] },
      resources: { workspace },
      limits: { toolTimeout: '60s' },
      subagents: {
        helper: {
          intent: 'help',
          agent: { name: 'helper', model: { driver: 'scripted', script: [{ tool: 'proc.run', args: { command: 'sh', args: ['-c', 'echo made > made.txt; echo changed > keep.txt'] } }, { final: 'ok' }] } },
          tools: { builtin: ['proc.run'] },
          grants: { tools: ['proc.run'], commands: ['sh'] },
        },
      },
    });
    expect(result.children[0]?.status).toBe('completed');
    expect(result.status).toBe('completed');
    expect(fs.readdirSync(workspace).sort()).toEqual(['keep.txt', 'made.txt']);
    expect(fs.readFileSync(path.join(workspace, 'keep.txt'), 'utf8')).toBe('changed\n');
  });
});
