/**
 * Attack (grant semantics): `grants.commands` names the programs proc.run may start, and the call's
 * credential names it (`proc.run:git`). But a granted program starts any other program of the
 * sandbox's system folders: `git -c alias.x='!sh -c …' x`, `git -c core.pager=…`, hooks, npm
 * scripts, `find -exec`, `env`. A task that grants only `git` (or `find`, `env`, `xargs`) has
 * in effect granted every program; policies have no vocabulary for a program's arguments, and
 * custody records only `proc.run:git`.
 *
 * Verdict: the OS sandbox contains whatever runs, so this is not an escape; it is a grant that
 * does not mean what it says. `node -e` under a `node` grant is NOT counted here (node is an
 * interpreter: granting it is granting arbitrary JavaScript, as the README implies). Expected:
 * either only granted executables (and what they need) can be executed in the sandbox, or the
 * README says the grant picks the entry point only.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWardenTestEnv, type WardenTestEnv } from '../../support/warden-test-env';
import { makeTempDir } from '../../sandbox/sandbox-test-kit';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

describe('a program granted by name', () => {
  it.each([
    ['git', ['-c', 'alias.x=!python3 -c "print(\'ungranted program ran\')"', 'x']],
    ['find', ['.', '-maxdepth', '0', '-exec', 'python3', '-c', "print('ungranted program ran')", ';']],
    ['env', ['python3', '-c', "print('ungranted program ran')"]],
  ])('%s does not start a program the task did not grant', async (command, args) => {
    const result = await env.runTask({
      user: 'sam@example.com',
      intent: 'look at the history',
      agent: { name: 'dev', model: { driver: 'scripted', script: [{ tool: 'proc.run', args: { command, args } }, { final: 'done' }] } },
      tools: { builtin: ['proc.run'] },
      grants: { tools: ['proc.run'], commands: [command] },
      resources: { workspace: makeTempDir('grant-reach') },
      limits: { toolTimeout: '30s' },
    });
    const step = result.steps[0]!;
    expect(step.credential?.scope).toEqual([`proc.run:${command}`]);
    expect((step.output as { stdout?: string } | undefined)?.stdout ?? '').not.toContain('ungranted program ran');
  });
});
