/**
 * A call that names a resource the task does not grant (a host, a database) is refused
 * by the grant check before any rule can hold it for a human. Found by a newcomer: a fetch of an
 * ungranted host was held by the foundation pack's "URL the user did not give" rule, a human
 * approved it, and then the call's credential refused it (ERR_CREDENTIAL_SCOPE): a human was
 * asked to approve what could never run, and the step read "allowed; failed".
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskResult } from '../../task/task-run';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let server: Server;
let granted: string;
let other: string;
let dbFile: string;
const seen: string[] = [];

beforeAll(async () => {
  env = await startWardenTestEnv();
  server = createServer((req, res) => {
    seen.push(`${req.headers.host}${req.url}`);
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  granted = `127.0.0.1:${port}`;
  other = `localhost:${port}`;
  dbFile = join(mkdtempSync(join(tmpdir(), 'warden-ungranted-')), 'crm.db');
  const db = new Database(dbFile);
  db.exec('CREATE TABLE leads (id INTEGER PRIMARY KEY)');
  db.close();
});
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await env?.close();
});

describe('a call naming a resource the task does not grant', () => {
  let result: TaskResult;
  beforeAll(async () => {
    result = await env.runTask({
      user: 'dana@example.com',
      intent: `check http://${granted}/status`,
      agent: {
        name: 'clerk',
        model: {
          driver: 'scripted',
          script: [
            { tool: 'http.fetch', args: { url: `http://${other}/collect` } },
            { tool: 'sql.query', args: { database: 'crm', sql: 'SELECT count(*) FROM leads' } },
            { tool: 'proc.run', args: { command: 'cat', args: ['/etc/hostname'] } },
            { tool: 'http.fetch', args: { url: `http://${granted}/status` } },
            { final: 'done' },
          ],
        },
      },
      tools: { builtin: ['http.fetch', 'sql.query', 'proc.run'] },
      grants: { tools: ['http.fetch', 'sql.query', 'proc.run'], hosts: [granted], commands: ['true'] },
      resources: { hosts: [granted, other], databases: { crm: dbFile } },
      limits: { onDeny: 'continue', approvalTimeout: '3s' },
    });
  }, 180_000);

  it.each([
    [0, 'http.fetch', 'host "localhost:'],
    [1, 'sql.query', 'database "crm" is not granted'],
  ])('step %i (%s) is denied by the grant check, naming the resource, with no human asked', (index, tool, reason) => {
    const step = result.steps[index as number];
    expect(step?.tool).toBe(tool);
    expect(step?.policy?.decision).toBe('deny');
    expect(step?.policy?.matched.map((m) => m.id)).toEqual(['grants']);
    expect(step?.reason).toContain(reason);
    expect(step?.error?.code).toBe('ERR_POLICY_DENIED');
    expect(step?.approval).toBeUndefined();
    expect(step?.executed).toBe(false);
  });

  it('a program the task does not grant is refused by its executor, with no human asked', () => {
    expect(result.steps[2]).toMatchObject({ tool: 'proc.run', error: { code: 'ERR_COMMAND_NOT_GRANTED' } });
    expect(result.steps[2]?.approval).toBeUndefined();
  });

  it('runs what the task grants, and nothing reached the ungranted host', () => {
    expect(result.steps[3]?.policy?.decision).toBe('allow');
    expect(seen).toEqual([`${granted}/status`]);
    expect(result.status).toBe('completed');
  });
});
