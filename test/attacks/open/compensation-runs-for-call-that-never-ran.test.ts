/**
 * Open finding (s13, atk13): a declared compensating tool runs for a call that never ran, with the
 * agent's arguments: an "undo" with no effect to undo, which is itself an effect.
 *
 * Every tool call whose activity was scheduled registers its undo however it ends, once
 * (workflows/tool-step.ts `ranUnfinished`, patch `warden-undo-ended-calls`; before it
 * run-action.ts did the same for any failed call). A call that fails a guard inside the activity
 * before the tool runs, ERR_TOOL_INPUT_INVALID (activities/run-tool.ts `callTool` checks the
 * tool's input schema there, not in the workflow), ERR_TOOL_UNKNOWN or ERR_CAPABILITY_NOT_GRANTED,
 * is registered all the same, and a user tool's compensating tool receives
 * `{ original: { args, output: null } }` with the agent's arguments when the task does not
 * complete. So an agent that writes `reserve({ item: 'tea', qty: 0 })` (its schema wants qty >= 1),
 * then lets its task fail, makes Warden run `release` for a reservation that was never made: a
 * refund without a charge, stock added back that was never taken. s12's note checked "undo of a
 * call that did nothing" by reading only (SQL and overlay undos find nothing; a compensating tool
 * "still runs with original.output: null").
 *
 * Real parts: a real Temporal server and worker, a real SQLite file, the scripted model.
 *
 * Suggested fix: register no undo for a call whose failure says it never reached the tool (the
 * refusals `callTool` throws before the executor, marked e.g. `details.notRun: true` at the
 * activity boundary), as the old comment "the call ran (and failed) unless the failure says it
 * never started" intended; for a cancelled call, register a compensating tool only when the
 * activity started (its heartbeat or a started marker), and tell the compensating tool whether
 * the original is known to have run (`original.ran: 'yes' | 'unknown'`).
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startWardenTestEnv, type WardenTestEnv } from '../../support/warden-test-env';

let env: WardenTestEnv;

beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

it("a call refused before it ran (input against the tool's schema) has no compensating tool run for it", async () => {
  const workspace = await mkdtemp(join(tmpdir(), 'warden-never-ran-'));
  const dbFile = join(workspace, 'shop.db');
  const db = new Database(dbFile);
  db.exec("CREATE TABLE stock (item TEXT PRIMARY KEY, qty INTEGER); INSERT INTO stock VALUES ('tea', 1);");
  db.close();
  const result = await env.runTask({
    user: 'erin@example.com',
    intent: 'reserve tea',
    agent: {
      name: 'clerk',
      model: {
        driver: 'scripted',
        // An input the tool's schema refuses (qty >= 1), then the script runs out: the task fails.
        script: [{ tool: 'reserve', args: { item: 'tea', qty: 0 } }],
      },
    },
    tools: {
      // The tools' sql.exec capability must be granted like the built-in itself.
      builtin: ['sql.exec'],
      custom: [
        {
          name: 'reserve',
          description: 'takes qty of an item out of stock',
          input: { type: 'object', properties: { item: { type: 'string' }, qty: { type: 'integer', minimum: 1 } }, required: ['item', 'qty'], additionalProperties: false },
          capabilities: ['sql.exec'],
          compensate: 'release',
          source: "return warden.sql.exec('shop', 'UPDATE stock SET qty = qty - ? WHERE item = ?', [input.qty, input.item]);",
        },
        {
          name: 'release',
          description: 'puts a reservation back in stock',
          capabilities: ['sql.exec'],
          source: "return warden.sql.exec('shop', 'UPDATE stock SET qty = qty + 100 WHERE item = ?', [input.original.args.item]);",
        },
      ],
    },
    grants: { tools: ['reserve', 'release', 'sql.exec'], databases: ['shop'] },
    resources: { workspace, databases: { shop: dbFile } },
  });
  expect(result.status).toBe('failed');
  expect(result.steps[0]?.error?.code).toBe('ERR_TOOL_INPUT_INVALID');
  const after = new Database(dbFile, { readonly: true });
  try {
    // reserve never ran: nothing to put back.
    expect(after.prepare("SELECT qty FROM stock WHERE item = 'tea'").get()).toEqual({ qty: 1 });
  } finally {
    after.close();
  }
  expect((result.recovery?.rolledBack ?? []).filter((r) => r.kind === 'tool')).toEqual([]);
});
