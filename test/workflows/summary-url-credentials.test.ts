/**
 * Activity summaries in the Temporal UI hold no URL credentials (found by the issue-16 attack; the table of spellings is test/workflows/ui-summaries.test.ts). The summaries promise "a URL without
 * credentials, query or fragment". `bareUrl` strips them with a regex that expects
 * `scheme://userinfo@host` exactly, while URLs are parsed by the WHATWG rules (what http.fetch and
 * every browser use): `https:user:pw@host`, `https:/user:pw@host`, `https:\\user:pw@host`, a
 * leading space, or an `@` inside the password all parse to the same credentials, and the
 * summary shown in the Temporal UI's list and timeline keeps them. The model writes these URLs.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

const EventType = temporal.api.enums.v1.EventType;
let env: WardenTestEnv;

beforeAll(async () => {
  env = await startWardenTestEnv();
}, 120_000);
afterAll(async () => env?.close());

// Each parses (WHATWG URL) to user "alice" with a password containing "s3cret".
const URLS = [
  'https:alice:s3cret@api.example.com/v1',
  'https:/alice:s3cret@api.example.com/v1',
  'https:\\\\alice:s3cret@api.example.com/v1',
  ' https://alice:s3cret@api.example.com/v1',
  'https://alice:pre@s3cret@api.example.com/v1',
];

describe('activity summaries of http.fetch calls', () => {
  it('hold no URL credentials, however the URL is spelled', async () => {
    for (const url of URLS) expect(new URL(url).password).toMatch(/s3cret/);
    const workspace = await mkdtemp(join(tmpdir(), 'warden-attack-summary-'));
    const result = await env.runTask({
      user: 'eve@example.com',
      intent: 'fetch the items',
      agent: { name: 'fetcher', model: { driver: 'scripted', script: [...URLS.map((url) => ({ tool: 'http.fetch', args: { url } })), { final: 'x' }] } },
      tools: { builtin: ['http.fetch'] },
      grants: { tools: ['http.fetch'] },
      policies: ['never use http.fetch'],
      limits: { onDeny: 'continue' },
      resources: { workspace },
    });
    expect(result.steps).toHaveLength(URLS.length);
    const history = await env.client.workflow.getHandle(result.workflowId).fetchHistory();
    const summaries: string[] = [];
    for (const event of history.events ?? []) {
      const summary = event.userMetadata?.summary;
      if (summary !== null && summary !== undefined) summaries.push(`${EventType[event.eventType ?? 0]}: ${defaultPayloadConverter.fromPayload<string>(summary)}`);
    }
    expect(summaries.filter((s) => s.includes('http.fetch')).length).toBeGreaterThanOrEqual(URLS.length);
    expect(summaries.filter((s) => /s3cret/.test(s))).toEqual([]);
  });
});
