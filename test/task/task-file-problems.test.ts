/**
 * What a task file gets wrong is found when it is loaded, named where it is written
 * (`file:line:column`, the offending line under it), and nothing is silently dropped:
 * - every path the file names is checked (a missing workspace was found only after the task started);
 * - `dataFlow: true` on a task the data flow does not carry is refused saying why (it was ignored);
 * - an unknown field, at any nesting level, says which field it most likely means;
 * - a syntax error is one issue with its line and column (it was several, each saying where twice).
 */
import { chmod, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseDocument } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { TaskFileError } from '../../errors';
import { loadTaskFile, parseTask } from '../../task/load-task-file';
import { dataFlowIssues } from '../../task/data-flow-eligibility';
import { takesDataFlow } from '../../workflows/data-flow-choice';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-task-problems-'));
  await mkdir(join(dir, 'ws', 'sub'), { recursive: true });
  await writeFile(join(dir, 'app.db'), '');
  await writeFile(join(dir, 'token.txt'), 'not read by the loader');
  await writeFile(join(dir, 'server.sh'), '#!/bin/sh\n');
  await chmod(join(dir, 'server.sh'), 0o755);
  await writeFile(join(dir, 'not-executable.sh'), '#!/bin/sh\n');
});

const head = `user: alice@example.com
intent: check what the file names
agent:
  name: checker
  model:
    driver: scripted
    script:
      - final: done
`;

let counter = 0;
async function failure(text: string, extension = 'yaml'): Promise<{ error: TaskFileError; file: string }> {
  const file = join(dir, `task-${(counter += 1)}.${extension}`);
  await writeFile(file, text);
  const error = await loadTaskFile(file).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'the file should be refused').toBeInstanceOf(TaskFileError);
  return { error: error as TaskFileError, file };
}

/** 1-based line of the first line of `text` containing `marker`. */
function lineOf(text: string, marker: string): number {
  const index = text.split('\n').findIndex((line) => line.includes(marker));
  expect(index, `marker ${marker}`).toBeGreaterThanOrEqual(0);
  return index + 1;
}

