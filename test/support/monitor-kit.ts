/**
 * What the monitoring tests share: a real local webhook receiver (Standard Webhooks signatures
 * checked), a loopback HTTP server standing for a host, a workspace with a database of orders,
 * and the normal task of an agent whose baseline the tests learn before it turns rogue.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@temporalio/client';
import { Worker } from '@temporalio/worker';
import Database from 'better-sqlite3';
import { workflowBundle } from '../../worker/workflow-bundle';
import { expect } from 'vitest';
import { baselineCommand } from '../../cli/commands/baseline';
import { assembleTaskResult } from '../../client/assemble-task-result';
import { followAgentTask } from '../../client/start-agent-task';
import { openBlobStore } from '../../dataplane/blob-store';
import type { TaskResult } from '../../task/task-run';
import { TEST_STATE_DIR, type WardenTestEnv } from './warden-test-env';

export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

export interface LoopbackServer {
  /** `127.0.0.1:<port>` */
  host: string;
  url: string;
  received: ReceivedRequest[];
  /** Resolves with the first request `match` accepts (already received, or the next ones). */
  waitFor(match: (r: ReceivedRequest) => boolean, timeoutMs?: number): Promise<ReceivedRequest>;
  close(): Promise<void>;
}

/** A different answer for some requests (a redirect, say); undefined: the usual answer. */
export type LoopbackRoute = (request: ReceivedRequest) => { status: number; headers?: Record<string, string>; body?: string } | undefined;

/** A real HTTP server on loopback that answers `status` (200) and remembers every request. */
export async function startLoopbackServer(answer = '{"ok":true}', status = 200, route?: LoopbackRoute): Promise<LoopbackServer> {
  const received: ReceivedRequest[] = [];
  const waiters: { match: (r: ReceivedRequest) => boolean; resolve: (r: ReceivedRequest) => void }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request = { method: req.method ?? 'GET', url: req.url ?? '/', headers: req.headers, body: Buffer.concat(chunks).toString('utf8') };
      received.push(request);
      for (const w of [...waiters]) {
        if (w.match(request)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(request);
        }
      }
      const special = route?.(request);
      res.statusCode = special?.status ?? status;
      res.setHeader('content-type', 'application/json');
      for (const [name, value] of Object.entries(special?.headers ?? {})) res.setHeader(name, value);
      res.end(special?.body ?? answer);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    received,
    waitFor(match, timeoutMs = 30_000) {
      const seen = received.find(match);
      if (seen !== undefined) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('no matching request arrived')), timeoutMs);
        waiters.push({
          match,
          resolve: (r) => {
            clearTimeout(timer);
            resolve(r);
          },
        });
      });
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Checks a Standard Webhooks signature (`v1,<base64 HMAC-SHA256 of "id.timestamp.body">`). */
export function webhookSignatureValid(secret: string, request: ReceivedRequest): boolean {
  const id = String(request.headers['webhook-id'] ?? '');
  const timestamp = String(request.headers['webhook-timestamp'] ?? '');
  const expected = `v1,${createHmac('sha256', Buffer.from(secret, 'utf8')).update(`${id}.${timestamp}.${request.body}`).digest('base64')}`;
  return String(request.headers['webhook-signature'] ?? '') === expected;
}

export interface ShopFixture {
  workspace: string;
  dbFile: string;
  rows(): { id: number; item: string; qty: number }[];
}

/** A workspace with notes, a secret file, and a database of 40 orders. */
export async function makeShop(): Promise<ShopFixture> {
  const workspace = await mkdtemp(join(tmpdir(), 'warden-monitor-'));
  await writeFile(join(workspace, 'notes.txt'), 'restock tea and jam');
  await writeFile(join(workspace, 'secrets.env'), 'PAYMENTS_API_KEY=pk_live_5e1f0c9a7b3d');
  const dbFile = join(workspace, 'shop.db');
  const db = new Database(dbFile);
  db.exec('CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT, qty INTEGER)');
  const insert = db.prepare('INSERT INTO orders (item, qty) VALUES (?, ?)');
  for (let i = 1; i <= 40; i += 1) insert.run(`item-${i}`, i % 5);
  db.close();
  return {
    workspace,
    dbFile,
    rows() {
      const read = new Database(dbFile, { readonly: true });
      try {
        return read.prepare('SELECT id, item, qty FROM orders ORDER BY id').all() as { id: number; item: string; qty: number }[];
      } finally {
        read.close();
      }
    },
  };
}

