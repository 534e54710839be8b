/**
 * A mistyped tool name is refused when the task file is loaded, at its line and column, with the
 * tool it most likely means: in a scripted step (`fs.wirte`) and in `tools.builtin` (`fs.raed`).
 * A scripted step far from every tool still loads: it is the run's denial to show (a stand-in for
 * an injected model calling what it was not given).
 */
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { TaskFileError } from '../../errors';
import { loadTaskFile } from '../../task/load-task-file';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-tool-typo-'));
  await mkdir(join(dir, 'ws'));
});

/** A task whose scripted agent calls `step`, declaring `builtin`; sub-agent `helper` calls `subStep` when given. */
function taskText(step: string, builtin = '[fs.write]', subStep?: string): string {
  const sub =
    subStep === undefined
      ? ''
      : `subagents:\n  helper:\n    intent: help\n    agent:\n      name: helper\n      model:\n        driver: scripted\n        script:\n          - tool: ${subStep}\n          - final: ok\n    tools: { builtin: [fs.read] }\n    grants: { tools: [fs.read] }\n`;
  return `user: eve@example.com
intent: x
agent:
  name: a
  model:
    driver: scripted
    script:
      - tool: ${step}
        args: { path: a.txt, content: "x" }
      - final: ok
tools: { builtin: ${builtin} }
grants: { tools: [fs.write] }
resources: { workspace: ./ws }
${sub}`;
}

let counter = 0;
async function issuesOf(text: string) {
  const file = join(dir, `task-${(counter += 1)}.yaml`);
  await writeFile(file, text);
  const error = await loadTaskFile(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  if (error === undefined) return [];
  expect(error).toBeInstanceOf(TaskFileError);
  return (error as TaskFileError).issues;
}

describe('a mistyped tool name is refused at load time with what it likely means', () => {
  it.each([
    ['a scripted step, near a declared tool', taskText('fs.wirte'), 'agent.model.script.0.tool', 'unknown tool "fs.wirte"; did you mean "fs.write"?', 8, 9],
    ['a scripted step, near an undeclared built-in', taskText('fs.raed'), 'agent.model.script.0.tool', 'did you mean "fs.read"? (declare it under tools.builtin)', 8, 9],
    ['a sub-agent\'s scripted step', taskText('fs.write', '[fs.write, fs.read]', 'fs.rad'), 'subagents.helper.agent.model.script.0.tool', 'did you mean "fs.read"?', 22, 13],
    ['tools.builtin', taskText('fs.write', '[fs.raed]'), 'tools.builtin.0', 'unknown built-in tool "fs.raed"; did you mean "fs.read"?', 11, 20],
  ])('%s', async (_label, text, path, message, line, column) => {
    const issue = (await issuesOf(text)).find((i) => i.path === path);
    expect(issue?.message).toContain(message);
    expect({ line: issue?.line, column: issue?.column }).toEqual({ line, column });
  });

  it.each([
    ['a declared tool', taskText('fs.write')],
    ['a name far from every tool (a run-time denial)', taskText('shell.exec')],
  ])('loads %s', async (_label, text) => {
    expect(await issuesOf(text)).toEqual([]);
  });

  it('lists the built-in tools when no name is close', async () => {
    const issue = (await issuesOf(taskText('fs.write', '[compress]'))).find((i) => i.path === 'tools.builtin.0');
    expect(issue?.message).toMatch(/^a built-in tool: fs\.read, /);
  });
});
