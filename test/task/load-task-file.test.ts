/** Bad task files: each error names the file, the field path and what was expected. */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TaskFileError } from '../../errors';
import { loadTaskFile } from '../../task/load-task-file';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-taskfile-'));
});

const valid = `user: alice
intent: say hi
agent:
  name: greeter
  model:
    driver: scripted
    script:
      - final: hi
`;

async function load(name: string, text: string) {
  const file = join(dir, name);
  await writeFile(file, text);
  return loadTaskFile(file);
}

async function failure(name: string, text: string): Promise<TaskFileError> {
  const error = await load(name, text).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TaskFileError);
  return error as TaskFileError;
}

describe('loadTaskFile', () => {
  it('loads a minimal YAML task and fills in defaults', async () => {
    const task = await load('ok.yaml', valid);
    expect(task.limits).toMatchObject({ maxSteps: 50, deadline: '10m', onDeny: 'stop', maxDepth: 3 });
    expect(task.grants.tools).toEqual([]);
    expect(task.agent.model).toMatchObject({ driver: 'scripted', id: 'scripted', version: '1' });
  });

  it('loads JSON and resolves resource paths against the file folder', async () => {
    await mkdir(join(dir, 'ws'), { recursive: true });
    await mkdir(join(dir, 'data'), { recursive: true });
    await writeFile(join(dir, 'data/inv.db'), '');
    const task = await load(
      'ok.json',
      JSON.stringify({
        user: 'a',
        intent: 'b',
        agent: { name: 'x', model: { driver: 'scripted', script: [{ final: 'y' }] } },
        resources: { workspace: 'ws', databases: { inv: 'data/inv.db' } },
      }),
    );
    expect(task.resources.workspace).toBe(join(dir, 'ws'));
    expect(task.resources.databases.inv).toBe(join(dir, 'data/inv.db'));
  });

  const cases: { name: string; text: string; path: string; message: RegExp }[] = [
    { name: 'missing user', text: valid.replace('user: alice\n', ''), path: 'user', message: /required field is missing \(expected string\)/ },
    { name: 'wrong type', text: `${valid}limits:\n  maxSteps: ten\n`, path: 'limits.maxSteps', message: /must be a whole number \(steps\)/ },
    { name: 'unknown field', text: `${valid}colour: blue\n`, path: '', message: /unknown field "colour"/ },
    { name: 'bad duration', text: `${valid}limits:\n  deadline: soon\n`, path: 'limits.deadline', message: /duration such as/ },
    { name: 'unknown driver', text: valid.replace('driver: scripted', 'driver: telepathy'), path: 'agent.model.driver', message: /scripted|openai-compatible/ },
    { name: 'bad action', text: valid.replace('- final: hi', '- launch: missiles'), path: 'agent.model.script.0', message: /an action/ },
    { name: 'grant of undeclared tool', text: `${valid}grants:\n  tools: [fs.read]\n`, path: 'grants.tools.0', message: /not declared under tools/ },
    { name: 'grant of unlisted host', text: `${valid}grants:\n  hosts: [evil.example]\n`, path: 'grants.hosts.0', message: /not listed under resources.hosts/ },
    { name: 'fs without workspace', text: `${valid}tools:\n  builtin: [fs.read]\n`, path: 'tools.builtin', message: /needs resources.workspace/ },
    {
      name: 'invalid JSON schema',
      text: `${valid}tools:\n  custom:\n    - name: t\n      description: d\n      source: return 1\n      input: { type: object, properties: { a: { type: strnig } } }\n`,
      path: 'tools.custom.0.input',
      message: /not a valid JSON Schema/,
    },
    {
      name: 'custom tool shadowing a built-in',
      text: `${valid}tools:\n  custom:\n    - name: fs.read\n      description: d\n      source: return 1\n`,
      path: 'tools.custom.0.name',
      message: /built-in/,
    },
    {
      name: 'claim missing a field',
      text: valid.replace('- final: hi', '- final: hi\n        claims: ["a sentence", { kind: sql.count, table: items, equals: 3 }]'),
      path: 'agent.model.script.0.claims.1.database',
      message: /required field is missing/,
    },
    {
      name: 'claim of an unknown kind',
      text: valid.replace('- final: hi', '- final: hi\n        claims: [{ kind: vibes }]'),
      path: 'agent.model.script.0.claims.0.kind',
      message: /tests\.pass \| file\.sha256/,
    },
    {
      name: 'claim with a malformed digest',
      text: valid.replace('- final: hi', '- final: hi\n        claims: [{ kind: file.sha256, path: a, sha256: zz }]'),
      path: 'agent.model.script.0.claims.0.sha256',
      message: /SHA-256/,
    },
    { name: 'claim of neither shape', text: valid.replace('- final: hi', '- final: hi\n        claims: [3]'), path: 'agent.model.script.0.claims.0', message: /a sentence, or \{ kind/ },
    { name: 'YAML syntax', text: 'user: [unclosed\n', path: '', message: /^not valid YAML: Flow sequence/ },
  ];

  it.each(cases)('reports $name at "$path"', async ({ name, text, path, message }) => {
    const error = await failure(`${name.replace(/\W+/g, '-')}.yaml`, text);
    expect(error.code).toBe('ERR_TASK_FILE_INVALID');
    const issue = error.issues.find((i) => i.path === path);
    expect(issue, JSON.stringify(error.issues)).toBeDefined();
    expect(issue!.message).toMatch(message);
    expect(error.message).toContain(error.file);
  });

  it('reports a missing file as unreadable', async () => {
    const error = await loadTaskFile(join(dir, 'nope.yaml')).catch((e: unknown) => e as TaskFileError);
    expect(error).toBeInstanceOf(TaskFileError);
    expect((error as TaskFileError).code).toBe('ERR_TASK_FILE_UNREADABLE');
    expect((error as TaskFileError).message).toMatch(/nope\.yaml[\s\S]*no such file/);
  });

  it('reports every problem, not only the first', async () => {
    const error = await failure('many.yaml', 'intent: 3\nagent: {}\n');
    expect(error.issues.map((i) => i.path)).toEqual(expect.arrayContaining(['user', 'intent', 'agent.name', 'agent.model']));
  });
});