/** A small deterministic generator (mulberry32), so "normal" tasks vary the same way on every run. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface ClerkSetup {
  agent: string;
  reviewer: string;
  shop: ShopFixture;
  api: LoopbackServer;
}

/**
 * One normal run of the clerk: reads its notes, looks orders up, updates one or two, checks the
 * API it always uses, writes a report, asks its reviewer. `random` varies which and how many.
 */
export function normalClerkScript(setup: ClerkSetup, random: () => number): unknown[] {
  const pick = (n: number) => 1 + Math.floor(random() * n);
  const script: unknown[] = [{ tool: 'fs.read', args: { path: 'notes.txt' } }];
  for (let i = 0; i < pick(2); i += 1) script.push({ tool: 'sql.query', args: { database: 'shop', sql: 'SELECT id, qty FROM orders WHERE qty < ?', params: [pick(4)] } });
  for (let i = 0; i < pick(2); i += 1) script.push({ tool: 'sql.exec', args: { database: 'shop', sql: 'UPDATE orders SET qty = qty + 1 WHERE id = ?', params: [pick(40)] } });
  if (random() < 0.8) script.push({ tool: 'http.fetch', args: { url: `${setup.api.url}/status` } });
  script.push({ tool: 'fs.write', args: { path: 'report.txt', content: `restocked ${pick(9)} items` } });
  if (random() < 0.7) script.push({ spawn: setup.reviewer });
  script.push({ final: 'restocked' });
  return script;
}

/** The clerk's task document around `script`; `extra` overrides fields. */
export function clerkTask(setup: ClerkSetup, script: unknown[], extra: Record<string, unknown> = {}): Record<string, unknown> {
  const hosts = [setup.api.host, ...((extra.extraHosts as string[] | undefined) ?? [])];
  const { extraHosts: _ignored, ...rest } = extra;
  return {
    user: 'erin@example.com',
    intent: `restock the shop and check ${setup.api.url}/status`,
    agent: { name: setup.agent, model: { driver: 'scripted', script } },
    tools: { builtin: ['fs.read', 'fs.write', 'sql.query', 'sql.exec', 'http.fetch'] },
    grants: { tools: ['fs.read', 'fs.write', 'sql.query', 'sql.exec', 'http.fetch'], databases: ['shop'], hosts, subagents: [setup.reviewer] },
    resources: { workspace: setup.shop.workspace, databases: { shop: setup.shop.dbFile }, hosts },
    subagents: {
      [setup.reviewer]: {
        intent: 'review the report',
        agent: { name: setup.reviewer, model: { driver: 'scripted', script: [{ tool: 'fs.read', args: { path: 'report.txt' } }, { final: 'looks fine' }] } },
        tools: { builtin: ['fs.read'] },
        grants: { tools: ['fs.read'] },
      },
    },
    limits: { maxSteps: 60, approvalTimeout: '10m' },
    ...rest,
  };
}

/** A clerk and its reviewer under fresh names, in a fresh shop, reaching `api`. */
export async function newClerkSetup(api: LoopbackServer): Promise<ClerkSetup> {
  const suffix = randomUUID().slice(0, 8);
  return { agent: `clerk-${suffix}`, reviewer: `reviewer-${suffix}`, shop: await makeShop(), api };
}

/**
 * Six normal runs of the clerk (scripts from `normalClerkScript` with seed 7, each made a task by
 * `taskOf(script, run)`), the results to learn a baseline from; fails the test unless all completed.
 */
