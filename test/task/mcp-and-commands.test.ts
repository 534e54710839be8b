/**
 * Task files with MCP servers (`tools.mcp`) and programs (`proc.run`, `grants.commands`): what
 * loads, and each mistake reported with its field path.
 */
import { describe, expect, it } from 'vitest';
import { parseTask } from '../../task/load-task-file';
import { taskFileIssuesOf } from '../support/task-file-issues';

function base(extra: Record<string, unknown>) {
  return {
    user: 'ana@example.com',
    intent: 'triage tickets',
    agent: { name: 'triager', model: { driver: 'scripted', script: [{ final: 'ok' }] } },
    resources: { workspace: '.', hosts: ['api.example.com'] },
    ...extra,
  };
}


describe('tools.mcp', () => {
  it('loads stdio and HTTP servers with grants in Warden form', () => {
    const task = parseTask(
      base({
        tools: {
          mcp: {
            files: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-filesystem', '.'] },
            tickets: { url: 'http://127.0.0.1:8931/mcp', tools: { createIssue: { annotations: { destructiveHint: false } } } },
          },
        },
        grants: { tools: ['files.read_text_file', 'tickets.create-issue'] },
      }),
      'task.yaml',
      '/tmp',
    );
    expect(task.tools.mcp?.['files']).toMatchObject({ command: 'npx', workspace: 'overlay', env: [], hosts: [] });
    expect(task.tools.mcp?.['tickets']).toMatchObject({ url: 'http://127.0.0.1:8931/mcp' });
  });

  it.each([
    ['a server named like a built-in family', { tools: { mcp: { fs: { command: 'x' } } } }, 'tools.mcp.fs', /shadow built-in tools/],
    ['a server name with a dot', { tools: { mcp: { 'a.b': { command: 'x' } } } }, 'tools.mcp.a.b', /lower-case letters/],
    ['a server with neither command nor url', { tools: { mcp: { odd: { args: [] } } } }, 'tools.mcp.odd', /\{ command, args \}|\{ url \}/],
    ['a pinned list in the file', { tools: { mcpPinned: [] } }, 'tools.mcpPinned', /set by Warden/],
    [
      'a grant that is not a Warden form of an MCP name',
      { tools: { mcp: { files: { command: 'x' } } }, grants: { tools: ['files.read-0'] } },
      'grants.tools.0',
      /not the Warden form/,
    ],
    [
      'a user tool in a server’s namespace',
      { tools: { mcp: { files: { command: 'x' } }, custom: [{ name: 'files.read', description: 'd', source: 'return 1;' }] } },
      'tools.custom.0.name',
      /namespace of MCP server "files"/,
    ],
    [
      'a server host the task does not grant',
      { tools: { mcp: { search: { command: 'x', hosts: ['api.example.com'] } } } },
      'tools.mcp.search.hosts.0',
      /must also be granted/,
    ],
    [
      'a declared variable name that is not one',
      { tools: { mcp: { search: { command: 'x', env: ['NOT-A-NAME'] } } } },
      'tools.mcp.search.env.0',
      /environment variable name/,
    ],
  ])('refuses %s', (_label, extra, path, message) => {
    const issues = taskFileIssuesOf(base(extra));
    const issue = issues.find((i) => i.path.startsWith(path));
    expect(issue, JSON.stringify(issues)).toBeDefined();
    expect(issue?.message).toMatch(message);
  });
});

describe('proc.run and grants.commands', () => {
  it('loads a task granting programs', () => {
    const task = parseTask(base({ tools: { builtin: ['proc.run'] }, grants: { tools: ['proc.run'], commands: ['node', 'npm', '/usr/bin/git'] } }), 'task.yaml', '/tmp');
    expect(task.grants.commands).toEqual(['node', 'npm', '/usr/bin/git']);
  });

  it.each([
    ['proc.run granted with no program', { tools: { builtin: ['proc.run'] }, grants: { tools: ['proc.run'] } }, 'grants.commands', /names no program/],
    ['programs without proc.run', { grants: { commands: ['node'] } }, 'grants.commands', /proc.run is not declared/],
    ['a relative path as a program', { tools: { builtin: ['proc.run'] }, grants: { tools: ['proc.run'], commands: ['./node'] } }, 'grants.commands.0', /program name/],
  ])('refuses %s', (_label, extra, path, message) => {
    const issues = taskFileIssuesOf(base(extra));
    const issue = issues.find((i) => i.path.startsWith(path));
    expect(issue, JSON.stringify(issues)).toBeDefined();
    expect(issue?.message).toMatch(message);
  });
});

describe('mcp-client agents', () => {
  it('cannot be sub-agents', () => {
    const issues = taskFileIssuesOf(
      base({
        subagents: { helper: { intent: 'help', agent: { name: 'helper', model: { driver: 'mcp-client' } } } },
        grants: { subagents: ['helper'] },
      }),
    );
    expect(issues.find((i) => i.path === 'subagents.helper.agent.model.driver')?.message).toMatch(/cannot be an "mcp-client" agent/);
  });
});
