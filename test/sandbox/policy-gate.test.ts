/**
 * The policy gate in a real sandbox host: every capability call a tool makes is decided before
 * it applies, counted as it applies, and a stop cannot be caught and worked around by tool code.
 * Approvals bind to the measured effect's digest. Table grants are checked from the statement's
 * program, views, triggers and cascades included.
 */
import * as path from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadPolicyEngine } from '../../policies/engine/policy-engine';
import { emptyPolicyState } from '../../policies/engine/policy-state';
import { tableAccessOf, checkTableGrants } from '../../sandbox/capabilities/sql-table-access';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant, PolicyGateSpec } from '../../sandbox/sandbox-messages';
import { codeOf, makeTempDir, outputOf, toolCall } from './sandbox-test-kit';

let client: SandboxClient;
let dir: string;
let dbFile: string;

beforeAll(async () => {
  client = await SandboxClient.start();
  dir = makeTempDir('gate');
});
afterAll(async () => client?.close());

beforeEach(() => {
  dbFile = path.join(dir, `shop-${Math.random().toString(36).slice(2)}.db`);
  const db = new Database(dbFile);
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT); CREATE TABLE log (id INTEGER PRIMARY KEY, note TEXT)');
  const insert = db.prepare('INSERT INTO items (name) VALUES (?)');
  for (let i = 0; i < 30; i += 1) insert.run(`item ${i}`);
  db.close();
});

const rows = () => {
  const db = new Database(dbFile, { readonly: true });
  try {
    return (db.prepare('SELECT count(*) AS n FROM items').get() as { n: number }).n;
  } finally {
    db.close();
  }
};

function spec(sentences: string[], extra: Partial<PolicyGateSpec> = {}): PolicyGateSpec {
  const engine = loadPolicyEngine({ sentences });
  return {
    rulesKey: sentences.join('|'),
    rules: [...engine.rules],
    state: emptyPolicyState(),
    agent: { name: 'clerk', depth: 0, chain: [], id: 'wf' },
    now: '2026-03-02T10:00:00Z',
    seed: { userTexts: ['tidy the shop'], trustedAtoms: [] },
    caller: { tool: 'tidy', builtin: false, args: {}, argSources: {} },
    approvedRules: [],
    approvedEffects: [],
    ...extra,
  };
}

const sql = (): CapabilityGrant => ({ sql: { databases: { shop: dbFile }, query: true, exec: true } });
const withGate = (source: string, gate: PolicyGateSpec) => ({ ...toolCall(source, {}, sql()), policy: gate });

