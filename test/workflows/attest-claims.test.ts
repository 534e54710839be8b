/**
 * Claims checked by Warden after the task commits, on the real Temporal server with real files,
 * a real SQLite database, a real HTTP server on loopback and tests re-run as real processes in
 * the OS sandbox: true claims are verified and signed (and the envelopes verify with the
 * published JWKS), false ones refuted and the task ends `refuted`, an agent faking its test
 * output is refuted all the same, a sub-agent's claims are checked with its own (narrower)
 * grants, and claims cannot point Warden's verifier at hosts the agent was not granted.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openStatement, sha256Hex } from '../../attestation/in-toto-statement';
import { readJwksFile } from '../../identity/keystore';
import { LedgerReader } from '../../custody/ledger-reader';
import type { ClaimOutcome, TaskResult } from '../../task/task-run';
import { replayHistories } from '../mcp/mcp-test-kit';
import { startFakeOpenAIServer, toolCall, toolCallsReply, type FakeOpenAIServer } from '../support/fake-openai-server';
import { makeTempDir, startLoopbackServer, type LoopbackServer } from '../sandbox/sandbox-test-kit';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let web: LoopbackServer;
/** A host no agent of this file is granted: the verifier must never reach it. */
let elsewhere: LoopbackServer;
let model: FakeOpenAIServer;

beforeAll(async () => {
  env = await startWardenTestEnv();
  elsewhere = await startLoopbackServer((_req, res) => {
    res.statusCode = 200;
    res.end('elsewhere');
  });
  web = await startLoopbackServer((req, res) => {
    if (req.url === '/bounce') {
      res.writeHead(302, { location: `http://127.0.0.1:${elsewhere.port}/health` });
      res.end();
      return;
    }
    res.statusCode = req.url === '/health' ? 200 : 503;
    res.end('ok');
  });
  model = await startFakeOpenAIServer();
});
afterAll(async () => {
  await env?.close();
  await web?.close();
  await elsewhere?.close();
  await model?.close();
});

const PASSING_TEST = `const test = require('node:test');
const assert = require('node:assert');
test('sum', () => assert.strictEqual(1 + 1, 2));
`;
const FAILING_TEST = `const test = require('node:test');
const assert = require('node:assert');
test('sum', () => assert.strictEqual(1 + 1, 3));
`;

/** A workspace with a passing and a failing test file and a database of 5 items (3 open). */
function world(): { workspace: string; database: string } {
  const workspace = makeTempDir('attest-ws');
  fs.writeFileSync(path.join(workspace, 'sum.test.js'), PASSING_TEST);
  fs.writeFileSync(path.join(workspace, 'broken.test.js'), FAILING_TEST);
  const database = path.join(makeTempDir('attest-db'), 'app.db');
  const db = new Database(database);
  db.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, status TEXT); INSERT INTO items (status) VALUES ('open'), ('open'), ('open'), ('closed'), ('closed')");
  db.close();
  return { workspace, database };
}

function task(w: { workspace: string; database: string }, script: unknown[], extra: Record<string, unknown> = {}) {
  const host = `127.0.0.1:${web.port}`;
  return {
    user: 'sam@example.com',
    intent: 'tidy the items and write the report',
    agent: { name: 'tidier', model: { driver: 'scripted', script } },
    tools: { builtin: ['fs.write', 'fs.read', 'sql.exec', 'proc.run', 'http.fetch'] },
    grants: { tools: ['fs.write', 'fs.read', 'sql.exec', 'proc.run', 'http.fetch'], databases: ['app'], hosts: [host], commands: ['node', 'sh', 'cp'] },
    resources: { workspace: w.workspace, databases: { app: w.database }, hosts: [host] },
    limits: { toolTimeout: '60s' },
    // The commands that are this task's tests: the only ones a tests.pass claim may name.
    attestation: { tests: [{ command: 'node', args: ['--test', 'sum.test.js'] }, { command: 'node', args: ['--test', 'broken.test.js'] }] },
    ...extra,
  };
}

const REPORT = '# Report\n2 closed items deleted\n';

function byText(result: TaskResult): Record<string, ClaimOutcome> {
  return Object.fromEntries((result.claims ?? []).map((c) => [c.text, c]));
}

