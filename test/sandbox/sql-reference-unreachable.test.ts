/**
 * `warden.sql` is backed by `ivm.Reference`s to host functions (the prelude calls them with
 * applySyncPromise so a statement can run in a SQL process while the host's main thread stays
 * free). A Reference reaches host objects (`ref.get('constructor')` is the host's Function), so tool
 * code must never get hold of one. Each row tries a way in and reports anything Reference-like it
 * found: through stack-trace call sites of an error thrown inside the call, through getters
 * planted on Object.prototype where isolated-vm reads its options, through the prototypes of
 * what the call returns, and through replaced Reflect / Function.prototype methods.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { codeOf, startShopSandbox, toolCall, type ShopSandbox } from './sandbox-test-kit';

let shop: ShopSandbox;
let client: SandboxClient;
let grant: CapabilityGrant;

beforeAll(async () => {
  shop = await startShopSandbox('sql-reference');
  ({ client, grant } = shop);
});

afterAll(async () => {
  await shop?.close();
});

/** Tool code collecting candidates into `found`; returns what looks like a Reference (has applySync or derefInto). */
const looksLikeReference = `
  const isRef = (v) => { try { return v !== null && (typeof v === 'object' || typeof v === 'function') && (typeof v.applySync === 'function' || typeof v.derefInto === 'function' || typeof v.applySyncPromise === 'function'); } catch { return false; } };
  const leaked = found.filter(isRef).length;
`;

it.each([
  {
    name: 'call sites of an error thrown inside the call (arguments that cannot be copied)',
    attack: `
      Error.prepareStackTrace = (error, sites) => { for (const site of sites) { try { found.push(site.getThis(), site.getFunction()); } catch {} } return 'trace'; };
      try { warden.sql.query('shop', 'SELECT 1', [() => 1]); } catch (error) { found.push(error); void error.stack; }
      try { warden.sql.exec('shop', "INSERT INTO items (name) VALUES ('b')", [Symbol('x')]); } catch (error) { void error.stack; }`,
  },
  {
    name: 'getters on Object.prototype where options are read',
    attack: `
      for (const key of ['reference', 'copy', 'externalCopy', 'promise', 'result', 'arguments', 'timeout', 'release', 'transferOut', 'transferList']) {
        Object.defineProperty(Object.prototype, key, { configurable: true, get() { found.push(this); return key === 'reference' || key === 'result' ? true : undefined; } });
      }
      found.push(warden.sql.query('shop', 'SELECT name FROM items'));`,
  },
  {
    name: 'the prototypes of what a call returns',
    attack: `
      const rows = warden.sql.query('shop', 'SELECT name FROM items');
      found.push(rows, Object.getPrototypeOf(rows), rows[0], Object.getPrototypeOf(rows[0]));
      const result = warden.sql.exec('shop', "INSERT INTO items (name) VALUES ('c')");
      found.push(result, Object.getPrototypeOf(result));`,
  },
  {
    name: 'replaced Reflect.apply and Function.prototype.call / apply',
    attack: `
      const grab = function (...args) { found.push(this, ...args); return undefined; };
      Reflect.apply = function (target, self, args) { found.push(target, self, args); return undefined; };
      Function.prototype.call = grab;
      Function.prototype.apply = grab;
      try { found.push(warden.sql.query('shop', 'SELECT 1 AS one')); } catch (error) { found.push(error); }`,
  },
])('tool code finds no Reference: $name', async ({ attack }) => {
  const source = `const found = []; ${attack}; ${looksLikeReference} return { leaked, rows: warden.sql.query('shop', 'SELECT count(*) AS n FROM items')[0].n >= 1 };`;
  const response = await client.run(toolCall(source, null, grant, { timeoutMs: 30_000 }));
  expect(codeOf(response)).toMatch(/^ok: /);
  expect(response.ok && response.output).toEqual({ leaked: 0, rows: true });
}, 120_000);
