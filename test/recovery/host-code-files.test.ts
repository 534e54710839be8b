/**
 * Regression for attack 11 finding 1. A sandboxed program (or the agent itself) writes git configuration into the workspace.
 * The OS sandbox contains the program while it runs, but its writes are committed to the real
 * workspace when the task completes; `.git/config` is code the user's own git runs later, on the
 * host, with the user's privileges and outside every sandbox (core.fsmonitor runs on `git status`,
 * core.pager / alias.* / core.sshCommand / hooks on other commands).
 *
 * The kind: files on the documented host-code list (recovery/host-code-files.ts: git config and
 * hooks at any depth, bare repositories, package-manager, python, shell and editor files that run
 * code) are held at commit, never made real, unless the task file names them in
 * `resources.allowHostCode`; the task result says which and why.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { heldDirOf } from '../../recovery/recovery-paths';
import { commitOverlay, openOverlay } from '../../recovery/workspace-overlay';
import { parseTask } from '../../task/load-task-file';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { read, treeOf, writeTree } from './recovery-test-kit';

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
    expect(result.recovery?.notCommitted).toEqual([expect.stringMatching(/^\.git\/config \(held: git runs commands named in repository config/)]);
    // The user runs git in their repository after the task, as anyone would.
    spawnSync('git', ['status'], { cwd: workspace, encoding: 'utf8' });
    const config = fs.readFileSync(path.join(workspace, '.git', 'config'), 'utf8');
    expect({ fsmonitorCommitted: /fsmonitor/.test(config), ranOnHost: fs.existsSync(marker) }).toEqual({ fsmonitorCommitted: false, ranOnHost: false });
  });
});

describe('the host-code list, at commit (no Temporal)', () => {
  let stateDir: string;
  let ws: string;
  const taskKey = 'host-code-unit';
  beforeEach(() => {
    stateDir = makeTempDir('hc-state');
    ws = makeTempDir('hc-ws');
    writeTree(ws, { 'README.md': 'hello\n', 'bare/HEAD': 'ref: refs/heads/main\n', '.git/HEAD': 'ref: refs/heads/main\n', '.git/hooks/pre-commit': 'old hook' });
  });

  /** Writes `files` through the overlay, commits with `allow`, and says what became real. */
  async function commitWrites(files: Record<string, string>, allow?: string[]) {
    const overlay = await openOverlay({ stateDir, taskKey, workspace: ws });
    writeTree(overlay.upper, files);
    return commitOverlay({ stateDir, taskKey, workspace: ws, ...(allow === undefined ? {} : { allowHostCode: allow }) });
  }

  it.each([
    ['.git/config', /core\.fsmonitor/],
    ['.git/config.worktree', /repository config/],
    ['.git/commondir', /repository config/],
    ['.git/hooks/post-checkout', /hooks/],
    ['.git/hooks/pre-commit', /hooks/],
    ['.GIT/Config', /repository config/],
    ['.git/modules/sub/config', /repository config/],
    ['.git/modules/sub/hooks/pre-push', /hooks/],
    ['vendor/lib/.git/config', /repository config/],
    ['sub/.git', /another repository/],
    ['bare/config', /bare repository/],
    ['.husky/pre-commit', /husky/],
    ['.pre-commit-config.yaml', /pre-commit/],
    ['.yarnrc.yml', /yarnPath/],
    ['.yarnrc', /yarnPath/],
    ['pkg/.npmrc', /node-options/],
    ['.pnpmfile.cjs', /pnpm/],
    ['.venv/lib/python3.11/site-packages/evil.pth', /\.pth/],
    ['.venv/lib/python3.11/site-packages/sitecustomize.py', /every start/],
    ['.envrc', /direnv/],
    ['mise.toml', /mise/],
    ['.vscode/tasks.json', /folder open/],
    ['.vscode/settings.json', /folder open/],
    ['.devcontainer/devcontainer.json', /initializeCommand/],
    ['.devcontainer.json', /initializeCommand/],
  ])('%s is held, not committed, with the reason and how to allow it', async (file, why) => {
    const result = await commitWrites({ [file]: 'x = evil\n', 'src/ok.ts': 'ok' });
    expect(result.manifest?.entries.map((e) => e.path)).toEqual(['src/ok.ts']);
    expect(result.held).toHaveLength(1);
    expect(result.held[0]).toMatch(why);
    expect(result.held[0]).toContain('resources.allowHostCode');
    expect(read(ws, file) ?? 'absent').not.toBe('x = evil\n');
    expect(read(heldDirOf(stateDir, taskKey), file)).toBe('x = evil\n');
  });

  it.each([
    ['src/config', 'no HEAD next to it'],
    ['.github/workflows/ci.yml', 'CI runs elsewhere, not on the host'],
    ['Makefile', 'run on purpose'],
    ['package.json', 'run on purpose'],
    ['.git/objects/ab/cdef', 'git objects run nothing'],
    ['.git/refs/heads/main', 'refs run nothing'],
    ['.gitattributes', 'filters need config'],
  ])('%s is committed (%s)', async (file) => {
    const result = await commitWrites({ [file]: 'content\n' });
    expect(result.held).toEqual([]);
    expect(read(ws, file)).toBe('content\n');
  });

  it.each(['.githooks', './.githooks/', '"tools/hooks"'])('a file under the repository\'s core.hooksPath (%s) is held', async (hooksPath) => {
    const folder = hooksPath.replace(/"/g, '').replace(/^\.\//, '').replace(/\/$/, '');
    writeTree(ws, { '.git/config': `[core]\n\thooksPath = ${hooksPath}\n` });
    const result = await commitWrites({ [`${folder}/pre-commit`]: 'x = evil\n', 'src/ok.ts': 'ok' });
    expect(result.held).toEqual([expect.stringMatching(/core\.hooksPath/)]);
    expect(read(ws, `${folder}/pre-commit`)).toBeUndefined();
  });

  it('commits a listed file the task names in allowHostCode, by path or by folder', async () => {
    const result = await commitWrites({ '.git/hooks/pre-commit': 'new hook', '.husky/pre-push': 'x', '.envrc': 'y' }, ['.git/hooks/pre-commit', '.husky/']);
    expect(result.held).toEqual([expect.stringMatching(/^\.envrc \(held/)]);
    expect(treeOf(ws)).toMatchObject({ '.git/hooks/pre-commit': 'new hook', '.husky/pre-push': 'x' });
    expect(read(ws, '.envrc')).toBeUndefined();
  });

  it('the task file refuses allowHostCode entries outside the workspace', () => {
    for (const bad of ['/etc/gitconfig', '../.git/config', 'a/../../.git/config']) {
      expect(() => parseTask({ user: 'u@example.com', intent: 'i', agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'done' }] } }, resources: { allowHostCode: [bad] } }, 't.yaml', ws)).toThrow(/allowHostCode/);
    }
  });
});
