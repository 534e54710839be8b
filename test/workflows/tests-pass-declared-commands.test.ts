/**
 * Regression (attack on issue 13): a signed `tests.pass` for tests that fail. The agent names the test command and its
 * arguments in the claim, and the verifier runs exactly that: any invocation of a granted program
 * that exits 0 is "the tests pass". The workspace's only test fails (`node --test broken.test.js`
 * exits 1); the agent changes no file and claims `tests.pass` with `node -e 0`, or with a name
 * pattern that selects no test. Both are `verified` and signed, and since the task changed no
 * file the reason carries no warning (`committedByTask` is empty): to a reader of the task result
 * or the attestation, "Warden re-ran the tests: exit code 0".
 *
 * Now: the command that counts as the tests is the task file's to name (`attestation.tests`); a
 * claim naming any other command, or made in a task that declares none, is `unverified` and unsigned.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTempDir } from '../sandbox/sandbox-test-kit';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

const FAILING_TEST = "const test = require('node:test');\nconst assert = require('node:assert');\ntest('sum', () => assert.strictEqual(1 + 1, 3));\n";

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
}, 300_000);
afterAll(async () => env?.close());

describe('tests.pass on a workspace whose tests fail', () => {
  it.each([
    ['node -e 0', ['-e', '0']],
    ['a name pattern that selects no test', ['--test', '--test-name-pattern=^no such test$', 'broken.test.js']],
  ])("is not verified when the claimed command is %s, not the task's declared test command", async (_what, args) => {
    const workspace = makeTempDir('tests-pass-any');
    fs.writeFileSync(path.join(workspace, 'broken.test.js'), FAILING_TEST);
    const result = await env.runTask({
      user: 'sam@example.com',
      intent: 'make the tests pass',
      agent: { name: 'fixer', model: { driver: 'scripted', script: [{ final: 'all tests pass', claims: [{ kind: 'tests.pass', command: 'node', args }] }] } },
      tools: { builtin: ['proc.run'] },
      grants: { tools: ['proc.run'], commands: ['node'] },
      resources: { workspace },
      limits: { toolTimeout: '60s' },
      attestation: { tests: [{ command: 'node', args: ['--test', 'broken.test.js'] }] },
    });
    const claim = result.claims?.[0];
    expect(claim, JSON.stringify(result.claims)).toBeDefined();
    expect(`${claim!.verdict}: ${claim!.reason}`).not.toMatch(/^verified/);
    expect(claim!.envelope).toBeUndefined();
  });
});
