/**
 * A bad task file prints every problem one run can find (README, `warden run` step 1): field
 * errors, cross-field problems (a grant naming an undeclared tool) and missing paths come
 * together, not one kind per run. It reported only the field errors first, the undeclared grant
 * after those were fixed, and a missing workspace never while either was there.
 *
 * What waits: a cross-field check runs once every field it reads (tools, grants, resources,
 * subagents, policies, policyPacks) parses; a path check runs on every path that parses,
 * whatever else is wrong.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { TaskFileError } from '../../errors';
import { loadTaskFile } from '../../task/load-task-file';
import { REPO_ROOT } from '../support/warden-test-env';

const run = promisify(execFile);
let dir: string;
let hello: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-every-problem-'));
  await mkdir(join(dir, 'workspace'));
  hello = await readFile(join(REPO_ROOT, 'examples/hello.yaml'), 'utf8');
});

/** examples/hello.yaml with each [from, to] replaced (each must be there once). */
function helloWith(edits: readonly (readonly [string, string])[]): string {
  let text = hello;
  for (const [from, to] of edits) {
    expect(text.split(from).length - 1, from).toBe(1);
    text = text.replace(from, to);
  }
  return text;
}

const MISTAKES = {
  maxSteps: ['maxSteps: 20', 'maxSteps: "twenty"'],
  deadline: ['deadline: 2m', 'deadline: soon'],
  grant: ['tools: [fs.read, fs.write, fs.list, word-count]', 'tools: [fs.read, fs.write, fs.list, word_count]'],
  workspace: ['workspace: ./workspace', 'workspace: ./nope'],
} as const;

const EXPECTED: Record<keyof typeof MISTAKES, { path: string; message: RegExp }> = {
  maxSteps: { path: 'limits.maxSteps', message: /must be a whole number \(steps\)/ },
  deadline: { path: 'limits.deadline', message: /a duration such as/ },
  grant: { path: 'grants.tools.3', message: /grants tool "word_count", which is not declared under tools; did you mean "word-count"\?/ },
  workspace: { path: 'resources.workspace', message: /the folder .*nope does not exist/ },
};

