/**
 * Tells people that an action waits for them: a webhook called when an action is held for
 * approval and again when it is decided (approved, denied, timed out, or withdrawn because the
 * task ended first). Configured on the worker, never by a task:
 *
 * - `WARDEN_APPROVAL_WEBHOOK`: the http(s) URL to POST each notice to (JSON, below);
 * - `WARDEN_APPROVAL_WEBHOOK_SECRET`: optional; each request is then signed as the Standard
 *   Webhooks specification says (https://www.standardwebhooks.com: headers `webhook-id`,
 *   `webhook-timestamp`, `webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">`;
 *   a secret written `whsec_<base64>` is that key, any other text is used as UTF-8 bytes).
 *
 * A notice's `webhook-id` is the same on every retry, so a receiver can drop duplicates. The
 * webhook never decides anything: it only points people at `warden approve` / `warden deny`.
 * Redirects are not followed (a webhook URL often carries its own secret).
 */
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import { WardenError } from '../errors';
import { redactText } from '../secrets/redact-values';
import { redactUrlSecrets, secretPartsOf } from '../secrets/redact-url';
import type { ActivityDeps } from './index';
import { atActivityBoundary } from './to-application-failure';
import { webhookUrlFromEnv } from '../secrets/webhook-url';

/** The environment variables the webhook is configured by. */
export const APPROVAL_WEBHOOK_ENV = 'WARDEN_APPROVAL_WEBHOOK';
export const APPROVAL_WEBHOOK_SECRET_ENV = 'WARDEN_APPROVAL_WEBHOOK_SECRET';
/** One delivery attempt's time limit. */
const DELIVERY_TIMEOUT_MS = 10_000;

export const ApprovalNoticeSchema = z.strictObject({
  /** `held` when the action starts waiting; `decided` when it stops waiting, for whatever reason. */
  event: z.enum(['held', 'decided']),
  workflowId: z.string(),
  runId: z.string(),
  /** The workflow id of the task the user started (differs for a sub-agent's action). */
  rootWorkflowId: z.string(),
  requestId: z.string(),
  agent: z.string(),
  user: z.string(),
  tool: z.string(),
  args: z.record(z.string(), z.unknown()),
  /** The effect Warden measured (e.g. `{ rowsChanged, operation }`). */
  effect: z.record(z.string(), z.unknown()).optional(),
  /** The rules that held it, as `id: sentence`. */
  rules: z.array(z.string()),
  requestedAt: z.string(),
  /** When it is denied unless someone decides. */
  expiresAt: z.string(),
  decision: z
    .strictObject({
      status: z.enum(['approved', 'denied', 'timed_out', 'withdrawn']),
      approver: z.string().optional(),
      reason: z.string().optional(),
      decidedAt: z.string(),
    })
    .optional(),
});
export type ApprovalNotice = z.infer<typeof ApprovalNoticeSchema>;

/** What is POSTed: the notice, its type in the `warden.approval.<event>` form, and the commands that decide it. */
export function webhookBody(notice: ApprovalNotice): Record<string, unknown> {
  return {
    type: `warden.approval.${notice.event}`,
    ...notice,
    ...(notice.event === 'held'
      ? { commands: { approve: `warden approve ${notice.workflowId} ${notice.requestId}`, deny: `warden deny ${notice.workflowId} ${notice.requestId}` } }
      : {}),
  };
}

/** The Standard Webhooks signature of `body` (`v1,<base64>`). */
export function signWebhook(secret: string, id: string, timestamp: number, body: string): string {
  const key = secret.startsWith('whsec_') ? Buffer.from(secret.slice('whsec_'.length), 'base64') : Buffer.from(secret, 'utf8');
  return `v1,${createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64')}`;
}

export interface ApprovalWebhook {
  /** Without userinfo: credentials in the configured URL travel as `authorization` instead. */
  url: URL;
  secret?: string;
  /** `Basic <base64(user:password)>` (RFC 7617) from the configured URL's userinfo. */
  authorization?: string;
  /** Parts of the configured URL that may be secret (userinfo, query): never in a message. */
  redact: string[];
}

