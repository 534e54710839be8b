/**
 * The console's custody badge stays true to the ledger (found by the issue-16 attack, when the
 * whole-ledger verification was cached by record count): a record edited in place after the
 * console verified it (same count, same head) shows as "changed" within the 15 s the console
 * promises, since a cached verification is reused only for the same ledger head and for 15 s.
 */
import { cpSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { ConsoleData } from '../../console/console-data';
import { startConsoleServer, type ConsoleServer } from '../../console/console-server';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let consoleServer: ConsoleServer | undefined;
let copy: string;
let taskId: string;

beforeAll(async () => {
  env = await startWardenTestEnv();
  const workspace = await mkdtemp(join(tmpdir(), 'warden-attack-stale-'));
  const result = await env.runTask({
    user: 'hana@example.com',
    intent: 'write the report',
    agent: { name: 'scribe', model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: 'out/report.md', content: '3 words' } }, { final: 'reported' }] } },
    tools: { builtin: ['fs.write'] },
    grants: { tools: ['fs.write'] },
    resources: { workspace },
  });
  expect(result.status).toBe('completed');
  taskId = result.workflowId;
  await env.telemetry?.forceFlush();
  // A copy of the ledger, so the shared test ledger is never tampered with.
  copy = await mkdtemp(join(tmpdir(), 'warden-attack-stale-ledger-'));
  const source = new Database(join(TEST_STATE_DIR, 'custody.db'), { readonly: true });
  await source.backup(join(copy, 'custody.db'));
  source.close();
  cpSync(join(TEST_STATE_DIR, 'custody-keys'), join(copy, 'custody-keys'), { recursive: true });
  consoleServer = await startConsoleServer({ data: new ConsoleData({ client: env.client, stateDir: copy }) });
}, 180_000);

afterAll(async () => {
  await consoleServer?.close();
  await env?.close();
  if (copy) rmSync(copy, { recursive: true, force: true });
});

type Custody = { ok: boolean | null; problem: { seq: number; kind: string } | null; verifiedAt: string | null };
async function custody(): Promise<Custody> {
  const response = await fetch(`${consoleServer!.url}/api/tasks/${encodeURIComponent(taskId)}`, { headers: { authorization: `Bearer ${consoleServer!.token}` } });
  return ((await response.json()) as { task: { custody: Custody } }).task.custody;
}

describe('the console after a record is edited in place', () => {
  it('stops saying verified once the ledger no longer verifies', async () => {
    expect((await custody()).ok).toBe(true);
    const db = new Database(join(copy, 'custody.db'));
    const victim = db.prepare("SELECT seq FROM records WHERE task_id = ? AND body LIKE '%execute_tool fs.write%' ORDER BY seq LIMIT 1").get(taskId) as { seq: number };
    db.prepare("UPDATE records SET body = replace(body, 'out/report.md', 'out/report.me') WHERE seq = ?").run(victim.seq);
    db.close();
    // Well past the 15 s the README allows for a re-verification.
    await vi.waitFor(async () => expect(await custody()).toMatchObject({ ok: false, problem: { seq: victim.seq, kind: 'changed' } }), { timeout: 45_000, interval: 1_000 });
  }, 90_000);
});
