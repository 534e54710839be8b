/**
 * A call the task's grants refuse is refused at once with the grant's reason, never held for a
 * human (sandbox/capabilities/grant-refusal.ts). Reproduced: a task granted `http.fetch` with no
 * host both granted and declared; the agent's fetch was held by the foundation pack's "URL the
 * user did not give" rule, and the task waited for a human until its deadline, although the
 * capability would refuse the fetch once approved. The class: the policy decision and the
 * capability grant were not joined, on both paths a hold is decided: the policy check of the
 * proposed action (built-ins, programs, user tools declaring ungranted capabilities), and the
 * sandbox host's gate for the capability calls a user tool makes.
 *
 * One row per way a grant refuses (and one run whose refusals the monitor counts into a block); each runs a real task on the real Temporal server, with a rule
 * that would hold the call (the foundation pack's, or `require approval for ...`), and an
 * approval timeout short enough that the old code fails here instead of waiting.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskResult } from '../../task/task-run';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let server: Server;
let granted: string;
let other: string;
let workspace: string;
const seen: string[] = [];

beforeAll(async () => {
  env = await startWardenTestEnv();
  server = createServer((req, res) => {
    seen.push(`${req.headers.host}${req.url}`);
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  granted = `127.0.0.1:${port}`;
  other = `localhost:${port}`;
  const base = mkdtempSync(join(tmpdir(), 'warden-grant-refusal-'));
  workspace = join(base, 'workspace');
  mkdirSync(workspace);
  writeFileSync(join(workspace, 'notes.txt'), 'notes');
  writeFileSync(join(base, 'outside.txt'), 'not the task\'s');
  // A link inside the workspace that leads out of it.
  symlinkSync(base, join(workspace, 'up'));
}, 120_000);
afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
  await env?.close();
});

const fetcher = (capabilities: string[], source: string) => ({
  name: 'grab',
  description: 'fetches or reads what it is given',
  capabilities,
  // What it is, so the action itself is not refused for what an undeclared tool might be (a payment tool...).
  effects: { families: [capabilities[0] === 'http.fetch' ? 'network' : 'storage'] },
  input: { type: 'object', required: ['target'], properties: { target: { type: 'string' } } },
  source,
});

interface Row {
  /** The task beyond user, intent and agent. */
  task: () => Record<string, unknown>;
  /** The one call the agent makes. */
  call: () => { tool: string; args: Record<string, unknown> };
  /** What the refusal's reason says. */
  reason: RegExp;
}

const ROWS: Record<string, Row> = {
  'http.fetch with no host both granted and declared (the reproduced case)': {
    task: () => ({ tools: { builtin: ['http.fetch'] }, grants: { tools: ['http.fetch'] } }),
    call: () => ({ tool: 'http.fetch', args: { url: 'example.invalid/collect' } }),
    reason: /no host that is both in grants\.hosts and in resources\.hosts/,
  },
  'http.fetch of a scheme the capability refuses': {
    task: () => ({ tools: { builtin: ['http.fetch'] }, grants: { tools: ['http.fetch'], hosts: [granted] }, resources: { hosts: [granted] } }),
    call: () => ({ tool: 'http.fetch', args: { url: `ftp://${granted}/collect` } }),
    reason: /only http and https are allowed/,
  },
  'fs.read of a path outside the workspace': {
    task: () => ({ tools: { builtin: ['fs.read'] }, grants: { tools: ['fs.read'] }, resources: { workspace }, policies: ['require approval for fs.read'] }),
    call: () => ({ tool: 'fs.read', args: { path: '../outside.txt' } }),
    reason: /outside the workspace/,
  },
  'fs.read through a link that leads out of the workspace': {
    task: () => ({ tools: { builtin: ['fs.read'] }, grants: { tools: ['fs.read'] }, resources: { workspace }, policies: ['require approval for fs.read'] }),
    call: () => ({ tool: 'fs.read', args: { path: 'up/outside.txt' } }),
    reason: /outside the workspace/,
  },
  'proc.run of a program the task does not grant': {
    task: () => ({ tools: { builtin: ['proc.run'] }, grants: { tools: ['proc.run'], commands: ['true'] }, policies: ['require approval for proc.run'] }),
    call: () => ({ tool: 'proc.run', args: { command: 'cat', args: ['/etc/hostname'] } }),
    reason: /program "cat" is not granted/,
  },
  "a user tool's fetch of a host its grant does not hand it (the sandbox host's gate)": {
    task: () => ({
      tools: { builtin: ['http.fetch'], custom: [fetcher(['http.fetch'], 'return (await warden.http.fetch(input.target)).body;')] },
      grants: { tools: ['grab', 'http.fetch'], hosts: [granted] },
      resources: { hosts: [granted, other] },
      policies: ['require approval for http.fetch'],
    }),
    call: () => ({ tool: 'grab', args: { target: `http://${other}/collect` } }),
    reason: /http\.fetch denied by policy grants: host localhost:\d+ is not granted/,
  },
  "a user tool's read of a path outside the workspace (the sandbox host's gate)": {
    task: () => ({
      tools: { builtin: ['fs.read'], custom: [fetcher(['fs.read'], 'return warden.fs.read(input.target);')] },
      grants: { tools: ['grab', 'fs.read'] },
      resources: { workspace },
      policies: ['require approval for fs.read'],
    }),
    call: () => ({ tool: 'grab', args: { target: 'up/outside.txt' } }),
    reason: /fs\.read denied by policy grants: .*outside the workspace/,
  },
};

