/**
 * Attack: someone who can write the folder a task's database sits in (a workspace, a shared data
 * folder) swaps the database for a symbolic link to Warden's credential store after the task
 * started. Warden checks `resources.databases` against its own state only when the task begins
 * (`beginTask`); the SQL capability then opens whatever the path names at each call, so the
 * agent's next `sql.query` reads `identity.db`: every grant token lands in the tool output and
 * the workflow history.
 *
 * Expected: like the fs capability (which refuses protected folders and key files at every
 * call, whatever link leads there), the SQL capability never opens Warden's state, key files or
 * credential stores, checked on the file it actually opens.
 */
import { mkdtempSync, renameSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findSecretsIn } from '../../identity/redact';
import type { TaskResult } from '../../task/task-run';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { startHoldingServer, type HoldingServer } from '../support/attack-kit';

let env: WardenTestEnv;
let server: HoldingServer;
let dir: string;

beforeAll(async () => {
  env = await startWardenTestEnv();
  dir = mkdtempSync(join(tmpdir(), 'warden-attack-dblink-'));
  const real = join(dir, 'crm-real.db');
  const db = new Database(real);
  db.exec('CREATE TABLE grants (grant_id TEXT, token TEXT)');
  db.prepare('INSERT INTO grants VALUES (?, ?)').run('g1', 'no secret here');
  db.close();
  symlinkSync(real, join(dir, 'crm.db'));
  // The swap happens while the task's first call is in flight, i.e. after the task began.
  server = await startHoldingServer(() => {
    symlinkSync(join(TEST_STATE_DIR, 'identity.db'), join(dir, 'crm.db.next'));
    renameSync(join(dir, 'crm.db.next'), join(dir, 'crm.db'));
  });
});
afterAll(async () => {
  server?.release();
  await server?.close();
  await env?.close();
});

describe('a database swapped for a link to the credential store after the task began', () => {
  let result: TaskResult;

  beforeAll(async () => {
    const running = env.runTask({
      user: 'alice@example.com',
      intent: `look at http://${server.host}/status, then list the grants table of the crm`,
      agent: {
        name: 'analyst',
        model: {
          driver: 'scripted',
          script: [
            { tool: 'http.fetch', args: { url: `http://${server.host}/status` } },
            { tool: 'sql.query', args: { database: 'crm', sql: 'SELECT grant_id, token FROM grants LIMIT 5' } },
            { final: 'done' },
          ],
        },
      },
      tools: { builtin: ['http.fetch', 'sql.query'] },
      grants: { tools: ['http.fetch', 'sql.query'], hosts: [server.host], databases: ['crm'] },
      limits: { onDeny: 'continue' },
      resources: { hosts: [server.host], databases: { crm: join(dir, 'crm.db') } },
    });
    await server.arrived;
    server.release();
    result = await running;
  });

  it('refuses the query on the swapped file', () => {
    expect(result.steps[0]?.executed).toBe(true);
    expect(result.steps[1]?.error?.code ?? 'no error: the query ran on identity.db').toMatch(/ERR_RESOURCE_PROTECTED|ERR_DATABASE_NOT_GRANTED|ERR_SQL_DENIED|ERR_PATH_OUTSIDE_WORKSPACE/);
  });

  it('puts no grant token into the result or the history', async () => {
    expect(findSecretsIn(result)).toEqual([]);
    const history = await env.client.workflow.getHandle(result.workflowId).fetchHistory();
    expect(findSecretsIn(history)).toEqual([]);
  });
});
