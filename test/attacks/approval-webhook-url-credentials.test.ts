/**
 * Attack (issue 15 item 3/4): the approval webhook URL often carries its own credential. With
 * basic auth in the URL (`https://warden:<password>@hooks.example.com/...`, the form many
 * receivers document), Node's fetch refuses the URL with a TypeError whose message is the whole
 * URL, password included; `deliverApprovalNotice` copies that message into its retryable
 * `ERR_WEBHOOK_FAILED`, which the worker logs on every attempt and Temporal stores as the
 * activity's failure (pending activity `lastFailure`, then history once retries run out). The
 * module's own invariant says the URL is never in a message, "it may hold a token".
 *
 * Expected: the password appears in no error, whichever way the webhook is handled (refused at
 * configuration naming the variable, or delivered with an Authorization header). A real loopback
 * receiver.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { approvalWebhookOf, deliverApprovalNotice, type ApprovalNotice } from '../../activities/notify-approval';

const PASSWORD = 'hook-pass-4c3b2a190817';

let receiver: Server;
let port: number;
const received: IncomingHttpHeaders[] = [];

beforeAll(async () => {
  receiver = createServer((req, res) => {
    received.push(req.headers);
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
  port = (receiver.address() as AddressInfo).port;
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

describe('an approval webhook URL with basic-auth credentials', () => {
  it('never puts the password in an error message', async () => {
    const url = `http://warden:${PASSWORD}@127.0.0.1:${port}/hooks/warden`;
    const messages: string[] = [];
    try {
      const webhook = approvalWebhookOf({ WARDEN_APPROVAL_WEBHOOK: url });
      await deliverApprovalNotice(webhook, notice);
    } catch (error) {
      messages.push(String((error as Error).message), JSON.stringify(error));
    }
    for (const message of messages) expect(message, 'an error holds the webhook password').not.toContain(PASSWORD);
  });
});