/**
 * The webhook the environment configures, or undefined.
 * A URL with userinfo (`https://user:password@host/path`, which `fetch` refuses) is sent to
 * without it, with the credentials as HTTP Basic authentication (RFC 7617).
 * @throws ConfigError `ERR_CONFIG_INVALID` naming the variable when the URL is not http(s) (the
 *   URL itself is never in the message).
 */
export function approvalWebhookOf(env: NodeJS.ProcessEnv): ApprovalWebhook | undefined {
  let url = webhookUrlFromEnv(env, APPROVAL_WEBHOOK_ENV);
  if (url === undefined) return undefined;
  const redact = secretPartsOf(url);
  let authorization: string | undefined;
  if (url.username !== '' || url.password !== '') {
    const decoded = (part: string) => {
      try {
        return decodeURIComponent(part);
      } catch {
        return part; // not valid percent-encoding: sent as written
      }
    };
    const credentials = `${decoded(url.username)}:${decoded(url.password)}`;
    authorization = `Basic ${Buffer.from(credentials, 'utf8').toString('base64')}`;
    redact.push(credentials, authorization);
    url = new URL(url.href);
    url.username = '';
    url.password = '';
  }
  const secret = env[APPROVAL_WEBHOOK_SECRET_ENV];
  return { url, redact, ...(secret ? { secret } : {}), ...(authorization === undefined ? {} : { authorization }) };
}

/**
 * Delivers one notice. Resolves `{ delivered: false }` when no webhook is configured; throws a
 * retryable `ERR_WEBHOOK_FAILED` when the receiver cannot be reached or does not answer 2xx
 * (the URL itself is never in the message: it may hold a token).
 */
export async function deliverApprovalNotice(webhook: ApprovalWebhook | undefined, notice: ApprovalNotice, now: () => number = Date.now): Promise<{ delivered: boolean; status?: number }> {
  if (webhook === undefined) return { delivered: false };
  const body = JSON.stringify(webhookBody(notice));
  const id = `${notice.workflowId}:${notice.requestId}:${notice.event}`;
  const timestamp = Math.floor(now() / 1000);
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'warden-approval-webhook',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
  };
  if (webhook.secret !== undefined) headers['webhook-signature'] = signWebhook(webhook.secret, id, timestamp, body);
  if (webhook.authorization !== undefined) headers['authorization'] = webhook.authorization;
  let status: number;
  try {
    const response = await fetch(webhook.url, { method: 'POST', headers, body, redirect: 'manual', signal: AbortSignal.timeout(DELIVERY_TIMEOUT_MS) });
    status = response.status;
    await response.body?.cancel();
  } catch (error) {
    const reason = (error as Error).name === 'TimeoutError' ? `no answer within ${DELIVERY_TIMEOUT_MS / 1000}s` : ((error as Error).cause as Error | undefined)?.message ?? (error as Error).message;
    // Whatever the client put in its message (some quote the URL), no part of the URL that may be secret.
    throw new WardenError('ERR_WEBHOOK_FAILED', `the approval webhook at ${webhook.url.host} cannot be reached: ${redactUrlSecrets(redactText(reason, webhook.redact), webhook.url)}`, { retryable: true });
  }
  if (status < 200 || status > 299) {
    throw new WardenError('ERR_WEBHOOK_FAILED', `the approval webhook at ${webhook.url.host} answered HTTP ${status}`, { retryable: true, details: { status } });
  }
  return { delivered: true, status };
}

export function createNotifyApproval(deps: ActivityDeps) {
  // Read when the worker starts, so a bad URL stops the worker instead of every notice.
  const webhook = approvalWebhookOf(deps.env ?? process.env);
  return async function notifyApproval(notice: ApprovalNotice): Promise<{ delivered: boolean; status?: number }> {
    return atActivityBoundary(() => deliverApprovalNotice(webhook, ApprovalNoticeSchema.parse(notice)));
  };
}
