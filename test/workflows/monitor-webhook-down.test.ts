/**
 * The alert webhook is down (its receiver answers 503 to everything): a run that turns rogue is
 * still blocked at once, its credentials revoked and its effects rolled back; the alert is
 * still printed and stored; the delivery is retried under one `webhook-id` and then recorded as
 * `failed`, in the task's result and in the state store (`warden alerts`).
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { alertsCommand } from '../../cli/commands/alerts';
import { openCredentialStores } from '../../identity/credential-stores';
import type { Alert } from '../../monitoring/alert';
import { makeShop, replayTaskQueue, startLoopbackServer, type LoopbackServer, type ShopFixture } from '../support/monitor-kit';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let receiver: LoopbackServer;
let shop: ShopFixture;
const printed: Alert[] = [];

beforeAll(async () => {
  receiver = await startLoopbackServer('{"error":"down for maintenance"}', 503);
  shop = await makeShop();
  env = await startWardenTestEnv(process.env, { configEnv: { ...process.env, WARDEN_ALERT_WEBHOOK: `${receiver.url}/alerts` }, printAlert: (alert) => printed.push(alert) });
});
afterAll(async () => {
  await env?.close();
  await receiver?.close();
});

it('a rogue run is blocked and rolled back while the webhook is down; the delivery is retried, then recorded as failed', async () => {
  const before = shop.rows();
  const loop = { tool: 'sql.exec', args: { database: 'shop', sql: 'UPDATE orders SET qty = qty + 1 WHERE id = 1' } };
  const result = await env.runTask({
    user: 'erin@example.com',
    intent: 'tidy the orders',
    agent: { name: `loop-${randomUUID().slice(0, 8)}`, model: { driver: 'scripted', script: [{ tool: 'fs.write', args: { path: 'plan.txt', content: 'x' } }, loop, loop, loop, loop, { final: 'never' }] } },
    tools: { builtin: ['fs.write', 'sql.exec'] },
    grants: { tools: ['fs.write', 'sql.exec'], databases: ['shop'] },
    resources: { workspace: shop.workspace, databases: { shop: shop.dbFile } },
    policies: ['block the task and roll it back when it makes the same call 3 times in a row'],
  });
  expect(result.status, result.reason).toBe('blocked');
  // The third identical call was refused; nothing after it ran; what ran before it is undone.
  expect(result.steps).toHaveLength(4);
  expect(result.steps[3]).toMatchObject({ executed: false, error: { code: 'ERR_TASK_BLOCKED' } });
  expect(shop.rows()).toEqual(before);
  expect(existsSync(join(shop.workspace, 'plan.txt'))).toBe(false);
  const alert = result.alerts!.find((a) => a.response === 'remediate')!;
  expect(alert.blockedAt).toBeDefined();
  expect(alert.delivery).toBe('failed');
  expect(printed.map((a) => a.id)).toContain(alert.id);
  // Blocked before the first delivery attempt was answered: the webhook is never in the way.
  const stores = openCredentialStores({ stateDir: TEST_STATE_DIR });
  try {
    expect((await stores.revocation.isRevoked([result.identity!.grantId]))?.revokedAt).toBeLessThanOrEqual(Date.parse(alert.blockedAt!));
  } finally {
    stores.close();
  }
  // Every attempt carried the same webhook-id, so a receiver that comes back drops duplicates.
  const attempts = receiver.received.filter((r) => r.headers['webhook-id'] === alert.id);
  expect(attempts.length).toBe(6);
  expect(new Set(attempts.map((r) => r.body)).size).toBe(1);
  const out: string[] = [];
  expect(await alertsCommand(['--task', result.workflowId, '--json'], { stdout: (t) => out.push(t), stderr: (t) => out.push(t), env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR } })).toBe(0);
  expect((JSON.parse(out.join('')) as Alert[]).find((a) => a.id === alert.id)).toMatchObject({ delivery: 'failed', response: 'remediate' });
}, 180_000);

it('replays every history of this file deterministically', async () => {
  const { replayed, failures } = await replayTaskQueue(env);
  expect(failures).toEqual([]);
  expect(replayed).toBeGreaterThanOrEqual(1);
});
