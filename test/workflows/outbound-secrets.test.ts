/**
 * Secrets for outbound calls, end to end on the real Temporal server: a task names where its API
 * keys come from (`${env:...}`, `${file:...}`) and asks for its Warden credential to be forwarded
 * (`${warden:credential}`). The granted host receives them; another host reached by a redirect
 * does not; the downstream service can verify the credential against the published JWKS; and no
 * secret reaches the tool's output (which is what the sandbox and the model see), the result,
 * any workflow history or the custody ledger, even though the service echoes every header back.
 */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LedgerReader } from '../../custody/ledger-reader';
import { TaskFileError } from '../../errors';
import { openKeystore } from '../../identity/keystore';
import { findSecretsIn } from '../../identity/redact';
import { parseTask } from '../../task/load-task-file';
import type { TaskResult } from '../../task/task-run';
import { rootWorkflowIdOf } from '../../telemetry/warden-span-attributes';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

const TOKEN = 'tok-live-7d1e2f3a4b5c6d7e8f9a0b1c';
const FILE_KEY = 'filekey-0f1e2d3c4b5a69788796a5b4';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
}

let env: WardenTestEnv;
let api: Server;
let other: Server;
let apiPort: number;
let otherPort: number;
const atApi: Received[] = [];
const atOther: Received[] = [];
let dir: string;

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  other = createServer((req, res) => {
    atOther.push({ path: req.url ?? '', headers: req.headers });
    res.end(JSON.stringify({ sawAuthorization: req.headers.authorization ?? null, sawKey: req.headers['x-api-key'] ?? null }));
  });
  otherPort = await listen(other);
  api = createServer((req, res) => {
    atApi.push({ path: req.url ?? '', headers: req.headers });
    if (req.url === '/hop') {
      res.writeHead(302, { location: `http://127.0.0.1:${otherPort}/collect` }).end();
      return;
    }
    // A careless service: it echoes every header it got, in its body and in its own headers.
    const auth = String(req.headers.authorization ?? '');
    res.writeHead(200, { 'content-type': 'application/json', 'x-echo-auth': auth, 'x-echo-key-b64': Buffer.from(String(req.headers['x-api-key'] ?? '')).toString('base64') });
    res.end(JSON.stringify({ headers: req.headers, tail: auth.slice(-10) }));
  });
  apiPort = await listen(api);
  dir = await mkdtemp(join(tmpdir(), 'warden-secrets-'));
  await writeFile(join(dir, 'api-key.txt'), `${FILE_KEY}\n`);
  env = await startWardenTestEnv({ ...process.env, TICKETS_TOKEN: TOKEN });
});

afterAll(async () => {
  await env?.close();
  api?.close();
  other?.close();
});

function taskDocument(script: unknown[], secrets?: Record<string, Record<string, string>>) {
  const hosts = [`127.0.0.1:${apiPort}`, `127.0.0.1:${otherPort}`];
  return {
    user: 'sam@example.com',
    intent: `Look up tickets 7 and 8 at http://127.0.0.1:${apiPort}/tickets/7 and http://127.0.0.1:${apiPort}/tickets/8, and follow http://127.0.0.1:${apiPort}/hop, which leads to http://127.0.0.1:${otherPort}/collect`,
    agent: { name: 'ticketeer', model: { driver: 'scripted', script } },
    tools: { builtin: ['http.fetch'] },
    grants: { tools: ['http.fetch'], hosts },
    limits: { onDeny: 'continue' },
    resources: {
      hosts,
      secrets: secrets ?? {
        // Plain http to a loopback service: the task binds the secret to that http origin explicitly.
        [`http://127.0.0.1:${apiPort}`]: {
          authorization: 'Bearer ${env:TICKETS_TOKEN}',
          'x-api-key': '${file:./api-key.txt}',
          'x-warden-credential': '${warden:credential}',
        },
      },
    },
  };
}

function expectClean(where: string, value: unknown): void {
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  for (const secret of [TOKEN, FILE_KEY, TOKEN.slice(-10), Buffer.from(FILE_KEY).toString('base64').replace(/=+$/, '')]) {
    expect(text.includes(secret), `${where} holds a secret (${secret.slice(0, 6)}…)`).toBe(false);
  }
  expect(findSecretsIn(value), `${where} holds a token`).toEqual([]);
}

function workflowIdsOf(result: TaskResult): string[] {
  return [result.workflowId, ...result.children.flatMap(workflowIdsOf)];
}

