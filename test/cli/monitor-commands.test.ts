/**
 * The monitoring commands' edges: usage errors exit 2 with the usage, bad files and missing keys
 * exit 1 naming what is wrong, and `warden baseline` / `warden alerts` read and write the state
 * store of the state folder (SQLite here; the stores are tested on PostgreSQL too).
 */
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeEach, describe, expect, it } from 'vitest';
import { alertsCommand } from '../../cli/commands/alerts';
import { baselineCommand } from '../../cli/commands/baseline';
import { killCommand } from '../../cli/commands/kill';
import { policyCommand } from '../../cli/commands/policy';
import { main } from '../../cli/main';
import type { Alert } from '../../monitoring/alert';
import { createAlertStore } from '../../monitoring/alert-store';
import { openStateStore } from '../../state/state-store';
import type { TaskResult } from '../../task/task-run';

let stateDir: string;
beforeEach(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'warden-monitor-cli-'));
});

function io(extra: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: stateDir, WARDEN_STATE_DIR: stateDir, ...extra };
  return { out, err, io: { stdout: (t: string) => out.push(t), stderr: (t: string) => err.push(t), env } };
}

function result(i: number): TaskResult {
  return {
    workflowId: `w-${i}`,
    runId: 'r',
    agent: 'clerk',
    model: { id: 'm', version: '1' },
    depth: 0,
    status: i === 99 ? 'failed' : 'completed',
    steps: [{ index: 0, turn: 0, kind: 'tool', tool: 'http.fetch', args: { url: 'https://api.example.com/x' }, decision: 'allow', reason: 'ok', executed: true, output: { status: 200 }, startedAt: '2026-11-30T10:00:00.000Z', durationMs: 1 }],
    children: [],
    final: null,
  };
}

describe('warden baseline', () => {
  it.each([[[]], [['teach']], [['show']], [['forget', 'a', 'b']], [['list', 'extra']], [['learn', '--since', 'yesterday']], [['learn', '--limit', '0']], [['learn', '--bogus']], [['learn', '--max-score', '101']], [['learn', '--max-score', 'high']]])('%j is a usage error (exit 2)', async (argv) => {
    const run = io();
    expect(await baselineCommand(argv, run.io)).toBe(2);
    expect(run.err.join('')).toContain('usage: warden baseline learn');
  });

  it('learns from files, skips runs that did not complete, lists, shows and forgets', async () => {
    const file = join(stateDir, 'results.jsonl');
    await writeFile(file, [0, 1, 2, 3, 4, 99].map((i) => JSON.stringify(result(i))).join('\n'));
    const learn = io();
    expect(await baselineCommand(['learn', '--from', file], learn.io), learn.err.join('')).toBe(0);
    expect(learn.out.join('')).toContain('learnt from 5 run(s); skipped 1');
    expect(learn.out.join('')).toContain('clerk: 5 runs; tools http.fetch; hosts api.example.com');
    expect(learn.out.join('')).toContain('skipped w-99: it ended failed');
    const list = io();
    expect(await baselineCommand(['list', '--json'], list.io)).toBe(0);
    expect((JSON.parse(list.out.join('')) as { agent: string }[]).map((b) => b.agent)).toEqual(['clerk']);
    const show = io();
    expect(await baselineCommand(['show', 'clerk', '--json'], show.io)).toBe(0);
    expect(JSON.parse(show.out.join(''))).toMatchObject({ agent: 'clerk', tasks: 5, hosts: ['api.example.com'] });
    const forget = io();
    expect(await baselineCommand(['forget', 'clerk'], forget.io)).toBe(0);
    const again = io();
    expect(await baselineCommand(['show', 'clerk'], again.io)).toBe(1);
    expect(again.err.join('')).toContain('no baseline of agent clerk');
  });

  it('refuses unreadable and malformed result files, naming the file and the problem', async () => {
    const missing = io();
    expect(await baselineCommand(['learn', '--from', join(stateDir, 'nope.json')], missing.io)).toBe(2);
    expect(missing.err.join('')).toMatch(/ERR_TASK_RESULTS_FILE_INVALID: cannot read results file .*nope\.json: no such file: looked for /);
    const bad = join(stateDir, 'bad.json');
    await writeFile(bad, JSON.stringify([result(0), { workflowId: 'x' }]));
    const malformed = io();
    expect(await baselineCommand(['learn', '--from', bad], malformed.io)).toBe(2);
    expect(malformed.err.join('')).toMatch(/bad\.json: result 2 is not a task result/);
  });
});

