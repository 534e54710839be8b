/**
 * Regression test, was an open finding (severity: medium; issue 17 area, lone-surrogate handling: a policy gate that
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
 * Fixed at two depths: capability-call arguments are made well-formed where they cross from the
 * isolate into the host (sandbox/run-in-isolate.ts, `wellFormedJson`, counted as
 * `capabilityArgsMended`), so the gate decides and digests what is executed; and the gate fails
 * closed (sandbox/policy-gate.ts): any error while it decides or records a call is a sticky deny
 * under `warden:policy-gate-failed`, never an error tool code can catch and go on past.
 *
 * Table: capability kinds (sql.exec deny and approval, fs.read, fs.write, fs.list, http.fetch) ×
 * {a lone surrogate the tool built, a real value the gate cannot digest or decide: a BigInt path,
 * which crosses isolated-vm as it is}. (SQL params are checked by the broker before the gate sees
 * them, and an http.fetch's digested fields are strings or refused before a decision, so after the
 * mending no real value makes the gate throw there; the fail-closed path is the same code for all.) Every row: the call is refused with the report's
 * `stopped`, the tool's next call is refused too, nothing applied, nothing changed.
 *
 * Real parts: a real sandbox host process (isolated-vm), a real SQLite database, the compiled rules.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPolicyEngine } from '../../policies/engine/policy-engine';
import { emptyPolicyState } from '../../policies/engine/policy-state';
import { GATE_FAILED_RULE } from '../../sandbox/policy-gate';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant, PolicyGateSpec } from '../../sandbox/sandbox-messages';
import { makeTempDir, outputOf, toolCall } from '../sandbox/sandbox-test-kit';

let client: SandboxClient;
let dir: string;
let dbFile: string;
const URL_BASE = 'http://127.0.0.1:9/collect';

beforeAll(async () => {
  client = await SandboxClient.start();
  dir = makeTempDir('gate-lone');
  fs.mkdirSync(path.join(dir, 'secrets'));
  fs.writeFileSync(path.join(dir, 'secrets', 'key.txt'), 'k');
  fs.writeFileSync(path.join(dir, 'notes.txt'), 'n');
  dbFile = path.join(dir, 'shop.db');
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

function spec(sentences: string[], caller: PolicyGateSpec['caller'] = { tool: 'tidy', builtin: false, args: {}, argSources: {} }): PolicyGateSpec {
  const engine = loadPolicyEngine({ sentences });
  return {
    rulesKey: `lone|${sentences.join('|')}`,
    rules: [...engine.rules],
    state: emptyPolicyState(),
    agent: { name: 'clerk', depth: 0, chain: [], id: 'wf' },
    now: '2026-03-02T10:00:00Z',
    seed: { userTexts: ['tidy the shop'], trustedAtoms: [] },
    caller,
    approvedRules: [],
    approvedEffects: [],
  };
}

const sqlGrant = (): CapabilityGrant => ({ sql: { databases: { shop: dbFile }, query: true, exec: true } });
const fsGrant = (): CapabilityGrant => ({ fs: { root: dir, read: true, write: true, list: true } });
const fetchCaller = { tool: 'notify', builtin: false, args: { url: URL_BASE }, argSources: { '/url': 'tool-output' as const } };

interface Row {
  name: string;
  sentences: string[];
  caller?: PolicyGateSpec['caller'];
  grant: () => CapabilityGrant;
  /** The stopped call, `BAD` standing for the bad value (`input.url` is a URL the agent took from a tool output). */
  call: string;
  /** A call the gate would otherwise let through. */
  later: string;
  stopped: 'deny' | 'approval';
  /** The gate itself failed on this value (no rule of the task decided it). */
  gateFailed: boolean;
  /** The bad value's source in the isolate. */
  bad: string;
}