describe('resources.secrets', () => {
  let result: TaskResult;

  beforeAll(async () => {
    result = await env.runTask(
      taskDocument([
        { tool: 'http.fetch', args: { url: `http://127.0.0.1:${apiPort}/tickets/7` } },
        { tool: 'http.fetch', args: { url: `http://127.0.0.1:${apiPort}/hop` } },
        // A redirect to another port is not followed within a judged call: the agent makes the hop.
        { tool: 'http.fetch', args: { url: `http://127.0.0.1:${otherPort}/collect` } },
        { final: 'looked it up' },
      ]),
      { baseDir: dir },
    );
  }, 120_000);

  it('the granted host receives the headers; the tool made the calls', () => {
    expect(result.status).toBe('completed');
    const ticket = atApi.find((r) => r.path === '/tickets/7');
    expect(ticket?.headers.authorization).toBe(`Bearer ${TOKEN}`);
    expect(ticket?.headers['x-api-key']).toBe(FILE_KEY);
    expect(ticket?.headers['x-warden-credential']).toMatch(/^eyJ/);
  });

  it('the forwarded credential verifies against the published JWKS, for exactly this call', async () => {
    const token = String(atApi.find((r) => r.path === '/tickets/7')?.headers['x-warden-credential']);
    const keystore = await openKeystore({ stateDir: TEST_STATE_DIR });
    const { payload } = await jwtVerify(token, createLocalJWKSet(keystore.jwks() as Parameters<typeof createLocalJWKSet>[0]));
    expect(payload['scope']).toEqual(expect.arrayContaining([expect.stringContaining('http.fetch')]));
    expect(payload['sub']).toContain('ticketeer');
  });

  it('a redirect to another origin is handed back, and the next call there carries none of them', () => {
    expect(result.steps[1]?.output).toMatchObject({ status: 302, headers: { location: `http://127.0.0.1:${otherPort}/collect` } });
    const collected = atOther.filter((r) => r.path === '/collect');
    expect(collected).toHaveLength(1);
    expect(collected[0]?.headers.authorization).toBeUndefined();
    expect(collected[0]?.headers['x-api-key']).toBeUndefined();
    expect(collected[0]?.headers['x-warden-credential']).toBeUndefined();
    expect(result.steps[2]?.output).toMatchObject({ status: 200 });
  });

  it('what the tool (and so the sandbox and the model) got back has every echo removed', () => {
    const output = result.steps[0]?.output as { headers: Record<string, string>; body: string };
    expect(output.headers['x-echo-auth']).toBe('Bearer [redacted]');
    expect(output.body).toContain('[redacted]');
    expectClean('the tool output', output);
  });

  it('no result, history or custody record holds a secret', async () => {
    expectClean('the result', result);
    for (const workflowId of workflowIdsOf(result)) {
      expectClean(`the history of ${workflowId}`, await env.client.workflow.getHandle(workflowId).fetchHistory());
    }
    await env.telemetry?.forceFlush();
    const reader = LedgerReader.open({ stateDir: TEST_STATE_DIR });
    try {
      const records = reader.records(rootWorkflowIdOf(result.workflowId));
      expectClean('the custody ledger', records);
    } finally {
      reader.close();
    }
  });

  it('a variable the worker lacks fails the call (not the task), naming the variable only', async () => {
    const missing = await env.runTask(
      taskDocument([{ tool: 'http.fetch', args: { url: `http://127.0.0.1:${apiPort}/tickets/8` } }, { final: 'tried' }], {
        [`127.0.0.1:${apiPort}`]: { authorization: 'Bearer ${env:NOT_SET_ANYWHERE}' },
      }),
      { baseDir: dir },
    );
    expect(missing.steps[0]?.error?.code).toBe('ERR_SECRET_UNAVAILABLE');
    expect(missing.steps[0]?.error?.message).toContain('NOT_SET_ANYWHERE');
    expect(atApi.some((r) => r.path === '/tickets/8')).toBe(false);
  });
});

describe('task files with secrets', () => {
  const base = (resources: Record<string, unknown>) => ({
    user: 'sam',
    intent: 'x',
    agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'ok' }] } },
    resources: { hosts: ['api.example.com'], ...resources },
  });
  const issuesOf = (document: unknown, baseDir = dir): string[] => {
    try {
      parseTask(document, 'task.yaml', baseDir);
    } catch (error) {
      if (error instanceof TaskFileError) return error.issues.map((i) => `${i.path}: ${i.message}`);
      throw error;
    }
    return [];
  };

  it.each([
    ['a host not under resources.hosts', { secrets: { 'other.example.com': { authorization: 'Bearer ${env:T}' } } }, 'not listed under resources.hosts'],
    ['a literal value (it would sit in history)', { secrets: { 'api.example.com': { authorization: 'Bearer abc123' } } }, 'names where its value comes from'],
    ['an unknown reference', { secrets: { 'api.example.com': { authorization: '${vault:x}' } } }, 'is not a secret reference'],
    ['a bad variable name', { secrets: { 'api.example.com': { authorization: '${env:1BAD}' } } }, 'does not name an environment variable'],
    ['a header the client owns', { secrets: { 'api.example.com': { Host: '${env:T}' } } }, 'cannot come from a secret'],
    ['a secret file inside the workspace', { workspace: '.', secrets: { 'api.example.com': { 'x-api-key': '${file:./api-key.txt}' } } }, 'inside the workspace'],
  ])('refuses %s, naming the field', (_name, resources, message) => {
    const issues = issuesOf(base(resources));
    expect(issues.join('\n')).toContain(message);
    expect(issues.join('\n')).toContain('resources.secrets');
  });

  it('keeps templates (never values) and makes file paths absolute', () => {
    const task = parseTask(base({ secrets: { 'api.example.com': { 'x-api-key': '${file:./api-key.txt}', authorization: 'Bearer ${env:T}' } } }), 'task.yaml', dir);
    expect(task.resources.secrets['api.example.com']).toEqual({ 'x-api-key': `\${file:${join(dir, 'api-key.txt')}}`, authorization: 'Bearer ${env:T}' });
  });
});
