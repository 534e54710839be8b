/**
 * `warden snapshots` and `warden rollback` of a task that ran and changed nothing (it only read, or
 * its only write was refused): there is no recovery record, because nothing was snapshotted,
 * committed or journaled. They used to say ERR_TASK_RECORDS_NOT_FOUND "nothing recorded for <id>"
 * (exit 1), as for an id that never ran here, so a user could not tell "nothing to undo" from
 * "wrong id or wrong state folder". Now the custody ledger tells them apart: a task with custody
 * records is said to have changed nothing (exit 0, text and JSON); an id with none stays exit 1.
 *
 * Real parts: tasks on the test Temporal server and worker, the real custody ledger of the test
 * state folder, the real commands.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rollbackCommand } from '../../cli/commands/rollback';
import { snapshotsCommand } from '../../cli/commands/snapshots';
import type { CliIo } from '../../cli/cli-io';
import { taskCustodySummaryOf } from '../../custody/task-custody-summary';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let workspace: string;

beforeAll(async () => {
  env = await startWardenTestEnv();
  workspace = mkdtempSync(join(tmpdir(), 'warden-changed-nothing-'));
  writeFileSync(join(workspace, 'notes.txt'), 'keep me\n');
}, 300_000);
afterAll(async () => env?.close());

/** A command's exit code and everything it printed, each stream apart. */
async function command(run: (argv: string[], io: CliIo) => Promise<number>, argv: string[], env: NodeJS.ProcessEnv = {}) {
  const out = { stdout: '', stderr: '' };
  const io: CliIo = { stdout: (t) => void (out.stdout += t), stderr: (t) => void (out.stderr += t), env: { WARDEN_STATE_DIR: TEST_STATE_DIR, ...env } };
  const code = await run(argv, io);
  return { code, ...out };
}

/** Tasks that leave no recovery record: each ran here, and changed no file and no SQL row. */
const CHANGED_NOTHING: { name: string; script: unknown[]; tools: string[] }[] = [
  { name: 'a task that only read', script: [{ tool: 'fs.read', args: { path: 'notes.txt' } }, { final: 'read it' }], tools: ['fs.read'] },
  { name: 'a task whose only write was refused (outside the workspace)', script: [{ tool: 'fs.write', args: { path: '../escape.txt', content: 'x' } }, { final: 'tried' }], tools: ['fs.write'] },
  { name: 'a task that called no tool', script: [{ final: 'nothing to do' }], tools: ['fs.read'] },
];

describe.each(CHANGED_NOTHING)('$name', (row) => {
  const workflowId = `changed-nothing-${randomUUID()}`;

  beforeAll(async () => {
    const result = await env.runTask(
      {
        user: 'alice@example.com',
        intent: row.name,
        agent: { name: 'reader', model: { driver: 'scripted', script: row.script } },
        tools: { builtin: row.tools },
        grants: { tools: row.tools },
        resources: { workspace },
      },
      { workflowId },
    );
    // Completed, or denied when its only write was refused: either way it ran.
    expect(['completed', 'denied']).toContain(result.status);
  }, 300_000);

  it('ran here: the custody ledger holds records of it', async () => {
    expect(await taskCustodySummaryOf(TEST_STATE_DIR, workflowId)).toMatchObject({ records: expect.any(Number), changingTools: [] });
    expect((await taskCustodySummaryOf(TEST_STATE_DIR, workflowId)).records).toBeGreaterThan(0);
  });

  it('warden snapshots: exit 0, says it changed nothing and how it knows', async () => {
    const out = await command(snapshotsCommand, [workflowId]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toMatch(new RegExp(`^task ${workflowId} ran \\(\\d+ custody records?\\) and changed nothing Warden keeps a record to undo`));
    expect(out.stderr).toBe('');
    const json = await command(snapshotsCommand, [workflowId, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ workflowId, snapshots: [], sqlCalls: [], changedNothing: true, custodyRecords: expect.any(Number) });
  });

  it('warden rollback: exit 0, nothing to roll back, and the workspace as it was', async () => {
    const out = await command(rollbackCommand, [workflowId]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain(`nothing to roll back: task ${workflowId} ran (`);
    const json = await command(rollbackCommand, [workflowId, '--json']);
    expect(JSON.parse(json.stdout)).toMatchObject({ workflowId, files: { status: 'nothing-to-roll-back', restored: [], deleted: [] }, sql: [], changedNothing: true });
    expect(readFileSync(join(workspace, 'notes.txt'), 'utf8')).toBe('keep me\n');
  });
});

describe('a task that changed files, whose records are not where the command looks', () => {
  const workflowId = `changed-files-${randomUUID()}`;
  /** A recovery folder the worker never wrote to, as when the command is not given the workers' WARDEN_SHARED_DIR. */
  let elsewhere: string;

  beforeAll(async () => {
    elsewhere = mkdtempSync(join(tmpdir(), 'warden-records-elsewhere-'));
    const result = await env.runTask(
      { user: 'alice@example.com', intent: 'write a file', agent: { name: 'writer', model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: 'made.txt', content: 'new' } }, { final: 'wrote' }] } }, tools: { builtin: ['fs.write'] }, grants: { tools: ['fs.write'] }, resources: { workspace } },
      { workflowId },
    );
    expect(result.status).toBe('completed');
  }, 300_000);

  it('the custody ledger names the call that may have changed things', async () => {
    expect((await taskCustodySummaryOf(TEST_STATE_DIR, workflowId)).changingTools).toEqual(['fs.write']);
  });

  it.each([['snapshots', snapshotsCommand] as const, ['rollback', rollbackCommand] as const])('warden %s: never "changed nothing": exit 1 naming the call and where it looked', async (_name, run) => {
    const out = await command(run, [workflowId], { WARDEN_SHARED_DIR: elsewhere });
    expect(out.code, out.stdout).toBe(1);
    expect(out.stdout).toBe('');
    expect(out.stderr).toContain(`ERR_TASK_RECORDS_NOT_FOUND: ${workflowId} ran and made calls that may have changed things (fs.write: `);
    expect(out.stderr).toContain(`but ${elsewhere} holds no recovery record of them`);
  });

  it('with the folder the worker wrote to, the records are found and rolled back', async () => {
    const listed = await command(snapshotsCommand, [workflowId]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(listed.stdout).toContain('made.txt');
    const rolled = await command(rollbackCommand, [workflowId]);
    expect(rolled.code, rolled.stderr).toBe(0);
    expect(rolled.stdout).toContain('deleted  made.txt');
  });
});

