/**
 * Regression (s13, was test/attacks/open/compensation-runs-for-call-that-never-ran.test.ts): a
 * declared compensating tool ran for a call that never ran, with the agent's arguments: an "undo"
 * with no effect to undo, which is itself an effect.
 *
 * Every tool call whose activity was scheduled registered its undo however it ended
 * (`ranUnfinished` in workflows/tool-step.ts, patch `warden-undo-ended-calls`; run-action.ts for
 * any failed call before it), also a call refused inside the activity before its tool started
 * (activities/run-tool.ts checks the tool's input schema there). So an agent that wrote
 * `reserve({ item: 'tea', qty: 0 })` (its schema wants qty >= 1), then let its task fail, made
 * Warden run `release` for a reservation never made: stock 1 became 101.
 *
 * Now the activity's failure says when the tool never started (`details.notRun`, set only on the
 * first attempt, activities/call-outcome.ts) and such a call registers no undo and reads not run
 * (patch `warden-undo-what-ran`); a user tool in the isolate that the host's gate stopped at its
 * first capability call, none applied, changed nothing either and registers none.
 *
 * Table, both loops: the input against the tool's schema and the host's gate denying the tool's
 * only effect (each failing on the old code: 101), the workflow's policy check denying the call
 * (never scheduled: a control that passed before too), and a call that ran (control: its undo
 * still runs, 1 -> 0 -> 100).
 *
 * Real parts: a real Temporal server and worker, a real SQLite file, the scripted model.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TaskResult } from '../../task/task-run';
import { STOCK_TOOLS } from '../support/stock-tools';
import { startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;

beforeAll(async () => {
  env = await startWardenTestEnv();
}, 300_000);
afterAll(async () => env?.close());

/** How the agent's one call of `reserve` goes, what its step's record then says, and the stock after the task failed. */
const KINDS = {
  // The tool's schema wants qty >= 1: refused in the activity before the tool starts.
  'input against the schema': { args: { item: 'tea', qty: 0 }, code: 'ERR_TOOL_INPUT_INVALID', executed: false, stock: 1, released: false },
  // The tool's only statement deletes 1,200 rows: the bundled pack denies it at the host's gate, nothing applied.
  "the host's gate denies its only effect": { args: { item: 'tea', qty: 1, purge: true }, code: 'ERR_POLICY_DENIED', executed: false, stock: 1, released: false },
  // The task's own rule denies the call in the workflow: never scheduled.
  "the workflow's policy check denies it": { args: { item: 'coffee', qty: 1 }, code: 'ERR_POLICY_DENIED', executed: false, stock: 1, released: false },
  // Control: it ran (1 -> 0), then the task failed: `release` puts back 100 (its own arithmetic).
  'it ran': { args: { item: 'tea', qty: 1 }, code: undefined, executed: true, stock: 100, released: true },
} as const;

type Kind = keyof typeof KINDS;
const CASES: [Kind, 'original loop' | 'data flow'][] = (Object.keys(KINDS) as Kind[]).flatMap((kind) => [
  [kind, 'original loop'],
  [kind, 'data flow'],
]);

describe('a call refused before it ran has no compensating tool run for it', () => {
  it.each(CASES)('%s (%s)', async (kind, loop) => {
    const workspace = await mkdtemp(join(tmpdir(), 'warden-never-ran-'));
    const dbFile = join(workspace, 'shop.db');
    const db = new Database(dbFile);
    db.exec("CREATE TABLE stock (item TEXT PRIMARY KEY, qty INTEGER); INSERT INTO stock VALUES ('tea', 1); CREATE TABLE shelf (id INTEGER PRIMARY KEY);");
    const shelf = db.prepare('INSERT INTO shelf (id) VALUES (?)');
    db.transaction(() => {
      for (let i = 1; i <= 1200; i += 1) shelf.run(i);
    })();
    db.close();
    const result: TaskResult = await env.runTask({
      user: 'erin@example.com',
      intent: 'reserve tea',
      agent: {
        name: 'clerk',
        model: {
          driver: 'scripted',
          // One call, then the script runs out: the task fails and its saga runs.
          script: [{ tool: 'reserve', args: KINDS[kind].args }],
        },
      },
      tools: {
        builtin: ['sql.exec'],
        custom: STOCK_TOOLS,
      },
      grants: { tools: ['reserve', 'release', 'sql.exec'], databases: ['shop'] },
      resources: { workspace, databases: { shop: dbFile } },
      policies: ['deny tool reserve when argument item contains "coffee"'],
      limits: { onDeny: 'continue' },
      ...(loop === 'data flow' ? { dataFlow: true } : {}),
    });
    const { code, executed, stock, released } = KINDS[kind];
    expect(result.status).toBe('failed');
    expect({ code: result.steps[0]?.error?.code, executed: result.steps[0]?.executed }).toEqual({ code, executed });
    const after = new Database(dbFile, { readonly: true });
    try {
      expect(after.prepare("SELECT qty FROM stock WHERE item = 'tea'").get()).toEqual({ qty: stock });
      expect(after.prepare('SELECT count(*) AS n FROM shelf').get()).toEqual({ n: 1200 });
    } finally {
      after.close();
    }
    expect((result.recovery?.rolledBack ?? []).filter((r) => r.kind === 'tool').map((r) => [r.forTool, r.status])).toEqual(released ? [['reserve', 'done']] : []);
  }, 300_000);
});