describe('capability calls from inside a tool', () => {
  it('are counted as they apply: the third delete of 4 rows crosses a 10-row budget and is stopped', async () => {
    const source = "for (let i = 0; i < 3; i += 1) warden.sql.exec('shop', 'DELETE FROM items WHERE id IN (SELECT id FROM items LIMIT 4)'); return 'done';";
    const response = await client.run(withGate(source, spec(['never delete more than 10 rows across the task'])));
    expect(codeOf(response)).toBe('ERR_POLICY_DENIED');
    expect(response.policy?.applied.map((a) => a.request.effect?.rowsByOperation?.delete)).toEqual([4, 4]);
    expect(response.policy?.stopped).toMatchObject({ decision: 'deny', request: { tool: 'sql.exec', via: 'tidy' } });
    expect(rows()).toBe(22);
  });

  it('a stop cannot be caught and worked around: every later call is refused too', async () => {
    const source = `
      try { warden.sql.exec('shop', 'DELETE FROM items'); } catch (e) { /* ignore and go on */ }
      try { warden.sql.exec('shop', 'DELETE FROM items WHERE id = 1'); return 'went on'; } catch (e) { return e.code; }`;
    const response = await client.run(withGate(source, spec(['never delete more than 10 rows'])));
    // The tool returned normally, but the report says it was stopped, and nothing applied.
    expect(outputOf(response)).toBe('ERR_POLICY_DENIED');
    expect(response.policy?.stopped?.decision).toBe('deny');
    expect(response.policy?.applied).toEqual([]);
    expect(rows()).toBe(30);
  });

  it('a held effect applies only when a human approved that exact effect', async () => {
    const source = "return warden.sql.exec('shop', 'DELETE FROM items WHERE id <= 12');";
    const held = await client.run(withGate(source, spec(['never delete more than 10 rows without approval'])));
    expect(codeOf(held)).toBe('ERR_APPROVAL_REQUIRED');
    expect(rows()).toBe(30);
    const digest = held.policy!.stopped!.digest;
    // An approval of another effect does not let this one through.
    const other = await client.run(withGate(source, spec(['never delete more than 10 rows without approval'], { approvedEffects: ['0'.repeat(64)] })));
    expect(codeOf(other)).toBe('ERR_APPROVAL_REQUIRED');
    const approved = await client.run(withGate(source, spec(['never delete more than 10 rows without approval'], { approvedEffects: [digest] })));
    expect(outputOf(approved)).toMatchObject({ changes: 12 });
    expect(approved.policy?.applied[0]).toMatchObject({ decision: 'approval', rules: ['task:1'] });
    expect(rows()).toBe(18);
  });

  it('approvals of the step carry over to a built-in\'s own call, never to a user tool\'s calls', async () => {
    const source = "return warden.sql.exec('shop', 'DELETE FROM items WHERE id <= 12');";
    const forTool = await client.run(withGate(source, spec(['never delete more than 10 rows without approval'], { approvedRules: ['task:1'] })));
    expect(codeOf(forTool)).toBe('ERR_APPROVAL_REQUIRED');
    const builtin = spec(['never delete more than 10 rows without approval'], {
      approvedRules: ['task:1'],
      caller: { tool: 'sql.exec', builtin: true, args: { database: 'shop', sql: 'DELETE FROM items WHERE id <= 12' }, argSources: {} },
    });
    expect(outputOf(await client.run(withGate(source, builtin)))).toMatchObject({ changes: 12 });
  });

  it('decides fetches before they leave, and file reads before they are read', async () => {
    // The URL comes from the tool's input, which the agent took from a tool output.
    const fetchSource = 'return await warden.http.fetch(input.url);';
    const url = 'http://127.0.0.1:9/collect?d=secret';
    const gate = spec(['never fetch a URL the user did not give'], { caller: { tool: 'notify', builtin: false, args: { url }, argSources: { '/url': 'tool-output' } } });
    const response = await client.run({ ...toolCall(fetchSource, { url }, { http: { allowedHosts: ['127.0.0.1:9'] } }), policy: gate });
    expect(codeOf(response)).toBe('ERR_POLICY_DENIED');
    const readSource = "return warden.fs.read('secrets/key.txt');";
    const read = await client.run({ ...toolCall(readSource, {}, { fs: { root: dir, read: true, write: false, list: false } }), policy: spec(['never read inside /workspace/secrets']) });
    expect(codeOf(read)).toBe('ERR_POLICY_DENIED');
  });
});

describe('table access from the statement\'s program', () => {
  it('sees tables behind views, triggers and foreign-key cascades', () => {
    const db = new Database(':memory:');
    db.exec(`
      CREATE TABLE items (id INTEGER PRIMARY KEY); CREATE TABLE audit (id INTEGER PRIMARY KEY);
      CREATE TABLE parent (id INTEGER PRIMARY KEY); CREATE TABLE child (id INTEGER PRIMARY KEY, p INTEGER REFERENCES parent(id) ON DELETE CASCADE);
      CREATE VIEW v AS SELECT * FROM items; CREATE TRIGGER t INSTEAD OF DELETE ON v BEGIN DELETE FROM audit; END;
      CREATE TRIGGER u AFTER UPDATE ON items BEGIN INSERT INTO audit (id) VALUES (NULL); END;`);
    db.pragma('foreign_keys = ON');
    const access = (sql: string) => {
      const a = tableAccessOf(db, sql, []);
      return { read: [...a.read].sort(), write: [...a.write].sort() };
    };
    expect(access('DELETE FROM v WHERE id = 1').write).toEqual(['audit']);
    expect(access('DELETE FROM parent WHERE id = 1').write).toEqual(['child', 'parent']);
    expect(access('UPDATE items SET id = id').write).toEqual(['audit', 'items']);
    expect(access('SELECT * FROM v')).toEqual({ read: ['items'], write: [] });
    expect(() => checkTableGrants('db', tableAccessOf(db, 'DELETE FROM v', []), { items: 'write', v: 'write' })).toThrow(/db\.audit is not granted for writing/);
    expect(() => checkTableGrants('db', tableAccessOf(db, 'SELECT * FROM sqlite_schema', []), { items: 'read' })).toThrow(/sqlite_schema/);
    db.close();
  });
});
