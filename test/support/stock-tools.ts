/**
 * A shop's `reserve` and its compensating tool `release`, for tests of what recovery runs for a
 * call: `reserve` takes `qty` of an item out of the `stock` table of database `shop` (or, with
 * `purge`, deletes every row of `shelf`); `release` puts 100 back, its own arithmetic, so a release
 * that ran for a reserve that never ran shows as stock 1 -> 101. `openStockShop` sets up a task
 * with both on a fresh shop.
 */

import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { LocalCredentialStores } from '../../identity/credential-stores';
import { hashIntent } from '../../identity/intent-hash';
import type { Keystore } from '../../identity/keystore';
import { issueTaskGrant, type IssuedGrant } from '../../identity/task-grant';
import { parseTask } from '../../task/load-task-file';
import type { Task } from '../../task/task-schema';

/** The two custom tools (sql.exec on `shop`), as a task file declares them under `tools.custom`. */
export const STOCK_TOOLS = [
  {
    name: 'reserve',
    description: 'takes qty of an item out of stock',
    input: {
      type: 'object',
      properties: { item: { type: 'string' }, qty: { type: 'integer', minimum: 1 }, purge: { type: 'boolean' } },
      required: ['item', 'qty'],
      additionalProperties: false,
    },
    capabilities: ['sql.exec'],
    compensate: 'release',
    source:
      "if (input.purge) return warden.sql.exec('shop', 'DELETE FROM shelf'); return warden.sql.exec('shop', 'UPDATE stock SET qty = qty - ? WHERE item = ?', [input.qty, input.item]);",
  },
  {
    name: 'release',
    description: 'puts a reservation back in stock',
    capabilities: ['sql.exec'],
    source: "return warden.sql.exec('shop', 'UPDATE stock SET qty = qty + 100 WHERE item = ?', [input.original.args.item]);",
  },
];

/** A task of `workflowId` with `reserve` and `release` on a fresh `shop` (tea: 1), its saved grant, and the tea's stock. */
export interface StockShop {
  task: Task;
  grant: IssuedGrant;
  /** The shop's SQLite file. */
  dbFile: string;
  /** The tea's quantity now. */
  stockQty(): number;
}

/** Sets up a `StockShop` in `stateDir`, whose keystore and credential stores are given. */
export async function openStockShop(stateDir: string, workflowId: string, keystore: Keystore, stores: LocalCredentialStores): Promise<StockShop> {
  const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-stock-shop-ws-'));
  const dbFile = path.join(workspace, 'shop.db');
  const db = new Database(dbFile);
  db.exec("CREATE TABLE stock (item TEXT PRIMARY KEY, qty INTEGER); INSERT INTO stock VALUES ('tea', 1);");
  db.close();
  const task = parseTask(
    {
      user: 'erin@example.com',
      intent: 'reserve tea',
      agent: { name: 'clerk', model: { driver: 'scripted', script: [{ final: 'done' }] } },
      tools: { builtin: ['sql.exec'], custom: STOCK_TOOLS },
      grants: { tools: ['reserve', 'release', 'sql.exec'], databases: ['shop'] },
      resources: { workspace, databases: { shop: dbFile } },
    },
    'clerk.yaml',
    stateDir,
  );
  const grant = await issueTaskGrant(keystore, {
    workflowId,
    user: 'erin@example.com',
    intentHash: hashIntent('reserve tea'),
    agent: { name: 'clerk', model: { id: 'scripted', version: '1' } },
    grants: { tools: ['reserve', 'release', 'sql.exec'], subagents: [], hosts: [], databases: ['shop'] },
    limits: { maxSteps: 10, toolTimeoutMs: 5000, toolMemoryMb: 64 },
    expiresAt: Date.now() + 10 * 60_000,
  });
  stores.grants.saveGrant(grant);
  const stockQty = (): number => {
    const read = new Database(dbFile, { readonly: true });
    try {
      return (read.prepare("SELECT qty FROM stock WHERE item = 'tea'").get() as { qty: number }).qty;
    } finally {
      read.close();
    }
  };
  return { task, grant, dbFile, stockQty };
}
