/**
 * The alert webhook against real HTTP servers on loopback: the body is the alert typed
 * `warden.alert.<response>`, signed as the Standard Webhooks specification says (checked here
 * with an independent HMAC), the URL never appears in an error, redirects are not followed, and
 * a bad configuration is refused when the worker starts.
 */
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../monitoring/alert';
import { alertWebhookOf, deliverAlertWebhook, signWebhook } from '../../monitoring/alert-webhook';
import { startLoopbackServer, webhookSignatureValid, type LoopbackServer } from '../support/monitor-kit';

const alert: Alert = {
  id: 'a-123',
  rootWorkflowId: 'task-1',
  workflowId: 'task-1',
  runId: 'r',
  agent: 'clerk',
  user: 'erin@example.com',
  source: 'monitor',
  stepIndex: 3,
  tool: 'http.fetch',
  score: 90,
  reasons: [{ signal: 'new-host', points: 70, detail: 'sends data to paste.example.net' }],
  rules: [{ id: 'foundation:26', sentence: 'block the task and roll it back when the anomaly score is above 80', response: 'remediate', detail: 'anomaly score 90 > 80' }],
  response: 'remediate',
  detectedAt: '2026-11-30T10:00:00.000Z',
};

let receiver: LoopbackServer;
beforeAll(async () => {
  receiver = await startLoopbackServer();
});
afterAll(async () => receiver?.close());

describe('alert webhook', () => {
  it('posts the alert, signed per Standard Webhooks (plain and whsec_ secrets)', async () => {
    const plain = alertWebhookOf({ WARDEN_ALERT_WEBHOOK: `${receiver.url}/hook?token=s3cret`, WARDEN_ALERT_WEBHOOK_SECRET: 'plain-secret' })!;
    expect(await deliverAlertWebhook(plain, alert, () => 1_796_000_000_000)).toEqual({ delivered: true, status: 200 });
    const got = await receiver.waitFor((r) => r.url === '/hook?token=s3cret');
    expect(got.method).toBe('POST');
    expect(got.headers['webhook-id']).toBe('a-123');
    expect(got.headers['webhook-timestamp']).toBe('1796000000');
    expect(webhookSignatureValid('plain-secret', got)).toBe(true);
    expect(JSON.parse(got.body)).toMatchObject({ type: 'warden.alert.remediate', id: 'a-123', score: 90, commands: { kill: 'warden kill task-1', trace: 'warden trace task-1' } });

    const key = Buffer.from('0123456789abcdef0123456789abcdef');
    const whsec = alertWebhookOf({ WARDEN_ALERT_WEBHOOK: `${receiver.url}/whsec`, WARDEN_ALERT_WEBHOOK_SECRET: `whsec_${key.toString('base64')}` })!;
    await deliverAlertWebhook(whsec, alert);
    const signed = await receiver.waitFor((r) => r.url === '/whsec');
    const expected = createHmac('sha256', key).update(`${signed.headers['webhook-id']}.${signed.headers['webhook-timestamp']}.${signed.body}`).digest('base64');
    expect(signed.headers['webhook-signature']).toBe(`v1,${expected}`);
    expect(signWebhook('plain-secret', 'x', 1, 'b')).not.toBe(signWebhook('other', 'x', 1, 'b'));
  });

  it('reports failures as retryable ERR_ALERT_WEBHOOK_FAILED without the URL; follows no redirect', async () => {
    const { createServer } = await import('node:http');
    const server = createServer((req, res) => {
      if (req.url === '/moved') {
        res.writeHead(302, { location: `${receiver.url}/stolen` });
        res.end();
        return;
      }
      res.writeHead(503);
      res.end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const failing = alertWebhookOf({ WARDEN_ALERT_WEBHOOK: `http://127.0.0.1:${port}/down?token=s3cret` })!;
      const error = await deliverAlertWebhook(failing, alert).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'ERR_ALERT_WEBHOOK_FAILED', retryable: true, message: expect.stringContaining('answered HTTP 503') });
      expect((error as Error).message).not.toContain('s3cret');
      const moved = await deliverAlertWebhook(alertWebhookOf({ WARDEN_ALERT_WEBHOOK: `http://127.0.0.1:${port}/moved` })!, alert).catch((e: unknown) => e);
      expect(moved).toMatchObject({ code: 'ERR_ALERT_WEBHOOK_FAILED', message: expect.stringContaining('HTTP 302') });
      expect(receiver.received.some((r) => r.url === '/stolen')).toBe(false);
    } finally {
      server.close();
    }
    const closed = await deliverAlertWebhook(alertWebhookOf({ WARDEN_ALERT_WEBHOOK: 'http://127.0.0.1:1/x' })!, alert).catch((e: unknown) => e);
    expect(closed).toMatchObject({ code: 'ERR_ALERT_WEBHOOK_FAILED', message: expect.stringContaining('cannot be reached') });
  });

  it('is off without configuration and refuses a bad URL naming the variable', async () => {
    expect(alertWebhookOf({})).toBeUndefined();
    expect(await deliverAlertWebhook(undefined, alert)).toEqual({ delivered: false });
    expect(() => alertWebhookOf({ WARDEN_ALERT_WEBHOOK: 'not a url' })).toThrow(/WARDEN_ALERT_WEBHOOK must be an http\(s\) URL/);
    expect(() => alertWebhookOf({ WARDEN_ALERT_WEBHOOK: 'file:///etc/passwd' })).toThrow(expect.objectContaining({ code: 'ERR_CONFIG_INVALID' }));
  });
});