describe('every path a task file names is checked at load', () => {
  // [what, fields after the head, field path, message, the text marking the line it is on]
  const cases: [string, string, string, RegExp, string][] = [
    ['a workspace that does not exist', 'resources:\n  workspace: ./nowhere\n', 'resources.workspace', /the folder .*\/nowhere does not exist \(relative paths are read from the task file's folder, .*\); create it/, 'nowhere'],
    ['a workspace that is a file', 'resources:\n  workspace: ./app.db\n', 'resources.workspace', /app\.db is not a folder/, 'workspace:'],
    ['a database that does not exist', 'resources:\n  workspace: ./ws\n  databases:\n    inv: ./data/inv.db\n', 'resources.databases.inv', /the file .*data\/inv\.db does not exist .*never creates a database/, 'inv:'],
    ['a database that is a folder', 'resources:\n  databases:\n    inv: ./ws\n', 'resources.databases.inv', /ws is not a file/, 'inv:'],
    [
      'a secret file that does not exist (a host with dots in its name)',
      'resources:\n  hosts: [api.example.com]\n  secrets:\n    api.example.com:\n      authorization: "Bearer ${file:./missing-token.txt}"\n',
      'resources.secrets.api.example.com.authorization',
      /missing-token\.txt does not exist/,
      'authorization:',
    ],
    [
      'a granted program that is not installed',
      'tools:\n  builtin: [proc.run]\ngrants:\n  tools: [proc.run]\n  commands: [node, no-such-program-for-warden]\nresources:\n  workspace: ./ws\n',
      'grants.commands.1',
      /program "no-such-program-for-warden" is not installed on this machine \(looked in .*\/usr\/bin.*\); install it or remove it from grants.commands/,
      'commands:',
    ],
    ['a granted program path that does not exist', 'tools:\n  builtin: [proc.run]\ngrants:\n  tools: [proc.run]\n  commands: [/usr/bin/no-such-program-for-warden]\n', 'grants.commands.0', /does not exist/, 'commands:'],
    [
      "a sub-agent's granted program",
      'grants:\n  subagents: [helper]\nsubagents:\n  helper:\n    intent: help\n    agent: { name: helper, model: { driver: scripted, script: [{ final: ok }] } }\n    tools: { builtin: [proc.run] }\n    grants:\n      tools: [proc.run]\n      commands: [no-such-program-for-warden]\n',
      'subagents.helper.grants.commands.0',
      /not installed/,
      'commands:',
    ],
    ['an MCP server program that does not exist', 'tools:\n  mcp:\n    files: { command: /opt/no-such/server, workspace: none }\n', 'tools.mcp.files.command', /the program \/opt\/no-such\/server does not exist/, 'files:'],
    ['an MCP server program that is not executable', 'tools:\n  mcp:\n    files: { command: "PLACEHOLDER/not-executable.sh", workspace: none }\n', 'tools.mcp.files.command', /not-executable\.sh is not executable/, 'files:'],
    ["an MCP server's working folder that does not exist", 'tools:\n  mcp:\n    files: { command: node, cwd: sub/missing }\nresources:\n  workspace: ./ws\n', 'tools.mcp.files.cwd', /ws\/sub\/missing does not exist \(the working folder is relative to the workspace/, 'files:'],
    ["an MCP server's working folder outside the workspace", 'tools:\n  mcp:\n    files: { command: node, cwd: ../.. }\nresources:\n  workspace: ./ws\n', 'tools.mcp.files.cwd', /is outside the workspace/, 'files:'],
    ['a policy pack folder that does not exist', 'policyPacks: [foundation, ./packs/missing]\n', 'policyPacks.1', /no policy pack ".*packs\/missing"/, 'policyPacks:'],
  ];

  it.each(cases)('%s', async (_what, fields, path, message, marker) => {
    const text = head + fields.replace('PLACEHOLDER', dir);
    const { error, file } = await failure(text);
    expect(error.code).toBe('ERR_TASK_FILE_INVALID');
    const issue = error.issues.find((i) => i.path === path);
    expect(issue, JSON.stringify(error.issues)).toBeDefined();
    expect(issue!.message).toMatch(message);
    expect(issue!.line).toBe(lineOf(text, marker));
    expect(error.message).toContain(`${file}:${issue!.line}:${issue!.column}: ${path}: `);
  });

  it('loads a file whose paths all exist', async () => {
    const file = join(dir, 'all-there.yaml');
    await writeFile(
      file,
      `${head}tools:\n  builtin: [proc.run]\n  mcp:\n    files: { command: ${join(dir, 'server.sh')}, cwd: sub }\ngrants:\n  tools: [proc.run]\n  commands: [node]\n` +
        'resources:\n  workspace: ./ws\n  databases: { app: ./app.db }\n  hosts: [api.example.com]\n  secrets:\n    api.example.com: { authorization: "Bearer ${file:./token.txt}" }\n',
    );
    const task = await loadTaskFile(file);
    expect(task.resources.workspace).toBe(join(dir, 'ws'));
  });
});

describe('dataFlow: true is honoured or refused, never ignored', () => {
  const helper = 'subagents:\n  helper:\n    intent: help\n    agent: { name: helper, model: { driver: scripted, script: [{ final: ok }] } }\n';
  // [what, fields after the head, what the message names, eligible]
  const cases: [string, string, RegExp, boolean][] = [
    ['a task with sub-agents', `dataFlow: true\ngrants: { subagents: [helper] }\n${helper}`, /does not carry sub-agents .*\(subagents\); remove `dataFlow: true` .*or remove subagents/, false],
    ['a task with MCP servers', 'dataFlow: true\ntools:\n  mcp:\n    tickets: { url: "http://127.0.0.1:9/mcp" }\n', /MCP servers as tool sources \(tools.mcp\)/, false],
    ['a task allowing host code', 'dataFlow: true\nresources:\n  workspace: ./ws\n  allowHostCode: [.envrc]\n', /host-code files .*\(resources.allowHostCode\)/, false],
    ['an mcp serve session', 'dataFlow: true\n', /"mcp-client" agent .*\(agent.model.driver\)/, false],
    ['a task the data flow carries', 'dataFlow: true\nresources:\n  workspace: ./ws\n', /^$/, true],
  ];

  const textOf = (what: string, fields: string) => (what === 'an mcp serve session' ? head.replace(/ {4}driver: scripted\n {4}script:\n {6}- final: done\n/, '    driver: mcp-client\n') : head) + fields;

  it.each(cases)('%s', async (what, fields, message, eligible) => {
    const text = textOf(what, fields);
    if (eligible) {
      const file = join(dir, 'flow-ok.yaml');
      await writeFile(file, text);
      expect((await loadTaskFile(file)).dataFlow).toBe(true);
      return;
    }
    const { error } = await failure(text);
    const issue = error.issues.find((i) => i.path === 'dataFlow');
    expect(issue, JSON.stringify(error.issues)).toBeDefined();
    expect(issue!.message).toMatch(message);
    expect(issue!.line).toBe(lineOf(text, 'dataFlow:'));
  });

  it.each(cases)("agrees with the workflow's own choice: %s", (what, fields, _message, eligible) => {
    const task = parseTask(parseDocument(textOf(what, fields)).toJS(), 'flow.yaml', dir);
    expect(dataFlowIssues(task).length === 0).toBe(eligible);
    expect(takesDataFlow({ task })).toBe(eligible);
  });
});

describe('an unknown field says which field it most likely means, at any level', () => {
  // [fields after the head (or a whole text), object path, message, marker of its line]
  const cases: [string, string, RegExp, string][] = [
    ['polcyPacks: [foundation]\n', '', /^unknown field "polcyPacks"; did you mean "policyPacks"\?$/, 'polcyPacks'],
    ['limits: { maxStep: 3 }\n', 'limits', /did you mean "maxSteps"\?/, 'maxStep'],
    ['resources: { workspce: ./ws }\n', 'resources', /did you mean "workspace"\?/, 'workspce'],
    ['grants: { tool: [fs.read] }\n', 'grants', /did you mean "tools"\?/, 'tool:'],
    ['tools:\n  custom:\n    - name: t\n      description: d\n      source: return 1\n      capabilites: []\n', 'tools.custom.0', /did you mean "capabilities"\?/, 'capabilites'],
    ['tools:\n  mcp:\n    srv: { comand: node }\n', 'tools.mcp.srv', /did you mean "command"\?/, 'comand'],
    ['attestation: { tets: [] }\n', 'attestation', /did you mean "tests"\?/, 'tets'],
    [`grants: { subagents: [helper] }\nsubagents:\n  helper:\n    intent: i\n    agent: { name: helper, model: { driver: scripted, script: [{ final: ok }] } }\n    limits: { maxDepht: 1 }\n`, 'subagents.helper.limits', /did you mean "maxDepth"\?/, 'maxDepht'],
    ['colour: blue\n', '', /^unknown field "colour" \(the fields here are: user, intent, agent, .*\)$/, 'colour'],
  ];

  it.each(cases)('%s', async (fields, path, message, marker) => {
    const text = head + fields;
    const { error } = await failure(text);
    const issue = error.issues.find((i) => i.path === path && /unknown field/.test(i.message));
    expect(issue, JSON.stringify(error.issues)).toBeDefined();
    expect(issue!.message).toMatch(message);
    expect(issue!.line).toBe(lineOf(text, marker));
    // The caret is under the unknown key itself.
    expect(issue!.excerpt!.slice(issue!.column! - 1)).toMatch(new RegExp(`^${marker.replace(':', '')}`));
  });

  it("offers only the fields of the model's own driver", async () => {
    const scripted = await failure(head.replace('    driver: scripted\n', '    driver: scripted\n    apiKeyEnv: KEY\n'));
    expect(scripted.error.issues.map((i) => i.message)).toContain('unknown field "apiKeyEnv" (the fields here are: driver, id, version, script)');
    const openai = await failure(head.replace(/ {4}driver: scripted\n[\s\S]*$/, '    driver: openai\n    id: gpt-4.1-mini\n    baseURL: https://example.com/v1\n'));
    expect(openai.error.issues.map((i) => i.message)).toContain('unknown field "baseURL"; did you mean "baseUrl"?');
  });

  it('never offers a field Warden sets itself', async () => {
    const { error } = await failure(`${head}sourc: x\n`);
    expect(error.issues[0]!.message).not.toMatch(/did you mean "source"/);
  });

  it('the script of a model and a claim are found too', async () => {
    const { error } = await failure(head.replace('- final: done', '- final: done\n        claim: [x]'));
    expect(error.issues.map((i) => i.message)).toContain('unknown field "claim"; did you mean "claims"?');
  });
});

describe('a file that is not a mapping of fields says what it holds', () => {
  it.each([
    ['an empty file', '', /^the file holds nothing: a task file is a mapping of fields \(user, intent, agent/],
    ['a list', '- user: a\n', /^the file holds a list: /],
    ['a word', 'hello\n', /^the file holds a string: /],
  ])('%s', async (_what, text, message) => {
    const { error } = await failure(text);
    expect(error.issues).toEqual([{ path: '', message: expect.stringMatching(message) }]);
  });
});

describe('a syntax error is one issue: file:line:column, what is wrong, the offending line', () => {
  // [what, text, extension, line, the offending line]
  const cases: [string, string, string, number, string][] = [
    ['an unclosed flow sequence', 'user: a\nintent: b\nagent:\n  name: x\n  model: { driver: scripted, script: [ {final: ok} }\n', 'yaml', 5, '  model: { driver: scripted, script: [ {final: ok} }'],
    ['an unclosed quote (shown where it opens)', 'user: a\nintent: "b\nagent: c\n', 'yaml', 2, 'intent: "b'],
    ['a tab as indentation', 'user: a\n\tintent: b\n', 'yaml', 2, '\tintent: b'],
    ['a key given twice', 'user: a\nintent: b\nuser: c\n', 'yaml', 3, 'user: c'],
    ['a mapping in a compact mapping', 'user: a\nagent:\n  name: x\n   model: bad\n', 'yaml', 3, '  name: x'],
    ['two documents in one file', 'user: a\n---\nuser: b\n', 'yaml', 2, '---'],
    ['JSON with a stray comma', '{"user": "a",\n "intent": "b",,\n "agent": {}}\n', 'json', 2, ' "intent": "b",,'],
  ];

  it.each(cases)('%s', async (_what, text, extension, line, offending) => {
    const { error, file } = await failure(text, extension);
    expect(error.issues).toHaveLength(1);
    const [issue] = error.issues;
    expect(issue!.message).toMatch(extension === 'json' ? /^not valid JSON: \S/ : /^not valid YAML: \S/);
    // Said once: no "at line" inside the message, no second line.
    expect(issue!.message).not.toMatch(/at line|\n/);
    expect(issue!.line).toBe(line);
    expect(issue!.excerpt).toBe(offending);
    expect(issue!.column).toBeGreaterThanOrEqual(1);
    expect(issue!.column).toBeLessThanOrEqual(offending.length + 1);
    const printed = error.message.split('\n');
    expect(printed).toEqual([
      `invalid task file ${file}`,
      `  ${file}:${line}:${issue!.column}: ${issue!.message}`,
      `    ${line} | ${offending}`,
      `    ${' '.repeat(String(line).length)} | ${' '.repeat(issue!.column! - 1)}^`,
    ]);
  });
});
