import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { rollbackCommand } from '../../cli/commands/rollback';
import { snapshotsCommand } from '../../cli/commands/snapshots';
import type { CliIo } from '../../cli/cli-io';
import { createFsCapability } from '../../sandbox/capabilities/fs-capability';
import { createSqlCapability } from '../../sandbox/capabilities/sql-capability';
import { journalPathOf, taskKeyOf } from '../../recovery/recovery-paths';
import { commitOverlay, openOverlay } from '../../recovery/workspace-overlay';
import { snapshotWorkspace } from '../../recovery/workspace-snapshot';
import { makeTempDir, treeOf, writeTree } from './recovery-test-kit';

let stateDir: string;
let workspace: string;
let dbFile: string;
const workflowId = 'warden-scribe-cli1';

function io(): CliIo & { out: string; err: string } {
  const captured = {
    out: '',
    err: '',
    stdout: (text: string) => void (captured.out += text),
    stderr: (text: string) => void (captured.err += text),
    env: { WARDEN_STATE_DIR: stateDir },
  };
  return captured;
}

const rows = () => {
  const db = new Database(dbFile, { readonly: true });
  try {
    return db.prepare('SELECT id, v FROM t ORDER BY id').all();
  } finally {
    db.close();
  }
};

/** A finished task: pre-task snapshot, a committed overlay (one changed, one new file), two SQL calls. */
async function runTask(id = workflowId): Promise<void> {
  const taskKey = taskKeyOf(id);
  await snapshotWorkspace({ stateDir, taskKey, workspace });
  const overlay = await openOverlay({ stateDir, taskKey, workspace });
  const files = createFsCapability({ root: workspace, read: true, write: true, list: true, overlay: overlay.upper });
  files.write('notes.txt', 'rewritten by the agent');
  files.write('out/report.md', '# report');
  const journal = journalPathOf(stateDir, taskKey);
  createSqlCapability({ databases: { shop: dbFile }, query: true, exec: true, journal, callId: `${id}:1` }).exec('shop', "UPDATE t SET v = 'changed'");
  createSqlCapability({ databases: { shop: dbFile }, query: true, exec: true, journal, callId: `${id}:2` }).exec('shop', "INSERT INTO t (v) VALUES ('added')");
  await commitOverlay({ stateDir, taskKey, workspace });
}

beforeEach(() => {
  stateDir = makeTempDir('cli-state');
  workspace = makeTempDir('cli-ws');
  writeTree(workspace, { 'notes.txt': 'my notes' });
  dbFile = path.join(stateDir, 'shop.db');
  const db = new Database(dbFile);
  db.exec("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('one');");
  db.close();
});

afterEach(() => {
  fs.rmSync(stateDir, { recursive: true, force: true });
  fs.rmSync(workspace, { recursive: true, force: true });
});

describe('warden snapshots', () => {
  it('lists the pre-task snapshot, the commit and the SQL journal', async () => {
    await runTask();
    const cli = io();
    expect(await snapshotsCommand([workflowId], cli)).toBe(0);
    expect(cli.out).toContain('pre-task snapshot, complete');
    expect(cli.out).toContain('commit snapshot, committed');
    expect(cli.out).toMatch(/out\/report\.md\s+absent -> [0-9a-f]{12}\s+\(created by the task\)/);
    expect(cli.out).toContain(`${workflowId}:1  update shop.t`);
    const json = io();
    expect(await snapshotsCommand([workflowId, '--json'], json)).toBe(0);
    expect(JSON.parse(json.out)).toMatchObject({ workflowId, taskKey: workflowId, sqlCalls: [{ callId: `${workflowId}:1` }, { callId: `${workflowId}:2` }] });
  });

  it('finds a task by a sub-agent workflow id', async () => {
    await runTask();
    const cli = io();
    expect(await snapshotsCommand([`${workflowId}/reviewer-3`], cli)).toBe(0);
    expect(cli.out).toContain(`task ${workflowId}`);
  });

  it('unknown task: exit 1; bad usage: exit 2', async () => {
    const cli = io();
    expect(await snapshotsCommand(['nope'], cli)).toBe(1);
    expect(cli.err).toContain('nothing recorded for nope');
    expect(await snapshotsCommand([], io())).toBe(2);
    expect(await snapshotsCommand(['a', 'b'], io())).toBe(2);
  });
});

describe('warden rollback', () => {
  it('restores the workspace and undoes the SQL calls, also after commit; a second run does nothing', async () => {
    const before = treeOf(workspace);
    const rowsBefore = rows();
    await runTask();
    expect(treeOf(workspace)).not.toEqual(before);
    const cli = io();
    expect(await rollbackCommand([workflowId], cli)).toBe(0);
    expect(cli.out).toContain('1 file(s) restored, 1 deleted');
    expect(cli.out).toContain('SQL: 2 call(s) undone');
    expect(treeOf(workspace)).toEqual(before);
    expect(fs.existsSync(path.join(workspace, 'out'))).toBe(false);
    expect(rows()).toEqual(rowsBefore);

    const again = io();
    expect(await rollbackCommand([workflowId], again)).toBe(0);
    expect(again.out).toContain('already rolled back');
    expect(again.out).toContain('SQL: nothing to undo');
  });

  it('refuses a file changed since the task, naming it; --force overwrites', async () => {
    await runTask();
    fs.writeFileSync(path.join(workspace, 'notes.txt'), 'a human edit');
    const cli = io();
    expect(await rollbackCommand([workflowId], cli)).toBe(1);
    expect(cli.err).toContain('ERR_ROLLBACK_CONFLICT');
    expect(cli.err).toContain('notes.txt');
    expect(await rollbackCommand([workflowId, '--force'], io())).toBe(0);
    expect(treeOf(workspace)).toEqual({ 'notes.txt': 'my notes' });
  });

  it('--snapshot restores the pre-task snapshot', async () => {
    await runTask();
    const cli = io();
    expect(await rollbackCommand([workflowId, '--snapshot'], cli)).toBe(0);
    expect(cli.out).toContain('1 file(s) restored, 1 deleted');
    expect(treeOf(workspace)).toEqual({ 'notes.txt': 'my notes' });
  });

  it('unknown task: exit 1; bad usage: exit 2', async () => {
    expect(await rollbackCommand(['nope'], io())).toBe(1);
    expect(await rollbackCommand([], io())).toBe(2);
    expect(await rollbackCommand(['a', '--bogus'], io())).toBe(2);
  });
});
