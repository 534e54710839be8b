/**
 * Messages a newcomer meets first, in words, not zod's: the root agent's `name` is an agent name
 * (it said "a sub-agent name"); every numeric field of a task file says its bound and its unit
 * (`must be at least 16 (MiB)`, not `Too small: expected number to be >=16`); a missing task file
 * names the resolved path it looked for and prints as `nope.yaml: no such file: looked for …` (it said
 * `nope.yaml: (top level): no such file`).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TaskFileError } from '../../errors';
import { loadTaskFile } from '../../task/load-task-file';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-task-wording-'));
});

function taskText(agentName: string, extra: string): string {
  return `user: alice@example.com
intent: check the wording
agent:
  name: ${agentName}
  model:
    driver: scripted
    script:
      - final: done
${extra}`;
}

let counter = 0;
async function issuesOf(text: string): Promise<{ path: string; message: string }[]> {
  const file = join(dir, `task-${(counter += 1)}.yaml`);
  await writeFile(file, text);
  const error = await loadTaskFile(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the file should be refused').toBeInstanceOf(TaskFileError);
  return [...(error as TaskFileError).issues];
}

const RAW_ZOD = /Too small|Too big|expected number|expected int|Invalid input/;

describe('an agent name is called an agent name', () => {
  it.each([
    ['the root agent', taskText('Typo', ''), 'agent.name'],
    [
      "a sub-agent's own agent",
      taskText('root', `grants:\n  subagents: [helper]\nsubagents:\n  helper:\n    intent: help\n    agent:\n      name: Helper\n      model:\n        driver: scripted\n        script:\n          - final: ok\n`),
      'subagents.helper.agent.name',
    ],
  ])('%s', async (_what, text, path) => {
    const issue = (await issuesOf(text)).find((i) => i.path === path);
    expect(issue?.message).toMatch(/^an agent name: lower-case letters/);
    expect(issue?.message).not.toContain('sub-agent');
  });
});

describe('numeric fields say their bound and unit', () => {
  // [field path, YAML after the head, message]
  it.each([
    ['limits.workspaceMb', 'limits:\n  workspaceMb: 4\n', 'must be at least 16 (MiB)'],
    ['limits.workspaceMb', 'limits:\n  workspaceMb: 2000000\n', 'must be at most 1048576 (MiB)'],
    ['limits.workspaceMb', 'limits:\n  workspaceMb: 16.5\n', 'must be a whole number (MiB)'],
    ['limits.workspaceMb', 'limits:\n  workspaceMb: lots\n', 'must be a whole number (MiB)'],
    ['limits.maxSteps', 'limits:\n  maxSteps: 0\n', 'must be at least 1 (steps)'],
    ['limits.toolMemoryMb', 'limits:\n  toolMemoryMb: 4\n', 'must be at least 8 (MiB)'],
    ['limits.maxDepth', 'limits:\n  maxDepth: 11\n', 'must be at most 10 (levels of sub-agents)'],
    ['limits.processMemoryMb', 'limits:\n  processMemoryMb: 16\n', 'must be at least 32 (MiB)'],
    ['limits.processMaxProcesses', 'limits:\n  processMaxProcesses: 0\n', 'must be at least 1 (processes and threads)'],
    [
      'tools.custom.0.memoryMb',
      'tools:\n  custom:\n    - name: t\n      description: d\n      source: "return 1"\n      memoryMb: 4000\n',
      'must be at most 1024 (MiB)',
    ],
  ])('%s (case %#)', async (path, extra, message) => {
    const issues = await issuesOf(taskText('checker', extra));
    expect(issues.find((i) => i.path === path)?.message).toBe(message);
    for (const issue of issues) expect(issue.message).not.toMatch(RAW_ZOD);
  });

  it.each([
    ['maxOutputTokens', 'maxOutputTokens: 0', 'must be at least 1 (tokens)'],
    ['temperature', 'temperature: 3', "must be at most 2 (the provider's range)"],
  ])('model %s', async (field, line, message) => {
    const text = `user: alice@example.com\nintent: x\nagent:\n  name: checker\n  model:\n    driver: openai-compatible\n    id: m\n    baseUrl: http://127.0.0.1:1/v1\n    ${line}\n`;
    const issues = await issuesOf(text);
    expect(issues.find((i) => i.path === `agent.model.${field}`), JSON.stringify(issues)).toMatchObject({ message });
  });
});

describe('a missing task file names the path it looked for', () => {
  it.each([
    ['relative to the current folder', () => relative(process.cwd(), join(dir, 'nope.yaml'))],
    ['absolute', () => join(dir, 'nope.yaml')],
  ])('%s', async (_what, fileOf) => {
    const error = await loadTaskFile(fileOf()).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TaskFileError);
    expect((error as TaskFileError).code).toBe('ERR_TASK_FILE_UNREADABLE');
    expect((error as TaskFileError).issues[0]?.message).toBe(`no such file: looked for ${join(dir, 'nope.yaml')}`);
  });

  it('prints as `<file>: no such file`, not as a field of the file', async () => {
    const file = join(dir, 'nope.yaml');
    const error = await loadTaskFile(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect((error as TaskFileError).message).toBe(`cannot read task file ${file}\n  ${file}: no such file: looked for ${file}`);
    expect((error as TaskFileError).message).not.toContain('(top level)');
  });
});
