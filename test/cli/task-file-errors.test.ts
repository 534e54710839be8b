/**
 * A bad task file, as a user meets it on the command line: `warden run` and `warden mcp serve`
 * exit 2 before anything starts (no server, no worker, no workflow), and stderr names the file,
 * line, column and field once, with the offending line, and no stack trace.
 *
 * TEMPORAL_ADDRESS points at a port nothing listens on, with --no-worker: a file that got past
 * loading would fail to connect (exit 1), never start anything.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

const run = promisify(execFile);
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-cli-taskfile-'));
  await mkdir(join(dir, 'ws'));
});

async function warden(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', WARDEN_STATE_DIR: join(dir, 'state'), WARDEN_TELEMETRY: '0' };
  try {
    const { stdout, stderr } = await run(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), ...args], { cwd: dir, env, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

const head = 'user: alice@example.com\nintent: write a note\nagent:\n  name: scribe\n  model:\n    driver: scripted\n    script:\n      - final: done\n';

// [what, file text, what stderr must say (once), the offending line it shows]
const cases: [string, string, string, string][] = [
  ['a workspace folder that does not exist', `${head}resources:\n  workspace: ./workspce\n`, 'task.yaml:10:3: resources.workspace: the folder', '  workspace: ./workspce'],
  ['a YAML syntax error', `${head}tools: { builtin: [fs.read }\n`, 'task.yaml:9:', 'tools: { builtin: [fs.read }'],
  ['dataFlow on a task with sub-agents', `${head}dataFlow: true\ngrants: { subagents: [helper] }\nsubagents:\n  helper:\n    intent: help\n    agent: { name: helper, model: { driver: scripted, script: [{ final: ok }] } }\n`, 'task.yaml:9:1: dataFlow: is true, but the data flow does not carry sub-agents', 'dataFlow: true'],
  ['a mistyped field', `${head}polcyPacks: [foundation]\n`, 'task.yaml:9:1: unknown field "polcyPacks"; did you mean "policyPacks"?', 'polcyPacks: [foundation]'],
  // The policy checks run without building the engine (policies/engine/policy-engine.ts checkPolicyRules): the same errors.
  ['a policy sentence that does not read', `${head}policies:\n  - deny everything forever please\n`, 'task.yaml:10:5: policies.0: cannot read policy rule: "deny everything forever please"', '  - deny everything forever please'],
  ['a policy pack that does not exist', `${head}policyPacks: [no-such-pack]\n`, 'task.yaml:9:15: policyPacks.0: no policy pack "no-such-pack"', 'policyPacks: [no-such-pack]'],
];

describe('a bad task file on the command line', () => {
  it.each(cases)('warden run: %s exits 2 before anything starts', async (_what, text, said, offending) => {
    await writeFile(join(dir, 'task.yaml'), text);
    const { code, stdout, stderr } = await warden(['run', 'task.yaml', '--no-worker']);
    expect(code, stderr).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/^warden run: ERR_TASK_FILE_INVALID: invalid task file task\.yaml\n/);
    expect(stderr.split(said).length - 1, stderr).toBe(1);
    expect(stderr).toContain(` | ${offending}\n`);
    expect(stderr).not.toMatch(/^\s+at \S/m);
    expect(stderr).not.toContain('started');
  }, 90_000);

  it('warden run: a .json task file holding YAML exits 2 at the first character that is not JSON (not at the file\'s end)', async () => {
    await writeFile(join(dir, 'task.json'), head);
    const { code, stdout, stderr } = await warden(['run', 'task.json', '--no-worker']);
    expect(code, stderr).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toBe('warden run: ERR_TASK_FILE_INVALID: invalid task file task.json\n  task.json:1:1: not valid JSON: unexpected "u" in the word "user" (JSON\'s only words are true, false and null; text is written in double quotes)\n    1 | user: alice@example.com\n      | ^\n');
  }, 90_000);

  it('warden run: two policy packs whose rules share ids exit 2 naming the id', async () => {
    for (const parent of ['one', 'two']) {
      await mkdir(join(dir, parent, 'same'), { recursive: true });
      await writeFile(join(dir, parent, 'same', 'rules.txt'), parent === 'one' ? 'deny fs.write\n' : 'deny http.fetch\n');
    }
    await writeFile(join(dir, 'task.yaml'), `${head}policyPacks: [one/same, two/same]\n`);
    const { code, stderr } = await warden(['run', 'task.yaml', '--no-worker']);
    expect(code, stderr).toBe(2);
    expect(stderr).toBe('warden run: ERR_TASK_FILE_INVALID: invalid task file task.yaml\n  task.yaml: policies: two rules share the id "same:1"\n');
  }, 90_000);

  it('warden mcp serve refuses a missing workspace the same way', async () => {
    await writeFile(join(dir, 'session.yaml'), 'user: a\nintent: b\nagent:\n  name: ide\n  model: { driver: mcp-client }\nresources:\n  workspace: ./nowhere\n');
    const { code, stderr } = await warden(['mcp', 'serve', 'session.yaml']);
    expect(code, stderr).toBe(2);
    expect(stderr).toContain('session.yaml:7:3: resources.workspace: the folder');
  }, 90_000);
});
