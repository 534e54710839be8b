/**
 * Attack: a sandboxed program (or the agent itself) writes git configuration into the workspace.
 * The OS sandbox contains the program while it runs, but its writes are committed to the real
 * workspace when the task completes; `.git/config` is code the user's own git runs later, on the
 * host, with the user's privileges and outside every sandbox (core.fsmonitor runs on `git status`,
 * core.pager / alias.* / core.sshCommand / hooks on other commands).
 *
 * Expected of a serious sandbox: files that make host tools execute code (`.git/config`,
 * `.git/hooks/*`) are never committed from a task (refused, or held for approval), so the
 * sandbox's containment does not end at the commit.
 */
import { spawnSync } from 'node:child_process';
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

/** A workspace that is a git repository with one commit (as `resources.workspace: .` in a repo). */
function gitWorkspace(): string {
  const workspace = makeTempDir('git-ws');
  const git = (...args: string[]) => spawnSync('git', ['-c', 'user.email=a@example.com', '-c', 'user.name=a', ...args], { cwd: workspace, encoding: 'utf8' });
  git('init', '-q');
  fs.writeFileSync(path.join(workspace, 'README.md'), 'hello\n');
  git('add', '.');
  git('commit', '-q', '-m', 'initial');
  return workspace;
}

describe('code the host runs later, written from inside a task', () => {
  it.each([
    ['proc.run git config (a granted git)', (marker: string) => ({ tool: 'proc.run', args: { command: 'git', args: ['config', 'core.fsmonitor', `touch ${marker}; false`] } })],
    ['fs.write of .git/config', (marker: string) => ({ tool: 'fs.write', args: { path: '.git/config', content: `[core]\n\trepositoryformatversion = 0\n\tbare = false\n\tfsmonitor = touch ${marker}; false\n` } })],
  ])('%s: the next `git status` on the host must not run the agent\'s command', async (_label, action) => {
    const workspace = gitWorkspace();
    const marker = path.join(makeTempDir('git-marker'), 'ran-on-host');
    const result = await env.runTask({
      user: 'dana@example.com',
      intent: 'look at the repository',
      agent: { name: 'coder', model: { driver: 'scripted', script: [action(marker), { final: 'done' }] } },
      tools: { builtin: ['proc.run', 'fs.write'] },
      grants: { tools: ['proc.run', 'fs.write'], commands: ['git'] },
      resources: { workspace },
      limits: { toolTimeout: '60s' },
    });
    expect(result.status, JSON.stringify(result.steps)).toBe('completed');
    // The user runs git in their repository after the task, as anyone would.
    spawnSync('git', ['status'], { cwd: workspace, encoding: 'utf8' });
    const config = fs.readFileSync(path.join(workspace, '.git', 'config'), 'utf8');
    expect({ fsmonitorCommitted: /fsmonitor/.test(config), ranOnHost: fs.existsSync(marker) }).toEqual({ fsmonitorCommitted: false, ranOnHost: false });
  });
});