describe('a call the grants refuse is refused at once, never held for a human', () => {
  const results = new Map<string, TaskResult>();
  beforeAll(async () => {
    await Promise.all(
      Object.entries(ROWS).map(async ([name, row]) => {
        results.set(
          name,
          await env.runTask({
            user: 'dana@example.com',
            intent: 'look around',
            agent: { name: 'clerk', model: { driver: 'scripted', script: [row.call(), { final: 'done' }] } },
            ...row.task(),
            limits: { onDeny: 'continue', approvalTimeout: '20s', deadline: '2m' },
          }),
        );
      }),
    );
  }, 240_000);

  it.each(Object.keys(ROWS))('%s', (name) => {
    const result = results.get(name)!;
    const step = result.steps[0]!;
    // Never asked, never approved, never run.
    expect(step.approval).toBeUndefined();
    expect(step.effectApprovals).toBeUndefined();
    expect(step.decision).toBe('deny');
    expect(step.error?.code).toBe('ERR_POLICY_DENIED');
    expect(step.reason).toMatch(ROWS[name]!.reason);
    // The refusal is the grant's, recorded as the rule that matched (on the action, or where the tool applied it).
    const matched = step.policy?.applied?.matched ?? step.policy?.matched ?? [];
    expect(matched.map((m) => m.id)).toEqual(['grants']);
    expect(result.status).toBe('completed');
  });

  it('the monitor sees each refusal: five in a minute block the task at the sixth (the foundation pack), none of them held', async () => {
    const fetches = Array.from({ length: 6 }, (_, i) => ({ tool: 'http.fetch', args: { url: `example.invalid/${i}` } }));
    const result = await env.runTask({
      user: 'dana@example.com',
      intent: 'look around',
      agent: { name: 'clerk', model: { driver: 'scripted', script: [...fetches, { final: 'done' }] } },
      tools: { builtin: ['http.fetch'] },
      grants: { tools: ['http.fetch'] },
      limits: { onDeny: 'continue', approvalTimeout: '20s', deadline: '2m' },
    });
    // Each refusal is scored as one (a burst of them): the sixth finds five in the last minute.
    expect(result.steps.flatMap((step) => step.monitor?.reasons ?? []).some((r) => r.signal === 'denial-burst')).toBe(true);
    expect(result.status).toBe('blocked');
    expect(result.steps.every((step) => step.approval === undefined && step.decision === 'deny' && step.policy?.matched[0]?.id === 'grants')).toBe(true);
  }, 180_000);

  it("the monitor's step-up holds no call the grants refuse: the tool refuses it at once", async () => {
    const result = await env.runTask({
      user: 'dana@example.com',
      intent: 'look around',
      agent: { name: 'clerk', model: { driver: 'scripted', script: [{ tool: 'fs.list', args: {} }, { tool: 'fs.list', args: {} }, { tool: 'fs.read', args: { path: '../outside.txt' } }, { tool: 'fs.read', args: { path: 'notes.txt' } }, { final: 'done' }] } },
      tools: { builtin: ['fs.list', 'fs.read'] },
      grants: { tools: ['fs.list', 'fs.read'] },
      resources: { workspace },
      policies: ['require approval for the next actions when it makes more than 1 calls of tool fs.list'],
      limits: { onDeny: 'continue', approvalTimeout: '5s', deadline: '2m' },
    });
    const refused = result.steps[2]!;
    expect(refused.approval).toBeUndefined();
    expect(refused.error?.code).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
    // The step-up still holds what the grants allow.
    expect(result.steps[3]?.approval?.status).toBe('timed_out');
  }, 180_000);

  it('nothing reached the host no grant covers', () => {
    expect(seen.filter((s) => s.startsWith('localhost:'))).toEqual([]);
  });
});