const LONE = 'String.fromCharCode(0xd800)';
const BIG = '0n';
const rowsOfTable: Row[] = [
  { name: 'sql.exec denied, lone surrogate param', sentences: ['never delete more than 10 rows'], grant: sqlGrant, call: "warden.sql.exec('shop', 'DELETE FROM items WHERE name <> ?', [BAD])", later: "warden.sql.exec('shop', 'DELETE FROM items WHERE id = 1')", stopped: 'deny', gateFailed: false, bad: LONE },
  { name: 'sql.exec needing approval, lone surrogate param', sentences: ['never delete more than 10 rows without approval'], grant: sqlGrant, call: "warden.sql.exec('shop', 'DELETE FROM items WHERE name <> ?', [BAD])", later: "warden.sql.exec('shop', 'DELETE FROM items WHERE id = 1')", stopped: 'approval', gateFailed: false, bad: LONE },
  { name: 'fs.read denied, lone surrogate path', sentences: ['never read inside /workspace/secrets'], grant: fsGrant, call: "warden.fs.read('secrets/key.txt' + BAD)", later: "warden.fs.read('notes.txt')", stopped: 'deny', gateFailed: false, bad: LONE },
  { name: 'fs.read, BigInt path (request cannot be built)', sentences: ['never read inside /workspace/secrets'], grant: fsGrant, call: 'warden.fs.read(BAD)', later: "warden.fs.read('notes.txt')", stopped: 'deny', gateFailed: true, bad: BIG },
  { name: 'fs.write denied, lone surrogate path', sentences: ['never write inside /workspace/secrets'], grant: fsGrant, call: "warden.fs.write('secrets/new' + BAD, 'x')", later: "warden.fs.write('written.txt', 'x')", stopped: 'deny', gateFailed: false, bad: LONE },
  { name: 'fs.write, BigInt path (digest throws)', sentences: ['never write inside /workspace/secrets'], grant: fsGrant, call: "warden.fs.write(BAD, 'x')", later: "warden.fs.write('written.txt', 'x')", stopped: 'deny', gateFailed: true, bad: BIG },
  { name: 'fs.list denied, lone surrogate path', sentences: ['never list inside /workspace/secrets'], grant: fsGrant, call: "warden.fs.list('secrets/' + BAD)", later: "warden.fs.list('.')", stopped: 'deny', gateFailed: false, bad: LONE },
  { name: 'http.fetch denied, lone surrogate URL', sentences: ['never fetch a URL the user did not give'], caller: fetchCaller, grant: () => ({ http: { allowedHosts: ['127.0.0.1:9'] } }), call: "warden.http.fetch(input.url + '?d=' + BAD)", later: 'warden.http.fetch(input.url)', stopped: 'deny', gateFailed: false, bad: LONE },
];
const table = rowsOfTable.map((row) => ({ ...row, call: row.call.replace('BAD', row.bad) }));

describe('a capability call the gate refuses or cannot decide, built by the tool from data it read', () => {
  it.each(table)('$name: refused, reported stopped, and every later call of the tool call is refused too', async (row) => {
    const source = `
      let first;
      try { await ${row.call}; first = 'applied'; } catch (e) { first = e.code; }
      try { await ${row.later}; return 'went on after: ' + first; } catch (e) { return { first, later: e.code }; }`;
    const response = await client.run({ ...toolCall(source, { url: URL_BASE }, row.grant()), policy: spec(row.sentences, row.caller) });
    const said = JSON.stringify({ ok: response.ok, output: response.ok ? response.output : response.error, policy: response.policy, mended: response.capabilityArgsMended });
    const code = row.stopped === 'deny' ? 'ERR_POLICY_DENIED' : 'ERR_APPROVAL_REQUIRED';
    expect(outputOf(response), said).toEqual({ first: code, later: code });
    expect(response.policy?.stopped?.decision, said).toBe(row.stopped);
    expect(response.policy?.stopped?.matched.some((m) => m.id === GATE_FAILED_RULE), said).toBe(row.gateFailed);
    expect(response.policy?.stopped?.digest, said).toMatch(/^[0-9a-f]{64}$/);
    expect(response.policy?.applied, said).toEqual([]);
    // The lone surrogate was mended where it entered the host, and counted.
    expect(response.capabilityArgsMended, said).toBe(row.bad === LONE ? 1 : undefined);
    expect(rows(), said).toBe(30);
    expect(fs.existsSync(path.join(dir, 'written.txt')), said).toBe(false);
    expect(fs.readdirSync(path.join(dir, 'secrets')), said).toEqual(['key.txt']);
  }, 120_000);
});