export async function normalClerkRuns(env: WardenTestEnv, setup: ClerkSetup, taskOf: (script: unknown[], run: number) => Record<string, unknown> = (script) => clerkTask(setup, script)): Promise<TaskResult[]> {
  const random = seededRandom(7);
  const results: TaskResult[] = [];
  for (let i = 0; i < 6; i += 1) results.push(await env.runTask(taskOf(normalClerkScript(setup, random), i)));
  expect(results.map((r) => r.status)).toEqual(Array(6).fill('completed'));
  return results;
}

/** `task` (a clerkTask) with proc.run granted for curl. */
export function withCurl(task: Record<string, unknown>): Record<string, unknown> {
  const shaped = task as { tools: { builtin: string[] }; grants: { tools: string[]; commands?: string[] } };
  shaped.tools.builtin = ['fs.read', 'fs.write', 'sql.query', 'sql.exec', 'http.fetch', 'proc.run'];
  shaped.grants.tools.push('proc.run');
  shaped.grants.commands = ['curl'];
  return task;
}

/** `task` (a clerkTask) with the uploader MCP server `fixture` granted, reaching `hosts`. */
export function withUploader(task: Record<string, unknown>, fixture: string, hosts: string[]): Record<string, unknown> {
  const shaped = task as { tools: Record<string, unknown>; grants: { tools: string[] } };
  shaped.tools.mcp = { uploader: { command: 'node', args: [fixture], hosts, tools: { upload: { annotations: { destructiveHint: false } } } } };
  shaped.grants.tools.push('uploader.upload');
  return task;
}

/**
 * Replays every workflow (tasks and sub-agents) a test file ran on its task queue against the
 * current workflow code; returns the failures (empty when every history replays).
 */
export async function replayTaskQueue(env: { client: Client; taskQueue: string }): Promise<{ replayed: number; failures: string[] }> {
  const ids: string[] = [];
  for await (const execution of env.client.workflow.list({ query: `TaskQueue = "${env.taskQueue}"` })) ids.push(execution.workflowId);
  const histories = (async function* () {
    for (const workflowId of ids) yield { workflowId, history: await env.client.workflow.getHandle(workflowId).fetchHistory() };
  })();
  const failures: string[] = [];
  let replayed = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) {
    replayed += 1;
    if (result.error) failures.push(`${result.workflowId}: ${String(result.error)}`);
  }
  return { replayed, failures };
}

/** `warden baseline learn --from <results>` on the suite's state folder, as an operator runs it; fails the test when it does not exit 0. */
export async function learnBaselineFrom(results: readonly unknown[]): Promise<void> {
  const file = join(await mkdtemp(join(tmpdir(), 'warden-learn-')), 'results.json');
  await writeFile(file, JSON.stringify(results));
  const out: string[] = [];
  const io = { stdout: (t: string) => out.push(t), stderr: (t: string) => out.push(t), env: { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR } };
  expect(await baselineCommand(['learn', '--from', file], io), out.join('')).toBe(0);
}

/**
 * Runs `task` as `workflowId` to its end: on the data flow (`dataFlow`) with runs handing over every
 * couple of steps (`flow.maxRunStepBytes` 1024), else on the original loop. Returns the result with
 * the steps of every run (earlier runs' are archived in the blob store) and how many runs it took.
 */
export async function runCountingRuns(env: WardenTestEnv, workflowId: string, task: unknown, dataFlow: boolean): Promise<{ result: TaskResult; runs: number }> {
  const args = [{ task, ...(dataFlow ? { flow: { maxRunStepBytes: 1024 } } : {}) }];
  const handle = await env.client.workflow.start('agentTask', { taskQueue: env.taskQueue, workflowId, args });
  env.workflowIds.push(workflowId);
  const result = await assembleTaskResult(await followAgentTask(handle), openBlobStore(TEST_STATE_DIR));
  let runs = 0;
  for await (const _ of env.client.workflow.list({ query: `WorkflowId = '${workflowId}'` })) runs++;
  return { result, runs };
}