let counter = 0;
async function issuesOf(text: string): Promise<{ path: string; message: string; line?: number }[]> {
  const file = join(dir, `task-${(counter += 1)}.yaml`);
  await writeFile(file, text);
  const error = await loadTaskFile(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the file should be refused').toBeInstanceOf(TaskFileError);
  return [...(error as TaskFileError).issues];
}

describe('one run reports every problem of a task file', () => {
  it('examples/hello.yaml itself loads (the rows below are its mistakes alone)', async () => {
    await writeFile(join(dir, 'hello.yaml'), hello);
    await expect(loadTaskFile(join(dir, 'hello.yaml'))).resolves.toMatchObject({ user: 'alice@example.com' });
  });

  const rows = [
    ...Object.keys(MISTAKES).map((k) => [[k as keyof typeof MISTAKES]] as const),
    [['maxSteps', 'grant']] as const,
    [['deadline', 'workspace']] as const,
    [['grant', 'workspace']] as const,
    [['maxSteps', 'deadline', 'grant', 'workspace']] as const,
  ];
  it.each(rows)('%j: each reported once, nothing else', async (mistakes) => {
    const issues = await issuesOf(helloWith(mistakes.map((m) => MISTAKES[m])));
    expect(issues.map((i) => i.path).sort(), JSON.stringify(issues)).toEqual(mistakes.map((m) => EXPECTED[m].path).sort());
    for (const m of mistakes) {
      const issue = issues.find((i) => i.path === EXPECTED[m].path);
      expect(issue?.message).toMatch(EXPECTED[m].message);
      expect(issue?.line, 'each issue says its line').toBeGreaterThan(0);
    }
  });

  it('the four mistakes through the real CLI: exit 2, all four in one run, each once', async () => {
    await writeFile(join(dir, 'four.yaml'), helloWith(Object.values(MISTAKES)));
    const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', WARDEN_STATE_DIR: join(dir, 'state'), WARDEN_TELEMETRY: '0' };
    const result = await run(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'run', 'four.yaml', '--no-worker'], { cwd: dir, env, timeout: 60_000 }).then(
      ({ stdout, stderr }) => ({ code: 0, stdout, stderr }),
      (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
    );
    expect(result.code, result.stderr).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(/^warden run: ERR_TASK_FILE_INVALID: invalid task file four\.yaml\n/);
    for (const { path, message } of Object.values(EXPECTED)) {
      expect(result.stderr.match(new RegExp(`^  four\\.yaml:\\d+:\\d+: ${path.replace(/\./g, '\\.')}: `, 'gm')), `${path} once in:\n${result.stderr}`).toHaveLength(1);
      expect(result.stderr).toMatch(message);
    }
  }, 90_000);

  it('a cross-field problem and a missing path with a valid schema come together', async () => {
    const issues = await issuesOf(helloWith([MISTAKES.grant, MISTAKES.workspace, ['subagents: [reviewer]', 'subagents: [reviewr]']]));
    expect(issues.map((i) => i.path).sort()).toEqual(['grants.subagents.0', 'grants.tools.3', 'resources.workspace']);
    expect(issues.find((i) => i.path === 'grants.subagents.0')?.message).toMatch(/did you mean "reviewer"\?/);
  });

  it('a missing path is reported when the rest of resources has errors', async () => {
    const issues = await issuesOf(helloWith([MISTAKES.workspace, ['resources:\n', 'resources:\n  hosts: 5\n']]));
    expect(issues.map((i) => i.path).sort()).toEqual(['resources.hosts', 'resources.workspace']);
  });

  it('an undeclared grant waits while the tools it is checked against have errors (the path does not)', async () => {
    // The grant check compares grants with tools: with an error in tools it could only guess.
    const issues = await issuesOf(helloWith([MISTAKES.grant, MISTAKES.workspace, ['builtin: [fs.read, fs.write, fs.list]', 'builtin: [fs.read, fs.write, fs.list, fs.raed]']]));
    expect(issues.map((i) => i.path).sort()).toEqual(['resources.workspace', 'tools.builtin.3']);
  });
});

describe('a grant of an undeclared name says what it most likely means', () => {
  const head = 'user: a@example.com\nintent: test\nagent:\n  name: scribe\n  model:\n    driver: scripted\n    script:\n      - final: done\n';
  it.each([
    ['a tool', `${head}tools:\n  custom:\n    - { name: word-count, description: d, input: { type: object }, source: "return 1;" }\ngrants:\n  tools: [word_count]\n`, 'grants.tools.0', 'did you mean "word-count"?'],
    ['a built-in tool not declared', `${head}grants:\n  tools: [fs.read]\n`, 'grants.tools.0', 'declare it under tools.builtin'],
    ['a database', `${head}resources:\n  databases: { inventory: ./inv.db }\ngrants:\n  databases: [inventroy]\n`, 'grants.databases.0', 'did you mean "inventory"?'],
    ['a host', `${head}resources:\n  hosts: [api.example.com]\ngrants:\n  hosts: [api.exmple.com]\n`, 'grants.hosts.0', 'did you mean "api.example.com"?'],
  ])('%s', async (_what, text, path, hint) => {
    const issue = (await issuesOf(text)).find((i) => i.path === path);
    expect(issue?.message).toContain(hint);
  });

  it('names nothing when no declared name is close', async () => {
    const text = `${head}tools:\n  custom:\n    - { name: word-count, description: d, input: { type: object }, source: "return 1;" }\ngrants:\n  tools: [shell]\n`;
    const issue = (await issuesOf(text)).find((i) => i.path === 'grants.tools.0');
    expect(issue?.message).toBe('grants tool "shell", which is not declared under tools');
  });
});

describe('paths are checked one by one while their neighbours have errors', () => {
  const head = 'user: a@example.com\nintent: test\nagent:\n  name: scribe\n  model:\n    driver: scripted\n    script:\n      - final: done\n';
  it('a missing database beside a database entry with errors, and a missing secret file', async () => {
    const text = `${head}limits: { maxSteps: -1 }\nresources:\n  databases: { gone: ./gone.db, Bad: ./bad.db }\n  secrets:\n    api.example.com: { authorization: "Bearer \${file:./no-token}" }\n`;
    const issues = await issuesOf(text);
    expect(issues.map((i) => i.path).sort()).toEqual(['limits.maxSteps', 'resources.databases.Bad', 'resources.databases.gone', 'resources.secrets.api.example.com.authorization']);
    expect(issues.find((i) => i.path === 'resources.databases.gone')?.message).toMatch(/the file .*gone\.db does not exist/);
    expect(issues.find((i) => i.path === 'resources.databases.Bad')?.message).toMatch(/database name/);
  });
});

describe('the problems come in file order', () => {
  it('the four mistakes of hello.yaml, by line', async () => {
    const issues = await issuesOf(helloWith([MISTAKES.workspace, MISTAKES.grant, MISTAKES.deadline, MISTAKES.maxSteps]));
    const lines = issues.map((i) => i.line ?? 0);
    expect(lines).toEqual([...lines].sort((a, b) => a - b));
    expect(issues.map((i) => i.path)).toEqual(['grants.tools.3', 'limits.maxSteps', 'limits.deadline', 'resources.workspace']);
  });
});

describe('cross-field checks do not wait for each other', () => {
  it('rules sharing an id across packs are reported beside a secret for an unlisted host', async () => {
    for (const parent of ['one', 'two']) {
      await mkdir(join(dir, parent, 'same'), { recursive: true });
      await writeFile(join(dir, parent, 'same', 'rules.txt'), parent === 'one' ? 'deny fs.write\n' : 'deny http.fetch\n');
    }
    const head = 'user: a@example.com\nintent: test\nagent:\n  name: scribe\n  model:\n    driver: scripted\n    script:\n      - final: done\n';
    const text = `${head}policyPacks: [one/same, two/same]\nresources:\n  secrets:\n    api.example.com: { authorization: "Bearer \${env:T}" }\n`;
    const issues = await issuesOf(text);
    expect(issues.map((i) => i.path).sort()).toEqual(['policies', 'resources.secrets.api.example.com']);
    expect(issues.find((i) => i.path === 'policies')?.message).toContain('two rules share the id "same:1"');
  });
});
