/**
 * Whether every value a query returns was read as-is from a column of a table it reads: the test
 * that lets a query on the user's trusted tables count as trusted output (activities/run-tool.ts
 * `outputTrustOf`, issue 10). A query's text is the agent's, so anything it computes, a literal
 * (`SELECT 'GB82…' AS iban FROM sales`), a parameter, an expression, a function or aggregate
 * (`count(*)` under a `WHERE` picks any number), a `CASE`, a scalar subquery, is the agent's
 * value, not the user's data.
 *
 * Read from SQLite's own column metadata (`sqlite3_column_table_name` / `_origin_name`, which
 * better-sqlite3 exposes as `Statement#columns()`): a result column has an origin only when it is
 * a plain column reference, followed through views, CTEs and subqueries in FROM. Not followed by
 * SQLite, so refused here: compound selects (`UNION`, `INTERSECT`, `EXCEPT`, whose origin is read
 * from one arm only) and `VALUES`, anywhere in the text; a column renamed to another name
 * (`SELECT memo AS iban`), which moves a value under a key of another kind; columns of virtual
 * tables (`json_each('[…]')`, whose rows the text supplies). Fail closed: any doubt gives false.
 */
import type Database from 'better-sqlite3';
import type { TableAccess } from './sql-table-access';

/** Keywords that combine rows from other selects or from the text itself. */
const ROW_SOURCES_FROM_TEXT = /\b(union|intersect|except|values)\b/i;

/** True when every result column of `statement` is a column of a (non-virtual) table in `access.read`, under its own name. */
export function columnsReadFromTables(statement: Database.Statement<unknown[]>, sql: string, access: TableAccess): boolean {
  if (access.virtual) return false;
  if (ROW_SOURCES_FROM_TEXT.test(withoutLiterals(sql))) return false;
  let columns: Database.ColumnDefinition[];
  try {
    columns = statement.columns();
  } catch {
    return false;
  }
  if (columns.length === 0) return false;
  return columns.every(
    (c) =>
      c.column !== null &&
      c.table !== null &&
      c.database === 'main' &&
      access.read.has(c.table.toLowerCase()) &&
      c.name.toLowerCase() === c.column.toLowerCase(),
  );
}

/** `sql` with string literals, quoted identifiers and comments blanked, so keywords inside them do not count. */
function withoutLiterals(sql: string): string {
  return sql.replace(/'(?:[^']|'')*'|"(?:[^"]|"")*"|`[^`]*`|\[[^\]]*\]|--[^\n]*|\/\*[\s\S]*?(?:\*\/|$)/g, ' ');
}
