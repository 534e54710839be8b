/**
 * Open finding (severity: medium; issue 17 area, lone-surrogate handling: a policy gate that
 * fails with a TypeError instead of refusing).
 *
 * The host's policy gate (sandbox/policy-gate.ts) records a stopped capability call with the digest
 * of its effect, `effectDigest`, which is canonical JSON of the call's arguments. Arguments a tool
 * builds inside its isolate are not made well-formed (only a call's arguments and its output are,
 * at entry; a tool builds its capability calls from whatever it read: a web page's JSON with
 * "\ud800" escapes, a file, a row). For `sql.exec` / `sql.query` the arguments are digested whole,
 * so one lone surrogate in a statement's params makes `effectDigest` throw `TypeError: canonical
 * JSON ...` on the line that was about to refuse the call, BEFORE the refusal is recorded:
 * `stopped` is never set and `stopCode` never set. The denied statement itself does not apply
 * (the throw rolls it back), but:
 *  - the refusal is not sticky: tool code catches the TypeError and its later capability calls
 *    are decided afresh and applied (the gate's rule "a stop cannot be caught and worked around:
 *    every later call is refused too" does not hold);
 *  - the gate's report has no `stopped`, so the step is neither `denied` nor held for approval:
 *    it completes, and the record of the agent's denied attempt is gone;
 *  - the same for a statement that needs approval: instead of being held for a human, the step
 *    goes on.
 *
 * Safe behaviour asserted (as test/sandbox/policy-gate.test.ts asserts for well-formed text): the
 * call is refused ERR_POLICY_DENIED, the report says `stopped: deny`, the later call is refused,
 * nothing applied.
 *
 * Real parts: a real sandbox host process (isolated-vm), a real SQLite database, the compiled rules.
 */
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyEngine } from '../../../policies/engine/policy-engine';
import { emptyPolicyState } from '../../../policies/engine/policy-state';
import { SandboxClient } from '../../../sandbox/sandbox-client';
import type { PolicyGateSpec } from '../../../sandbox/sandbox-messages';
import { codeOf, makeTempDir, outputOf, toolCall } from '../../sandbox/sandbox-test-kit';

let client: SandboxClient;
let dbFile: string;

beforeAll(async () => {
  client = await SandboxClient.start();
  dbFile = path.join(makeTempDir('gate-lone'), 'shop.db');
  const db = new Database(dbFile);
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)');
  const insert = db.prepare('INSERT INTO items (name) VALUES (?)');
  for (let i = 0; i < 30; i += 1) insert.run(`item ${i}`);
  db.close();
});
afterAll(async () => client?.close());

const rows = () => {
  const db = new Database(dbFile, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM items').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

function spec(sentences: string[]): PolicyGateSpec {
  const engine = loadPolicyEngine({ sentences });
  return {
    rulesKey: `lone|${sentences.join('|')}`,
    rules: [...engine.rules],
    state: emptyPolicyState(),
    agent: { name: 'clerk', depth: 0, chain: [], id: 'wf' },
    now: '2026-03-02T10:00:00Z',
    seed: { userTexts: ['tidy the shop'], trustedAtoms: [] },
    caller: { tool: 'tidy', builtin: false, args: {}, argSources: {} },
    approvedRules: [],
    approvedEffects: [],
  };
}

describe('a denied statement whose params hold a lone surrogate (built by the tool from data it read)', () => {
  it('is refused, reported stopped, and every later call of the tool call is refused too', async () => {
    // `odd` is what JSON.parse('"\\ud800"') of a fetched page gives; here built directly.
    const source = `
      const odd = String.fromCharCode(0xd800);
      let first;
      try { warden.sql.exec('shop', 'DELETE FROM items WHERE name <> ?', [odd]); } catch (e) { first = e.code + ' ' + e.message; }
      try { warden.sql.exec('shop', 'DELETE FROM items WHERE id = 1'); return 'went on after: ' + first; } catch (e) { return e.code; }`;
    const response = await client.run({ ...toolCall(source, {}, { sql: { databases: { shop: dbFile }, query: true, exec: true } }), policy: spec(['never delete more than 10 rows']) });
    const said = JSON.stringify({ code: codeOf(response), output: response.ok ? outputOf(response) : undefined, policy: response.policy });
    expect(response.policy?.stopped?.decision, said).toBe('deny');
    expect(outputOf(response), said).toBe('ERR_POLICY_DENIED');
    expect(response.policy?.applied, said).toEqual([]);
    expect(rows(), said).toBe(30);
  }, 120_000);
});
