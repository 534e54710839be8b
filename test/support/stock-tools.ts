/**
 * A shop's `reserve` and its compensating tool `release`, for tests of what recovery runs for a
 * call: `reserve` takes `qty` of an item out of the `stock` table of database `shop` (or, with
 * `purge`, deletes every row of `shelf`); `release` puts 100 back, its own arithmetic, so a release
 * that ran for a reserve that never ran shows as stock 1 -> 101.
 */

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
