/**
 * Attack (grant semantics, issue 11): `grants.commands` names the programs proc.run may start,
 * and the call's credential names it (`proc.run:git`). A granted program that starts other
 * programs (`git -c alias.x='!sh -c …' x`, `find -exec`, `env`, `xargs`) must not reach any
 * program the task did not grant: not one of the system's (`/usr/bin/python3`), not one hidden
 * in a library folder, and not one written into, or already in, the workspace (run directly or
 * through the dynamic loader). The sandbox shows only the granted programs (sandbox/os/program-view.ts).
 *
 * What still works: a granted program's own helpers (git's `/usr/lib/git-core`), and the
 * interpreter a granted script names (`npm` is `#!/usr/bin/env node`). `node -e` under a `node`
 * grant is arbitrary JavaScript by the user's own choice: not counted here.
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

const MARK = 'ungranted program ran';
const PY = `print('${MARK}')`;
/** What `python3 -V` prints. */
const PYTHON = 'Python 3';
/** A workspace holding an executable the task never granted (a committed binary: a copy of python3). */
function workspaceWithBinary(): string {
  const workspace = makeTempDir('grant-reach');
  fs.copyFileSync(fs.realpathSync('/usr/bin/python3'), path.join(workspace, 'tool'));
  fs.chmodSync(path.join(workspace, 'tool'), 0o755);
  return workspace;
}
/** An executable of a library folder that belongs to no granted program (apt's HTTP method, on every Debian). */
const LIBRARY_PROGRAM = '/usr/lib/apt/methods/http';

async function run(command: string, args: string[], grants: string[], stdin?: string) {
  const result = await env.runTask({
    user: 'sam@example.com',
    intent: 'look at the history',
    agent: { name: 'dev', model: { driver: 'scripted', script: [{ tool: 'proc.run', args: { command, args, ...(stdin === undefined ? {} : { stdin }) } }, { final: 'done' }] } },
    tools: { builtin: ['proc.run'] },
    grants: { tools: ['proc.run'], commands: grants },
    resources: { workspace: workspaceWithBinary() },
    limits: { toolTimeout: '60s' },
  });
  const step = result.steps[0]!;
  return { step, output: (step.output ?? {}) as { stdout?: string; stderr?: string; exitCode?: number } };
}

describe('a program granted by name', () => {
  // An alias without shell characters is started by git itself (with the arguments after it); one with them, through sh.
  it.each([
    ['git alias to python3', 'git', ['-c', 'alias.x=!python3', 'x', '-V'], PYTHON],
    ['git alias to sh', 'git', ['-c', `alias.x=!sh -c "echo '${MARK}'"`, 'x'], MARK],
    ['git alias by absolute path', 'git', ['-c', 'alias.x=!/usr/bin/python3', 'x', '-V'], PYTHON],
    // apt's method announces itself ("100 Capabilities") when it starts.
    ['git alias to a library folder program', 'git', ['-c', `alias.x=!${LIBRARY_PROGRAM}`, 'x'], 'Capabilities'],
    ['git alias to a workspace binary', 'git', ['-c', 'alias.x=!./tool', 'x', '-V'], PYTHON],
    ['git alias to a workspace binary through the dynamic loader', 'git', ['-c', 'alias.x=!/lib64/ld-linux-x86-64.so.2', 'x', './tool', '-V'], PYTHON],
    ['find -exec', 'find', ['.', '-maxdepth', '0', '-exec', 'python3', '-c', PY, ';'], MARK],
    ['find -exec a workspace binary', 'find', ['.', '-maxdepth', '0', '-exec', './tool', '-c', PY, ';'], MARK],
    ['env', 'env', ['python3', '-c', PY], MARK],
    ['xargs', 'xargs', ['python3', '-c', PY], MARK],
  ])('%s does not start a program the task did not grant', async (_label, command, args, evidence) => {
    const { step, output } = await run(command, args, [command], '');
    expect(step.credential?.scope).toEqual([`proc.run:${command}`]);
    expect(step.executed, JSON.stringify(step)).toBe(true);
    // stdout only: git's error on stderr quotes the alias it could not run.
    expect(output.stdout ?? '', JSON.stringify(output)).not.toContain(evidence);
    // find reports a failed -exec on stderr and still exits 0.
    if (command !== 'find') expect(output.exitCode, JSON.stringify(output)).not.toBe(0);
  });

  it('still starts a program the task granted too (the grant is the list, not one entry)', async () => {
    const { output } = await run('git', ['-c', 'alias.x=!python3', 'x', '-V'], ['git', 'python3']);
    expect(output.stdout, JSON.stringify(output)).toContain(PYTHON);
  });

  it('keeps git working for normal use: init, add, commit, status, log (its helpers are its own package)', async () => {
    const script = [
      { tool: 'proc.run', args: { command: 'git', args: ['init', '-q', '.'] } },
      { tool: 'proc.run', args: { command: 'git', args: ['add', 'tool'] } },
      { tool: 'proc.run', args: { command: 'git', args: ['-c', 'user.name=Sam', '-c', 'user.email=sam@example.com', 'commit', '-q', '-m', 'first'] } },
      { tool: 'proc.run', args: { command: 'git', args: ['status', '--short', '--branch'] } },
      { tool: 'proc.run', args: { command: 'git', args: ['log', '--format=%s'] } },
      { final: 'done' },
    ];
    const result = await env.runTask({
      user: 'sam@example.com',
      intent: 'commit the tool',
      agent: { name: 'dev', model: { driver: 'scripted', script } },
      tools: { builtin: ['proc.run'] },
      grants: { tools: ['proc.run'], commands: ['git'] },
      resources: { workspace: workspaceWithBinary() },
      limits: { toolTimeout: '60s' },
    });
    const outputs = result.steps.map((s) => s.output as { exitCode: number; stdout: string; stderr: string });
    expect(outputs.map((o) => o.exitCode), JSON.stringify(outputs)).toEqual([0, 0, 0, 0, 0]);
    expect(outputs[3]!.stdout).toMatch(/^## (master|main)/);
    expect(outputs[4]!.stdout.trim()).toBe('first');
  });

  it('runs a granted script with the interpreter its #! line names (npm is #!/usr/bin/env node)', async () => {
    const npm = spawnSync('/bin/sh', ['-c', 'command -v npm'], { encoding: 'utf8' }).stdout.trim();
    expect(fs.readFileSync(fs.realpathSync(npm), 'utf8')).toMatch(/^#!.*node/);
    const { output } = await run('npm', ['--version'], ['npm']);
    expect(output, JSON.stringify(output)).toMatchObject({ exitCode: 0, stdout: expect.stringMatching(/^\d+\.\d+\.\d+/) });
  });
});