describe('warden alerts', () => {
  it('lists alerts from the state store, filtered, as text or JSON', async () => {
    const empty = io();
    expect(await alertsCommand([], empty.io)).toBe(0);
    expect(empty.out.join('')).toBe('no alerts\n');
    const state = await openStateStore({ stateDir, env: { WARDEN_STATE_DIR: stateDir } });
    const now = new Date().toISOString();
    const alert: Alert = {
      id: 'a-1',
      rootWorkflowId: 'task-9',
      workflowId: 'task-9',
      runId: 'r',
      agent: 'clerk',
      user: 'u',
      source: 'monitor',
      stepIndex: 4,
      tool: 'http.fetch',
      score: 90,
      reasons: [{ signal: 'new-host', points: 70, detail: 'sends data to paste.example.net' }],
      rules: [{ id: 'foundation:26', sentence: 'block the task and roll it back when the anomaly score is above 80', response: 'remediate', detail: 'anomaly score 90 > 80' }],
      response: 'remediate',
      detectedAt: now,
      blockedAt: now,
      detectionToBlockMs: 12,
    };
    await createAlertStore(state.db).record(alert);
    await state.close();
    const text = io();
    expect(await alertsCommand(['--since', '1h'], text.io)).toBe(0);
    expect(text.out.join('')).toContain('REMEDIATE clerk #4 http.fetch score 90: sends data to paste.example.net (blocked 12 ms after detection)');
    expect(text.out.join('')).toContain('rules: foundation:26');
    const json = io();
    expect(await alertsCommand(['--task', 'task-9', '--json'], json.io)).toBe(0);
    expect(JSON.parse(json.out.join(''))).toEqual([alert]);
    const other = io();
    expect(await alertsCommand(['--task', 'task-0', '--json'], other.io)).toBe(0);
    expect(JSON.parse(other.out.join(''))).toEqual([]);
  });

  it.each([[['--since', 'soon']], [['--limit', '-1']], [['extra']]])('%j is a usage error', async (argv) => {
    const run = io();
    expect(await alertsCommand(argv, run.io)).toBe(2);
  });
});

describe('warden kill, policy compile, help', () => {
  it('kill needs a workflow id and an approver key, and says how to get one', async () => {
    const none = io();
    expect(await killCommand([], none.io)).toBe(2);
    const nokey = io({ WARDEN_APPROVER_DIR: stateDir });
    expect(await killCommand(['task-1'], nokey.io)).toBe(2);
    expect(nokey.err.join('')).toMatch(/ERR_APPROVER_INVALID: no approver key: pass --key <file>/);
    const missing = io();
    expect(await killCommand(['task-1', '--key', join(stateDir, 'none.json')], missing.io)).toBe(2);
    expect(missing.err.join('')).toMatch(/cannot read the approver key file/);
  });

  it('policy compile shows response rules next to policy rules', async () => {
    const run = io();
    expect(await policyCommand(['compile', 'block the task and roll it back when it is denied 5 times in a minute', '--json'], run.io)).toBe(0);
    expect(JSON.parse(run.out.join(''))).toEqual([expect.objectContaining({ kind: 'response', id: 'cli:1', response: 'remediate', trigger: { kind: 'denied', count: 5, windowMs: 60_000 } })]);
    const text = io();
    expect(await policyCommand(['compile', 'foundation'], text.io)).toBe(0);
    expect(text.out.join('')).toMatch(/foundation:\d+ {2}alert when the anomaly score is above 40\n {2}response rule, raises an alert when the action's anomaly score is above 40/);
    const bad = io();
    expect(await policyCommand(['compile', 'alert when it is denied lots'], bad.io)).toBe(2);
    expect(bad.err.join('')).toContain('cannot read response rule');
  });

  it('warden help lists kill, alerts and baseline', async () => {
    const run = io();
    expect(await main(['help'], run.io)).toBe(0);
    expect(run.out.join('')).toMatch(/Monitoring:\n\s+alerts\s+\S.*\n\s+kill\s+\S.*\n\s+baseline\s+\S/);
    // Each command's own usage, through `warden help <command>`.
    for (const [name, usage] of [['kill', 'warden kill <workflowId>'], ['alerts', 'warden alerts'], ['baseline', 'warden baseline learn']]) {
      const one = io();
      expect(await main(['help', name!], one.io)).toBe(0);
      expect(one.out.join('')).toContain(usage);
    }
  });
});