describe("a user tool's readOnlyHint is its author's claim", () => {
  it('a call of a user tool annotated read-only counts as one that may have changed things', async () => {
    const workflowId = `claims-read-only-${randomUUID()}`;
    const result = await env.runTask(
      {
        user: 'alice@example.com',
        intent: 'call a tool that says it only reads',
        agent: { name: 'claimant', model: { driver: 'scripted', script: [{ tool: 'peek', args: {} }, { final: 'done' }] } },
        tools: { custom: [{ name: 'peek', description: 'says it only reads', input: { type: 'object' }, source: 'return 1;', annotations: { readOnlyHint: true } }] },
        grants: { tools: ['peek'] },
        resources: { workspace },
      },
      { workflowId },
    );
    expect(result.status).toBe('completed');
    expect((await taskCustodySummaryOf(TEST_STATE_DIR, workflowId)).changingTools).toEqual(['peek']);
    const out = await command(rollbackCommand, [workflowId]);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('made calls that may have changed things (peek: ');
  }, 300_000);
});

describe('a user tool that failed after it changed something', () => {
  it('a call of a user tool that committed SQL and then threw counts as one that may have changed things', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-failed-after-sql-'));
    const database = join(dir, 'inv.db');
    const db = new Database(database);
    db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, qty INTEGER); INSERT INTO items (qty) VALUES (1)');
    db.close();
    const workflowId = `failed-after-sql-${randomUUID()}`;
    await env.runTask(
      {
        user: 'alice@example.com',
        intent: 'restock, then fail',
        agent: { name: 'restocker', model: { driver: 'scripted', script: [{ tool: 'restock', args: {} }, { final: 'done' }] } },
        tools: { builtin: ['sql.exec'], custom: [{ name: 'restock', description: 'updates then throws', input: { type: 'object' }, capabilities: ['sql.exec'], source: "await warden.sql.exec('inv', 'UPDATE items SET qty = 999 WHERE id = 1', []); throw new Error('boom');" }] },
        grants: { tools: ['restock', 'sql.exec'], databases: ['inv'] },
        resources: { databases: { inv: database } },
      },
      { workflowId },
    );
    expect((await taskCustodySummaryOf(TEST_STATE_DIR, workflowId)).changingTools).toEqual(['restock']);
    // Looked for where the records are not: never "changed nothing".
    const out = await command(snapshotsCommand, [workflowId], { WARDEN_SHARED_DIR: mkdtempSync(join(tmpdir(), 'warden-records-elsewhere-')) });
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('made calls that may have changed things (restock: ');
  }, 300_000);
});

describe('an id that never ran under this state folder', () => {
  it.each(['made-up-child', 'kid-99'])('a sub-agent id %s under a task that ran: exit 1, whatever the rest of its tree recorded', async (child) => {
    const root = `changed-nothing-parent-${randomUUID()}`;
    await env.runTask({ user: 'alice@example.com', intent: 'read', agent: { name: 'reader', model: { driver: 'scripted', script: [{ tool: 'fs.read', args: { path: 'notes.txt' } }, { final: 'read' }] } }, tools: { builtin: ['fs.read'] }, grants: { tools: ['fs.read'] }, resources: { workspace } }, { workflowId: root });
    expect((await taskCustodySummaryOf(TEST_STATE_DIR, root)).records).toBeGreaterThan(0);
    for (const run of [snapshotsCommand, rollbackCommand]) {
      const out = await command(run, [`${root}/${child}`]);
      expect(out.code, out.stdout).toBe(1);
      expect(out.stderr).toContain(`ERR_TASK_RECORDS_NOT_FOUND: nothing recorded for ${root}/${child}`);
    }
  }, 300_000);

  it.each([['snapshots', snapshotsCommand] as const, ['rollback', rollbackCommand] as const])('warden %s: still ERR_TASK_RECORDS_NOT_FOUND, exit 1', async (_name, run) => {
    const workflowId = `never-ran-${randomUUID()}`;
    expect((await taskCustodySummaryOf(TEST_STATE_DIR, workflowId)).records).toBe(0);
    const out = await command(run, [workflowId]);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain(`ERR_TASK_RECORDS_NOT_FOUND: nothing recorded for ${workflowId}`);
    expect(out.stdout).toBe('');
  });

  it('rollback --run of a task that changed nothing is looked for in the recovery records only (exit 1)', async () => {
    const workflowId = `changed-nothing-run-${randomUUID()}`;
    await env.runTask({ user: 'alice@example.com', intent: 'nothing', agent: { name: 'idle', model: { driver: 'scripted', script: [{ final: 'idle' }] } } }, { workflowId });
    const out = await command(rollbackCommand, [workflowId, '--run', 'some-run-id']);
    expect(out.code).toBe(1);
    expect(out.stderr).toContain('ERR_TASK_RECORDS_NOT_FOUND');
  });
});