describe('claims checked after the commit', () => {
  it('verifies true claims of every kind and signs each with a key of the published JWKS', async () => {
    const w = world();
    const result = await env.runTask(
      task(w, [
        { tool: 'fs.write', args: { path: 'report.md', content: REPORT } },
        { tool: 'sql.exec', args: { database: 'app', sql: "DELETE FROM items WHERE status = 'closed'", params: [] } },
        {
          final: 'done',
          claims: [
            { kind: 'file.sha256', path: 'report.md', sha256: sha256Hex(REPORT) },
            { kind: 'file.contains', path: 'report.md', text: '2 closed items deleted' },
            { kind: 'sql.count', database: 'app', table: 'items', equals: 3 },
            { kind: 'sql.count', database: 'app', table: 'items', where: { status: 'closed' }, equals: 0 },
            { kind: 'tests.pass', command: 'node', args: ['--test', 'sum.test.js'] },
            { kind: 'http.status', url: `http://127.0.0.1:${web.port}/health`, status: 200 },
            { kind: 'tool.called', tool: 'sql.exec', args: { database: 'app' } },
            'the report is accurate',
          ],
        },
      ]),
    );
    expect(result.status, result.reason).toBe('completed');
    const claims = result.claims ?? [];
    expect(claims.map((c) => c.verdict)).toEqual(['verified', 'verified', 'verified', 'verified', 'verified', 'verified', 'verified', 'unverified']);
    const jwks = readJwksFile(TEST_STATE_DIR);
    for (const claim of claims.filter((c) => c.verdict === 'verified')) {
      const { statement } = openStatement(claim.envelope, jwks);
      expect(statement.predicate).toMatchObject({ verdict: 'verified', claim: claim.claim, run: { workflowId: result.workflowId, runId: result.runId } });
      expect(statement.subject.map((s) => s.name)).toContain(`workflow:${result.workflowId}`);
      expect(statement.subject).toContainEqual({ name: `custody:${claim.custody?.seq}`, digest: { sha256: claim.custody?.hash } });
      // Each check ran under a verifier credential of its own, recorded by id only.
      expect(claim.verifier.credential).toMatch(/^[0-9a-f-]{36}$/);
    }
    expect(new Set(claims.map((c) => c.verifier.credential)).size).toBe(claims.length);
    const file = claims[0]!;
    expect(openStatement(file.envelope, jwks).statement.subject[0]).toEqual({ name: 'file:report.md', digest: { sha256: sha256Hex(REPORT) } });
    expect(claims[4]?.observed).toMatchObject({ exitCode: 0, committedByTask: ['report.md'] });
    expect(claims[4]?.reason).toBe('Warden re-ran the tests: exit code 0, on files of which the task changed 1: report.md');
    expect(claims[7]?.envelope).toBeUndefined();
    // The ledger holds one claim-verdict record per claim, with the verdict the result shows.
    const reader = LedgerReader.open({ stateDir: TEST_STATE_DIR });
    try {
      const records = reader.records(result.workflowId).filter((r) => r.kind === 'claim-verdict');
      expect(records.map((r) => (r.body as { verdict: string }).verdict)).toEqual(claims.map((c) => c.verdict));
      expect(records.map((r) => r.seq)).toEqual(claims.map((c) => c.custody?.seq));
    } finally {
      reader.close();
    }
  });

  it('refutes false claims (file differs, wrong row count, tests fail) and ends the task refuted', async () => {
    const w = world();
    const result = await env.runTask(
      task(w, [
        { tool: 'fs.write', args: { path: 'report.md', content: REPORT } },
        {
          final: 'done',
          claims: [
            { kind: 'file.sha256', path: 'report.md', sha256: sha256Hex('something else') },
            { kind: 'file.contains', path: 'report.md', text: '42 items deleted' },
            { kind: 'file.sha256', path: 'missing.md', sha256: sha256Hex(REPORT) },
            { kind: 'sql.count', database: 'app', table: 'items', equals: 3 },
            { kind: 'tests.pass', command: 'node', args: ['--test', 'broken.test.js'] },
            { kind: 'http.status', url: `http://127.0.0.1:${web.port}/down`, status: 200 },
            { kind: 'tool.called', tool: 'sql.exec' },
          ],
        },
      ]),
    );
    expect(result.status).toBe('refuted');
    expect(result.reason).toMatch(/^7 claims refuted: tidier claimed/);
    expect((result.claims ?? []).map((c) => c.verdict)).toEqual(Array(7).fill('refuted'));
    expect((result.claims ?? []).every((c) => c.envelope === undefined)).toBe(true);
    const claims = result.claims ?? [];
    expect(claims[0]?.reason).toBe(`report.md hashes to ${sha256Hex(REPORT)}`);
    expect(claims[3]?.observed).toEqual({ count: 5 });
    expect(claims[4]?.observed).toMatchObject({ exitCode: 1, stdoutTail: expect.stringMatching(/# fail 1/) });
    expect(claims[5]?.observed).toEqual({ status: 503 });
    // The effects were committed all the same: refuted says the agent lied, not that nothing happened.
    expect(fs.readFileSync(path.join(w.workspace, 'report.md'), 'utf8')).toBe(REPORT);
    // The Temporal UI shows each check by what it is about (a URL without its query), and the task closed as failed.
    const history = await env.client.workflow.getHandle(result.workflowId).fetchHistory();
    const summaries = (history.events ?? []).flatMap((e) => (e.userMetadata?.summary ? [defaultPayloadConverter.fromPayload<string>(e.userMetadata.summary)] : [])).filter((t) => t.startsWith('claim of'));
    expect(summaries).toEqual([
      'claim of tidier: file.sha256 report.md',
      'claim of tidier: file.contains report.md',
      'claim of tidier: file.sha256 missing.md',
      'claim of tidier: sql.count app.items',
      'claim of tidier: tests.pass node',
      `claim of tidier: http.status GET http:\u200b//127.0.0.1:${web.port}/down`,
      'claim of tidier: tool.called sql.exec',
    ]);
    expect((await env.client.workflow.getHandle(result.workflowId).describe()).status.name).toBe('FAILED');
  });

  it('refutes an agent that fakes test output in its own sandbox run', async () => {
    const w = world();
    // Its own run: the failing test swapped for a passing one, run, and put back; a PASS log written.
    const fake = `cp broken.test.js /tmp/orig && cp sum.test.js broken.test.js && node --test broken.test.js > test-output.log; cp /tmp/orig broken.test.js`;
    const result = await env.runTask(
      task(w, [
        { tool: 'proc.run', args: { command: 'sh', args: ['-c', fake] } },
        { tool: 'proc.run', args: { command: 'node', args: ['-e', 'console.log("# pass 1\\n# fail 0")'] } },
        { tool: 'fs.write', args: { path: 'RESULTS.txt', content: 'ALL TESTS PASS' } },
        { final: 'all tests pass', claims: [{ kind: 'tests.pass', command: 'node', args: ['--test', 'broken.test.js'] }] },
      ]),
    );
    // The agent's own run looked green ...
    expect(fs.readFileSync(path.join(w.workspace, 'test-output.log'), 'utf8')).toMatch(/# pass 1/);
    // ... Warden's re-run of the committed tests is not.
    expect(result.status).toBe('refuted');
    expect(result.claims?.[0]).toMatchObject({ verdict: 'refuted', observed: { exitCode: 1 } });
    expect(fs.readFileSync(path.join(w.workspace, 'broken.test.js'), 'utf8')).toBe(FAILING_TEST);
  });

  it('names the test files an agent rewrote when the committed tests pass', async () => {
    const w = world();
    const result = await env.runTask(
      task(w, [
        { tool: 'fs.write', args: { path: 'broken.test.js', content: PASSING_TEST } },
        { final: 'fixed', claims: [{ kind: 'tests.pass', command: 'node', args: ['--test', 'broken.test.js'] }] },
      ]),
    );
    // The committed tests do pass (that is what is attested), and the attestation says the task changed them.
    expect(result.status, result.reason).toBe('completed');
    expect(result.claims?.[0]).toMatchObject({ verdict: 'verified', reason: expect.stringMatching(/the task changed 1: broken\.test\.js$/), observed: { committedByTask: ['broken.test.js'] } });
    const { statement } = openStatement(result.claims?.[0]?.envelope, readJwksFile(TEST_STATE_DIR));
    expect(statement.predicate).toMatchObject({ observed: { committedByTask: ['broken.test.js'] } });
  });

  it("checks a sub-agent's claims with the sub-agent's own grants", async () => {
    const w = world();
    const result = await env.runTask(
      task(w, [{ spawn: 'counter' }, { final: 'done', claims: [{ kind: 'sql.count', database: 'app', table: 'items', equals: 5 }] }], {
        grants: { tools: ['fs.write', 'fs.read', 'sql.exec', 'proc.run', 'http.fetch'], databases: ['app'], hosts: [`127.0.0.1:${web.port}`], commands: ['node', 'sh'], subagents: ['counter'] },
        subagents: {
          counter: {
            intent: 'write a note',
            agent: {
              name: 'counter',
              model: {
                driver: 'scripted',
                script: [
                  { tool: 'fs.write', args: { path: 'note.txt', content: 'hi' } },
                  {
                    final: 'noted',
                    claims: [
                      { kind: 'file.contains', path: 'note.txt', text: 'hi' },
                      // Not granted to the sub-agent: its verifier gets no access either.
                      { kind: 'sql.count', database: 'app', table: 'items', equals: 5 },
                    ],
                  },
                ],
              },
            },
            tools: { builtin: ['fs.write'] },
            grants: { tools: ['fs.write'] },
          },
        },
      }),
    );
    expect(result.status, result.reason).toBe('completed');
    const claims = result.claims ?? [];
    expect(claims.map((c) => [c.agent, c.verdict])).toEqual([
      ['tidier', 'verified'],
      ['counter', 'verified'],
      ['counter', 'unverified'],
    ]);
    expect(claims[1]?.workflowId).toBe(result.children[0]?.workflowId);
    expect(claims[2]?.reason).toMatch(/ERR_CREDENTIAL_SCOPE: .*database "app" is not granted to counter/);
  });

  it('refuses http.status claims to hosts the agent was not granted (no SSRF through claims)', async () => {
    const w = world();
    const hitsBefore = web.hits.length;
    const result = await env.runTask(
      task(w, [
        {
          final: 'done',
          claims: [
            { kind: 'http.status', url: 'http://169.254.169.254/latest/meta-data/', status: 200 },
            { kind: 'http.status', url: `http://127.0.0.1:${web.port + 1}/health`, status: 200 },
            { kind: 'http.status', url: `http://localhost:${web.port}/health`, status: 200 },
            { kind: 'http.status', url: `http://user:pw@127.0.0.1:${web.port}/health`, status: 200 },
          ],
        },
      ]),
    );
    expect(result.status).toBe('completed');
    const claims = result.claims ?? [];
    expect(claims.map((c) => c.verdict)).toEqual(['unverified', 'unverified', 'unverified', 'unverified']);
    expect(claims[0]?.reason).toMatch(/host "169.254.169.254" is not granted/);
    expect(claims[1]?.reason).toMatch(/is not granted/);
    expect(claims[2]?.reason).toMatch(/host "localhost:\d+" is not granted/);
    expect(claims[3]?.reason).toMatch(/ERR_NETWORK_DENIED: credentials in URLs/);
    expect(web.hits.length).toBe(hitsBefore);
  });

  it('does not follow a redirect of a granted host to one that is not granted', async () => {
    const w = world();
    const result = await env.runTask(task(w, [{ final: 'done', claims: [{ kind: 'http.status', url: `http://127.0.0.1:${web.port}/bounce`, status: 200 }] }]));
    expect(result.claims?.[0]).toMatchObject({ verdict: 'unverified', reason: expect.stringMatching(/ERR_NETWORK_DENIED/) });
    expect(elsewhere.hits).toEqual([]);
  });

  it('judges a claim on the state the task committed, not on the moment the agent stated it', async () => {
    const w = world();
    // A model states true claims mid-task (state_claim), then changes the rows and the file they are about.
    model.enqueue(
      toolCallsReply([toolCall('sql__exec', { database: 'app', sql: "DELETE FROM items WHERE status = 'closed'", params: [] }, 'c1'), toolCall('fs__write', { path: 'report.md', content: REPORT }, 'c2')]),
      toolCallsReply([
        toolCall('state_claim', { kind: 'sql.count', database: 'app', table: 'items', equals: 3 }, 'k1'),
        toolCall('state_claim', { kind: 'file.sha256', path: 'report.md', sha256: sha256Hex(REPORT) }, 'k2'),
      ]),
      toolCallsReply([toolCall('sql__exec', { database: 'app', sql: "INSERT INTO items (status) VALUES ('open')", params: [] }, 'c3'), toolCall('fs__write', { path: 'report.md', content: 'changed' }, 'c4')]),
      toolCallsReply([toolCall('final_answer', { answer: 'done', claims: [{ kind: 'tool.called', tool: 'sql.exec', args: { sql: "DELETE FROM items WHERE status = 'closed'" } }] }, 'c5')]),
    );
    const t = task(w, []);
    const result = await env.runTask({ ...t, agent: { name: 'tidier', model: { driver: 'openai-compatible', id: 'gpt-test', baseUrl: model.url } } });
    expect(result.status).toBe('refuted');
    expect(result.final?.claims).toHaveLength(3);
    const claims = result.claims ?? [];
    expect(claims.map((c) => [c.claim.kind, c.verdict])).toEqual([
      ['sql.count', 'refuted'],
      ['file.sha256', 'refuted'],
      ['tool.called', 'verified'],
    ]);
    expect(claims[0]?.observed).toEqual({ count: 4 });
    expect(claims[1]?.reason).toBe(`report.md hashes to ${sha256Hex('changed')}`);
  });

  it('reports claims of a task that did not complete as unverified, without checking them', async () => {
    const w = world();
    const result = await env.runTask(
      task(w, [{ spawn: 'helper' }, { tool: 'fs.write', args: { path: '../escape.txt', content: 'x' } }, { final: 'never' }], {
        grants: { tools: ['fs.write'], subagents: ['helper'] },
        subagents: {
          helper: {
            intent: 'say hi',
            agent: { name: 'helper', model: { driver: 'scripted', script: [{ final: 'hi', claims: [{ kind: 'sql.count', database: 'app', table: 'items', equals: 5 }] }] } },
          },
        },
      }),
    );
    expect(result.status).not.toBe('completed');
    expect(result.claims?.map((c) => [c.agent, c.verdict, c.reason])).toEqual([['helper', 'unverified', expect.stringMatching(/nothing was committed/)]]);
  });
});

describe('user-defined verifiers', () => {
  it('run in a fresh sandbox with read-only capabilities and decide custom claims', async () => {
    const w = world();
    fs.writeFileSync(path.join(w.workspace, 'invoice.json'), JSON.stringify({ lines: [{ amount: 2 }, { amount: 3 }], total: 5 }));
    const result = await env.runTask(
      task(w, [{ final: 'checked', claims: [
        { kind: 'custom', verifier: 'invoice-total', params: { path: 'invoice.json' } },
        { kind: 'custom', verifier: 'writer', params: {} },
        { kind: 'custom', verifier: 'invoice-total', params: { file: 1 } },
        { kind: 'custom', verifier: 'nobody', params: {} },
        { kind: 'custom', verifier: 'prober', params: { url: `http://127.0.0.1:${web.port}/health` } },
        { kind: 'custom', verifier: 'prober', params: { url: `http://127.0.0.1:${elsewhere.port}/health` } },
        { kind: 'custom', verifier: 'prober', params: { url: 'http://169.254.169.254/latest/meta-data/' } },
      ] }], {
        attestation: {
          verifiers: {
            'invoice-total': {
              params: { type: 'object', required: ['path'], properties: { path: { type: 'string' } } },
              capabilities: ['fs.read'],
              source: `const invoice = JSON.parse(await warden.fs.read(input.path));
                const sum = invoice.lines.reduce((a, l) => a + l.amount, 0);
                return { holds: sum === invoice.total, reason: 'lines add up to ' + sum, observed: { sum } };`,
            },
            prober: {
              capabilities: ['http.fetch'],
              params: { type: 'object', required: ['url'], properties: { url: { type: 'string' } } },
              source: `const r = await warden.http.fetch(input.url); return { holds: r.status === 200, reason: 'answered ' + r.status };`,
            },
            writer: {
              capabilities: ['fs.read'],
              source: `await warden.fs.write('pwned.txt', 'x'); return { holds: true, reason: 'wrote' };`,
            },
          },
        },
      }),
    );
    expect(result.status, result.reason).toBe('completed');
    const claims = result.claims ?? [];
    expect(claims.map((c) => c.verdict)).toEqual(['verified', 'unverified', 'unverified', 'unverified', 'verified', 'unverified', 'unverified']);
    expect(claims[0]).toMatchObject({ reason: 'lines add up to 5', observed: { sum: 5 } });
    // A user verifier reaches only the hosts the agent was granted.
    expect(claims[5]?.reason).toMatch(/ERR_NETWORK_DENIED/);
    expect(claims[6]?.reason).toMatch(/ERR_NETWORK_DENIED/);
    expect(elsewhere.hits).toEqual([]);
    expect(claims[2]?.reason).toMatch(/ERR_CLAIM_INVALID/);
    expect(claims[3]?.reason).toMatch(/no verifier "nobody"/);
    expect(fs.existsSync(path.join(w.workspace, 'pwned.txt'))).toBe(false);
  });
});

it('replays every history of this file deterministically', async () => {
  const { failures, replayed } = await replayHistories(env.client, { taskQueue: env.taskQueue });
  expect(failures).toEqual([]);
  expect(replayed).toBeGreaterThanOrEqual(env.workflowIds.length);
});
