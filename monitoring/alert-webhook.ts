/**
 * The alert webhook: every alert is POSTed as JSON to the URL the worker is configured with,
 * signed as the Standard Webhooks specification says (https://www.standardwebhooks.com: headers
 * `webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of
 * "id.timestamp.body">`; a secret written `whsec_<base64>` is that key, any other text is used as
 * UTF-8 bytes). Configured on the worker, never by a task:
 *
 * - `WARDEN_ALERT_WEBHOOK`: the http(s) URL;
 * - `WARDEN_ALERT_WEBHOOK_SECRET`: optional signing secret.
 *
 * The `webhook-id` is the alert id on every retry, so a receiver drops duplicates. Redirects are
 * not followed and the URL never appears in a message (it often carries a token).
 */
import { createHmac } from 'node:crypto';
import { MonitorError } from '../errors';
import type { Alert } from './alert';
import { webhookUrlFromEnv } from '../secrets/webhook-url';

export const ALERT_WEBHOOK_ENV = 'WARDEN_ALERT_WEBHOOK';
export const ALERT_WEBHOOK_SECRET_ENV = 'WARDEN_ALERT_WEBHOOK_SECRET';
const DELIVERY_TIMEOUT_MS = 10_000;

export interface AlertWebhook {
  url: URL;
  secret?: string;
}

/**
 * The webhook `env` configures, or undefined.
 * @throws ConfigError ERR_CONFIG_INVALID naming the variable when the URL is not http(s) (secrets/webhook-url.ts).
 */
export function alertWebhookOf(env: NodeJS.ProcessEnv): AlertWebhook | undefined {
  const url = webhookUrlFromEnv(env, ALERT_WEBHOOK_ENV);
  if (url === undefined) return undefined;
  const secret = env[ALERT_WEBHOOK_SECRET_ENV];
  return { url, ...(secret ? { secret } : {}) };
}

/** The Standard Webhooks signature of `body` (`v1,<base64>`). */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

/** What is POSTed: the alert with its type (`warden.alert.<response>`) and the command that kills the task. */
export function alertWebhookBody(alert: Alert): Record<string, unknown> {
  return { type: `warden.alert.${alert.response}`, ...alert, commands: { kill: `warden kill ${alert.rootWorkflowId}`, trace: `warden trace ${alert.rootWorkflowId}` } };
}

/**
 * Delivers one alert. Resolves `{ delivered: false }` when no webhook is configured; throws a
 * retryable MonitorError ERR_ALERT_WEBHOOK_FAILED when the receiver cannot be reached or does not
 * answer 2xx.
 */
export async function deliverAlertWebhook(webhook: AlertWebhook | undefined, alert: Alert, now: () => number = Date.now): Promise<{ delivered: boolean; status?: number }> {
  if (webhook === undefined) return { delivered: false };
  const body = JSON.stringify(alertWebhookBody(alert));
  const timestamp = Math.floor(now() / 1000);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'warden-alert-webhook',
    'webhook-id': alert.id,
    'webhook-timestamp': String(timestamp),
  };
  if (webhook.secret !== undefined) headers['webhook-signature'] = signWebhook(webhook.secret, alert.id, timestamp, body);
  let status: number;
  try {
    const response = await fetch(webhook.url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS) });
    status = response.status;
    await response.body?.cancel();
  } catch (error) {
    const reason = (error as Error).name === 'TimeoutError' ? `no answer within ${DELIVERY_TIMEOUT_MS / 1000}s` : (((error as Error).cause as Error | undefined)?.message ?? (error as Error).message);
    throw new MonitorError('ERR_ALERT_WEBHOOK_FAILED', `the alert webhook at ${webhook.url.host} cannot be reached: ${reason}`, { retryable: true });
  }
  if (status < 200 || status > 299) {
    throw new MonitorError('ERR_ALERT_WEBHOOK_FAILED', `the alert webhook at ${webhook.url.host} answered HTTP ${status}`, { retryable: true, details: { status } });
  }
  return { delivered: true, status };
}
