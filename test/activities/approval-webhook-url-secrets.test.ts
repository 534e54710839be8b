/**
 * Regression for newcomer-15's finding: with basic auth in `WARDEN_APPROVAL_WEBHOOK`
 * (`http://warden:<password>@host/...`), Node's fetch threw a TypeError quoting the whole URL and
 * `ERR_WEBHOOK_FAILED` carried the password to the worker log and Temporal history.
 *
 * The kind: no message on the notice path holds a part of the webhook URL that may be secret
 * (userinfo, query values), whatever fails: a configuration that does not parse, a receiver that
 * cannot be reached, one that answers an error. Userinfo is sent as HTTP Basic authentication
 * (RFC 7617), so such URLs work. A real loopback receiver.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalWebhookOf, deliverApprovalNotice, type ApprovalNotice } from '../../activities/notify-approval';
import { displayUrl } from '../../secrets/redact-url';

const PASSWORD = 'hook-pass-4c3b2a190817';
const TOKEN = 'qtok-77aa88bb99cc';

let receiver: Server;
let port: number;
let closedPort: number;
const received: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    received.push(req.headers);
    req.resume();
    req.on('end', () => res.writeHead(req.url?.startsWith('/fail') ? 500 : 204).end());
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  port = (receiver.address() as AddressInfo).port;
  const closed = createServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  closedPort = (closed.address() as AddressInfo).port;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
});
afterAll(() => receiver?.close());

const notice: ApprovalNotice = {
  event: 'held',
  workflowId: 'wf-1',
  runId: 'run-1',
  rootWorkflowId: 'wf-1',
  requestId: 'req-1',
  agent: 'janitor',
  user: 'fay@example.com',
  tool: 'sql.exec',
  args: { database: 'crm', sql: 'DELETE FROM leads' },
  rules: ['r1: never delete more than 10 rows without explicit approval'],
  requestedAt: new Date().toISOString(),
  expiresAt: new Date(Date.now() + 60_000).toISOString(),
};

/** Every message the notice path produced for `url`, and whether it was delivered. */
async function attempt(url: string): Promise<{ messages: string[]; delivered: boolean }> {
  const messages: string[] = [];
  try {
    const result = await deliverApprovalNotice(approvalWebhookOf({ WARDEN_APPROVAL_WEBHOOK: url }), notice);
    return { messages, delivered: result.delivered };
  } catch (error) {
    messages.push(String((error as Error).message), JSON.stringify(error), String((error as Error).stack));
    return { messages, delivered: false };
  }
}

describe('secret parts of the approval webhook URL', () => {
  const cases: [string, () => string, string[]][] = [
    ['userinfo, receiver answers 500', () => `http://warden:${PASSWORD}@127.0.0.1:${port}/fail`, [PASSWORD]],
    ['userinfo, nothing listening', () => `http://warden:${PASSWORD}@127.0.0.1:${closedPort}/hooks`, [PASSWORD]],
    ['percent-encoded userinfo, nothing listening', () => `http://warden:${encodeURIComponent(`${PASSWORD}/@:`)}@127.0.0.1:${closedPort}/hooks`, [PASSWORD]],
    ['userinfo with broken percent-encoding, receiver answers 500', () => `http://warden:${PASSWORD}%zz@127.0.0.1:${port}/fail`, [PASSWORD]],
    ['a query token, receiver answers 500', () => `http://127.0.0.1:${port}/fail?token=${TOKEN}`, [TOKEN]],
    ['a query token, nothing listening', () => `http://127.0.0.1:${closedPort}/hooks?sig=${TOKEN}&x=1`, [TOKEN]],
    ['a URL that does not parse', () => `http://warden:${PASSWORD}@[::1/hooks?token=${TOKEN}`, [PASSWORD, TOKEN]],
    ['a URL of another scheme', () => `ftp://warden:${PASSWORD}@127.0.0.1/hooks?token=${TOKEN}`, [PASSWORD, TOKEN]],
  ];
  it.each(cases)('%s: in no message', async (_what, url, secrets) => {
    const { messages } = await attempt(url());
    expect(messages.length, 'the case should fail somewhere').toBeGreaterThan(0);
    for (const message of messages) for (const secret of secrets) expect(message).not.toContain(secret);
  });

  it('userinfo is sent as HTTP Basic authentication, and the notice is delivered', async () => {
    const before = received.length;
    const { delivered, messages } = await attempt(`http://warden:${PASSWORD}@127.0.0.1:${port}/hooks`);
    expect(messages).toEqual([]);
    expect(delivered).toBe(true);
    expect(received[before]?.authorization).toBe(`Basic ${Buffer.from(`warden:${PASSWORD}`).toString('base64')}`);
  });

  it('displayUrl shows scheme, host and path only', () => {
    expect(displayUrl(new URL(`https://u:${PASSWORD}@hooks.example.com/a/b?token=${TOKEN}#frag`))).toBe('https://***@hooks.example.com/a/b?***');
  });
});
