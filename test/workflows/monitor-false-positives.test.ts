/**
 * False positives on the real Temporal server: an agent's baseline is learnt from its past runs
 * in Temporal (`warden baseline learn --since ... --agent ...`), then 50 more normal runs, drawn
 * from the same kind of work with different files, rows, queries and sub-agents, are watched with
 * the foundation pack's response rules. Every alert among them is a false positive; the count is
 * written to .warden-test/monitor-false-positives.json for the record.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { baselineCommand } from '../../cli/commands/baseline';
import type { Alert } from '../../monitoring/alert';
import type { TaskResult } from '../../task/task-run';
import { clerkTask, makeShop, normalClerkScript, seededRandom, startLoopbackServer, type ClerkSetup, type LoopbackServer } from '../support/monitor-kit';
import { testTemporalAddress } from '../support/temporal';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

const LEARN_RUNS = 20;
const NORMAL_RUNS = 50;
const CONCURRENCY = 4;

let env: WardenTestEnv;
let api: LoopbackServer;
let setup: ClerkSetup;
/** One workspace per concurrent lane: parallel runs must not commit the same file. */
let lanes: ClerkSetup[];
const printed: Alert[] = [];

beforeAll(async () => {
  api = await startLoopbackServer('{"status":"green"}');
  env = await startWardenTestEnv(process.env, { printAlert: (alert) => printed.push(alert) });
  const suffix = randomUUID().slice(0, 8);
  setup = { agent: `shop-${suffix}`, reviewer: `checker-${suffix}`, shop: await makeShop(), api };
  lanes = [setup, ...(await Promise.all(Array.from({ length: CONCURRENCY - 1 }, async () => ({ ...setup, shop: await makeShop() }))))];
});
afterAll(async () => {
  await env?.close();
  await api?.close();
});

function allAlerts(result: TaskResult): Alert[] {
  return [...(result.alerts ?? []), ...result.children.flatMap(allAlerts)];
}

async function runMany(count: number, seed: number): Promise<TaskResult[]> {
  const random = seededRandom(seed);
  const scripts = Array.from({ length: count }, () => normalClerkScript(setup, random));
  const results: TaskResult[] = [];
  for (let i = 0; i < scripts.length; i += CONCURRENCY) {
    results.push(...(await Promise.all(scripts.slice(i, i + CONCURRENCY).map((script, lane) => env.runTask(clerkTask(lanes[lane]!, script))))));
  }
  return results;
}

it(`raises no alert on ${NORMAL_RUNS} normal runs after learning from ${LEARN_RUNS}`, async () => {
  const startedAt = Date.now();
  const learning = await runMany(LEARN_RUNS, 1);
  expect(learning.map((r) => r.status)).toEqual(Array(LEARN_RUNS).fill('completed'));

  const out: string[] = [];
  const io = {
    stdout: (t: string) => out.push(t),
    stderr: (t: string) => out.push(t),
    env: { ...process.env, TEMPORAL_ADDRESS: testTemporalAddress().address, WARDEN_STATE_DIR: TEST_STATE_DIR },
  };
  const minutes = Math.ceil((Date.now() - startedAt) / 60_000) + 2;
  expect(await baselineCommand(['learn', '--since', `${minutes}m`, '--agent', setup.agent, '--agent', setup.reviewer, '--json'], io), out.join('')).toBe(0);
  const learnt = JSON.parse(out.join('')) as { baselines: { agent: string; tasks: number }[] };
  expect(learnt.baselines.find((b) => b.agent === setup.agent)?.tasks).toBe(LEARN_RUNS);
  expect(learnt.baselines.find((b) => b.agent === setup.reviewer)?.tasks).toBeGreaterThanOrEqual(5);

  const normal = await runMany(NORMAL_RUNS, 2);
  expect(normal.map((r) => r.status)).toEqual(Array(NORMAL_RUNS).fill('completed'));
  const falsePositives = normal.flatMap(allAlerts);
  const scored = normal.flatMap((r) => [...r.steps, ...r.children.flatMap((c) => c.steps)]);
  const summary = {
    learntFrom: LEARN_RUNS,
    normalRuns: NORMAL_RUNS,
    steps: scored.length,
    stepsScoredAboveZero: scored.filter((s) => (s.monitor?.score ?? 0) > 0).length,
    falsePositives: falsePositives.length,
    alerts: falsePositives.map((a) => ({ agent: a.agent, tool: a.tool, score: a.score, reasons: a.reasons.map((r) => r.detail) })),
  };
  await writeFile(join(TEST_STATE_DIR, 'monitor-false-positives.json'), `${JSON.stringify(summary, null, 2)}\n`);
  expect(scored.every((s) => s.monitor !== undefined)).toBe(true);
  expect(summary.falsePositives, JSON.stringify(summary.alerts)).toBe(0);
  expect(printed).toEqual([]);
}, 900_000);
