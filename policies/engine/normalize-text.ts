/**
 * Normal forms of argument text for rule conditions (`deny sql.exec when argument sql contains
 * "delete from items"`), applied the same way to the rule's text and to the argument, so a
 * condition cannot be dodged by spelling:
 *  - every argument: lower case, every run of whitespace one space, trimmed;
 *  - SQL statements (arguments named `sql`, `query`, `statement` or `stmt`): comments become
 *    spaces, identifier quotes ("x", `x`, [x]) are dropped, the `main.` schema qualifier is
 *    dropped, and spaces around punctuation are normalised, so `DELETE  FROM main."items"` and
 *    `delete /* x *\/ from items` both read `delete from items`.
 *
 * Text conditions stay a coarse tool; structured SQL rules (operation, tables, rows), decided on
 * what the broker measured, are the precise one (grammar.md).
 *
 * Pure: workflow code may import this file.
 */

const SQL_ARGUMENT_NAMES = new Set(['sql', 'query', 'statement', 'stmt']);

/** Whether the argument at `pointer` holds SQL (by its name: `/sql`, `/query`, `/statement`, `/stmt`). */
export function isSqlPointer(pointer: string): boolean {
  const last = pointer.split('/').pop() ?? '';
  return SQL_ARGUMENT_NAMES.has(last.toLowerCase());
}

function collapse(text: string): string {
  return text.toLowerCase().replace(/\s+/g, ' ').trim();
}

/** SQL text with comments as spaces, identifier quotes and `main.` dropped, spacing normalised. */
export function normalizeSql(sql: string): string {
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    const next = sql[i + 1];
    if (c === '-' && next === '-') {
      const end = sql.indexOf('\n', i);
      i = end === -1 ? sql.length : end + 1;
      out += ' ';
    } else if (c === '/' && next === '*') {
      const end = sql.indexOf('*/', i + 2);
      i = end === -1 ? sql.length : end + 2;
      out += ' ';
    } else if (c === "'") {
      // A string literal is kept as written (quotes included): it is data, not a name.
      let j = i + 1;
      while (j < sql.length && !(sql[j] === "'" && sql[j + 1] !== "'")) j += sql[j] === "'" ? 2 : 1;
      out += sql.slice(i, j + 1);
      i = j + 1;
    } else if (c === '"' || c === '`' || c === '[') {
      const close = c === '[' ? ']' : c;
      let j = i + 1;
      let name = '';
      while (j < sql.length) {
        if (sql[j] === close && sql[j + 1] === close && close !== ']') {
          name += close;
          j += 2;
        } else if (sql[j] === close) break;
        else name += sql[j++];
      }
      out += name;
      i = j + 1;
    } else {
      out += c;
      i += 1;
    }
  }
  return collapse(out)
    .replace(/\s*([(),;=<>])\s*/g, '$1')
    .replace(/([(),;=<>])/g, ' $1 ')
    .replace(/\s+/g, ' ')
    .replace(/(^|[^a-z0-9_$])main\s*\.\s*/g, '$1')
    .trim();
}

/** The normal form of an argument's text (or of a condition's text for that argument). */
export function normalizeArgText(text: string, pointer: string): string {
  return isSqlPointer(pointer) ? normalizeSql(text) : collapse(text);
}
