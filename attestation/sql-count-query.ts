/**
 * The read-only query behind a `sql.count` claim. The claim names a table and a structured
 * condition; identifiers are validated by the claim schema and quoted here, values travel as
 * parameters, so nothing the agent wrote becomes SQL text.
 */
import type { SqlCondition } from './claim-schema';

export interface CountQuery {
  sql: string;
  params: Array<string | number | null>;
}

/** `"name"` with embedded quotes doubled (SQLite and PostgreSQL identifier quoting). */
export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function param(value: string | number | boolean | null): string | number | null {
  return typeof value === 'boolean' ? (value ? 1 : 0) : value;
}

const OPERATORS = { eq: '=', ne: '<>', lt: '<', lte: '<=', gt: '>', gte: '>=', like: 'LIKE' } as const;

/** `SELECT count(*) AS n FROM "table" WHERE …` for one claim's table and condition. */
export function compileCountQuery(table: string, where: SqlCondition): CountQuery {
  const clauses: string[] = [];
  const params: CountQuery['params'] = [];
  for (const [column, condition] of Object.entries(where)) {
    const col = quoteIdentifier(column);
    if (condition === null) {
      clauses.push(`${col} IS NULL`);
    } else if (typeof condition !== 'object') {
      clauses.push(`${col} = ?`);
      params.push(param(condition));
    } else {
      const [op, value] = Object.entries(condition)[0] as [keyof typeof OPERATORS | 'in', unknown];
      if (op === 'in') {
        const values = value as Array<string | number | boolean | null>;
        if (values.length === 0) {
          clauses.push('0 = 1');
        } else {
          clauses.push(`${col} IN (${values.map(() => '?').join(', ')})`);
          params.push(...values.map(param));
        }
      } else if (value === null && (op === 'eq' || op === 'ne')) {
        clauses.push(`${col} IS ${op === 'eq' ? '' : 'NOT '}NULL`);
      } else {
        clauses.push(`${col} ${OPERATORS[op]} ?`);
        params.push(param(value as string | number | boolean | null));
      }
    }
  }
  const whereSql = clauses.length === 0 ? '' : ` WHERE ${clauses.join(' AND ')}`;
  return { sql: `SELECT count(*) AS n FROM ${quoteIdentifier(table)}${whereSql}`, params };
}
