import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { BUILTIN_TOOL_NAMES } from '../../task/task-schema';
import { builtinTools, getBuiltinTool } from '../../tools/builtin-tools';
import { codeOf, makeTempDir, outputOf, toolCall } from './sandbox-test-kit';

describe('the built-in tool table', () => {
  it('has exactly the built-in tool names of the task schema', () => {
    expect(Object.keys(builtinTools()).sort()).toEqual([...BUILTIN_TOOL_NAMES].sort());
  });

  it.each(BUILTIN_TOOL_NAMES)('%s declares only its own capability and an object input schema', (name) => {
    const tool = getBuiltinTool(name);
    expect(tool.name).toBe(name);
    expect(tool.capabilities).toEqual([name]);
    expect(tool.inputSchema['type']).toBe('object');
    expect(tool.source).toContain(`warden.${name}(`);
  });

  it('unknown names and prototype keys are not tools', () => {
    expect(getBuiltinTool('fs.delete')).toBeUndefined();
    expect(getBuiltinTool('constructor')).toBeUndefined();
    expect(getBuiltinTool('__proto__')).toBeUndefined();
  });

  it('is frozen', () => {
    expect(() => {
      (builtinTools()['fs.read'] as { source: string }).source = 'return 1;';
    }).toThrow(TypeError);
    expect(Object.isFrozen(builtinTools()['sql.query'].inputSchema)).toBe(true);
  });
});

describe('a user-defined tool calling capabilities', () => {
  let client: SandboxClient;
  let workspace: string;
  let dbFile: string;

  beforeAll(async () => {
    client = await SandboxClient.start();
    workspace = makeTempDir('user-tool');
    fs.writeFileSync(path.join(workspace, 'notes.txt'), 'ship the release\nfix the flaky test\nship the docs\n');
    dbFile = path.join(workspace, 'todo.db');
    const db = new Database(dbFile);
    db.exec('CREATE TABLE todo (title TEXT NOT NULL, done INTEGER NOT NULL DEFAULT 0)');
    db.close();
  });

  afterAll(async () => {
    await client.close();
    fs.rmSync(workspace, { recursive: true, force: true });
  });

  // What a task file would declare as a custom tool: read notes, store each line as a todo,
  // write a summary file, and return counts.
  const IMPORT_NOTES = `
    const lines = warden.fs.read(input.file).split('\\n').filter((line) => line.trim() !== '');
    let inserted = 0;
    for (const line of lines) inserted += warden.sql.exec('todo', 'INSERT INTO todo (title) VALUES (?)', [line]).changes;
    const shipping = warden.sql.query('todo', "SELECT count(*) AS n FROM todo WHERE title LIKE 'ship%'")[0].n;
    const written = warden.fs.write('summary/todo.json', JSON.stringify({ inserted, shipping }));
    return { inserted, shipping, summary: written.path };
  `;

  const grantFor = (root: string): CapabilityGrant => ({
    fs: { root, read: true, write: true, list: false },
    sql: { databases: { todo: dbFile }, query: true, exec: true },
  });

  it('uses fs and sql together and returns JSON', async () => {
    const response = await client.run(toolCall(IMPORT_NOTES, { file: 'notes.txt' }, grantFor(workspace)));
    expect(outputOf(response)).toEqual({ inserted: 3, shipping: 2, summary: 'summary/todo.json' });
    expect(JSON.parse(fs.readFileSync(path.join(workspace, 'summary', 'todo.json'), 'utf8'))).toEqual({ inserted: 3, shipping: 2 });
  });

  it('fails with the capability code when its input points outside the workspace', async () => {
    const response = await client.run(toolCall(IMPORT_NOTES, { file: '../../etc/passwd' }, grantFor(workspace)));
    expect(codeOf(response)).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
  });

  it('fails with ERR_DATABASE_NOT_GRANTED when the database is not in its grant', async () => {
    const noDb: CapabilityGrant = { ...grantFor(workspace), sql: { databases: {}, query: true, exec: true } };
    const response = await client.run(toolCall(IMPORT_NOTES, { file: 'notes.txt' }, noDb));
    expect(codeOf(response)).toBe('ERR_DATABASE_NOT_GRANTED');
  });
});
