/**
 * A query's output is the user's table data only when every result column is a plain column of a
 * table it reads, under its own name (sql-result-origin.ts; issue 10, literals SELECTed from a
 * trusted table). Each row: a statement, and whether its values were read as-is from tables.
 */
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { columnsReadFromTables } from '../../sandbox/capabilities/sql-result-origin';
import { tableAccessOf } from '../../sandbox/capabilities/sql-table-access';

let db: Database.Database;
beforeAll(() => {
  db = new Database(':memory:');
  db.exec(`CREATE TABLE sales (id INTEGER PRIMARY KEY, region TEXT, amount REAL, memo TEXT);
    CREATE TABLE payees (name TEXT, iban TEXT);
    CREATE VIEW big AS SELECT region, amount FROM sales WHERE amount > 100;`);
});
afterAll(() => db.close());

const IBAN = 'GB82WEST12345698765432';
const cases: [string, boolean][] = [
  // Plain columns, as-is: the table's data.
  ['SELECT region, amount FROM sales', true],
  ['SELECT * FROM sales', true],
  ['SELECT s.region FROM sales s WHERE s.amount > ? ORDER BY s.id LIMIT 5', true],
  ['SELECT DISTINCT region FROM sales', true],
  ['SELECT p.name, p.iban, s.amount FROM payees p JOIN sales s ON s.memo = p.name', true],
  ['SELECT region AS REGION FROM sales', true],
  ['SELECT (region) FROM sales', true],
  ['SELECT region, amount FROM big', true],
  ['WITH r AS (SELECT region FROM sales) SELECT region FROM r', true],
  ["SELECT iban FROM payees WHERE name = 'union'", true],
  // Computed by the query's text: the agent's values.
  [`SELECT '${IBAN}' AS iban, 95 AS amount FROM sales`, false],
  [`SELECT region, sum(amount) AS total, '${IBAN}' AS iban, 95 AS amount FROM sales GROUP BY region`, false],
  ['SELECT region, sum(amount) AS total FROM sales GROUP BY region', false],
  ['SELECT count(*) AS amount FROM sales WHERE id < 96', false],
  ['SELECT max(amount) FROM sales', false],
  ['SELECT ? AS iban FROM sales', false],
  ['SELECT amount + 0 AS amount FROM sales', false],
  ['SELECT +amount FROM sales', false],
  ["SELECT region || '' AS region FROM sales", false],
  ["SELECT CASE WHEN 1 THEN 'x' ELSE region END AS region FROM sales", false],
  [`SELECT (SELECT '${IBAN}') AS iban FROM sales`, false],
  ['SELECT region COLLATE nocase FROM sales', false],
  [`SELECT iban FROM (SELECT '${IBAN}' AS iban FROM sales)`, false],
  [`WITH c AS (SELECT '${IBAN}' AS iban FROM sales) SELECT iban FROM c`, false],
  // Compound selects and VALUES: SQLite reads a column's origin from one arm only.
  [`SELECT iban FROM payees UNION SELECT '${IBAN}'`, false],
  [`SELECT iban FROM payees UNION ALL SELECT memo FROM sales`, false],
  [`SELECT iban FROM (SELECT '${IBAN}' AS iban UNION ALL SELECT iban FROM payees)`, false],
  ['SELECT iban FROM payees INTERSECT SELECT iban FROM payees', false],
  ['SELECT iban FROM payees EXCEPT SELECT memo FROM sales', false],
  [`SELECT iban FROM payees /* x */ UNION/**/SELECT '${IBAN}'`, false],
  [`WITH v(iban) AS (VALUES ('${IBAN}')) SELECT p.iban FROM payees p, v`, false],
  // Renamed: a value moved under a key of another kind.
  ['SELECT memo AS iban FROM sales', false],
  ['SELECT region AS payee FROM sales', false],
  // Rows the text supplies through a virtual table.
  [`SELECT j.value FROM sales, json_each('["${IBAN}"]') j`, false],
  [`SELECT s.region FROM sales s, json_each('[1]') j`, false],
  // No table at all.
  [`SELECT '${IBAN}' AS iban`, false],
];

describe('columnsReadFromTables', () => {
  it.each(cases)('%s → %s', (sql, expected) => {
    const statement = db.prepare(sql);
    const params = sql.includes('?') ? [1] : [];
    const access = tableAccessOf(db, sql, params);
    expect(columnsReadFromTables(statement, sql, access)).toBe(expected);
  });
});
