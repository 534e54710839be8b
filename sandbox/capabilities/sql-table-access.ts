/**
 * Which tables a statement reads and writes, read from its compiled program (`EXPLAIN`), and the
 * table grants checked against it: SQLite's authorizer, done from the bytecode (better-sqlite3
 * exposes no `sqlite3_set_authorizer`).
 *
 * The program of a statement lists every b-tree it can open, including the programs of the
 * triggers and foreign-key actions it can set off (EXPLAIN shows them after the main program)
 * and the tables behind the views it names, so a view's trigger that empties another table, or a
 * cascade into a child table, is seen before anything runs. The analysis is static: a trigger
 * that might fire counts as touching what it touches (stricter, never looser).
 *
 * Invariant: with table grants for a database, a statement runs only if every table it can read
 * is granted (read or write) and every table it can write is granted for writing; a statement
 * that opens a virtual table, or SQLite's own schema table, is refused, because neither can be
 * checked table by table.
 */
import type Database from 'better-sqlite3';
import { capabilityError } from './capability-error';

export interface TableAccess {
  /** Tables (lower-case) the statement can read. */
  read: Set<string>;
  /** Tables (lower-case) the statement can change. */
  write: Set<string>;
  /** It opens a virtual table (whose name the program does not give). */
  virtual: boolean;
}

interface Instruction {
  addr: number;
  opcode: string;
  p1: number;
  p2: number;
  p3: number;
  p5: number;
}

/** Every table `sql` can read or write, with its triggers' and cascades' programs. */
export function tableAccessOf(db: Database.Database, sql: string, bindings: readonly unknown[]): TableAccess {
  const program = db.prepare(`EXPLAIN ${sql}`).all(...bindings) as Instruction[];
  const byRoot = new Map<number, string>();
  for (const row of db.prepare('SELECT tbl_name, rootpage FROM main.sqlite_schema WHERE rootpage > 0').all() as { tbl_name: string; rootpage: number }[]) {
    byRoot.set(row.rootpage, row.tbl_name.toLowerCase());
  }
  byRoot.set(1, 'sqlite_schema');
  const access: TableAccess = { read: new Set(), write: new Set(), virtual: false };
  for (const op of program) {
    let root: number | undefined;
    let writes = false;
    switch (op.opcode) {
      case 'OpenRead':
      case 'ReopenIdx':
        // P3 = database (0: main); P5 & 0x10 (OPFLAG_P2ISREG) marks a register root (schema changes only).
        if (op.p3 === 0 && (op.p5 & 0x10) === 0) root = op.p2;
        break;
      case 'OpenWrite':
        if (op.p3 === 0 && (op.p5 & 0x10) === 0) {
          root = op.p2;
          writes = true;
        }
        break;
      case 'Clear':
        if (op.p2 === 0) {
          root = op.p1;
          writes = true;
        }
        break;
      case 'VOpen':
      case 'VUpdate':
      case 'VFilter':
        access.virtual = true;
        break;
      default:
        break;
    }
    if (root === undefined) continue;
    const table = byRoot.get(root);
    if (table === undefined) continue;
    (writes ? access.write : access.read).add(table);
  }
  return access;
}

/** Tables of one database and what each is granted for. */
export type TableGrants = Readonly<Record<string, 'read' | 'write'>>;

/** Throws ERR_SQL_DENIED naming the first table `access` touches beyond `granted`. */
export function checkTableGrants(database: string, access: TableAccess, granted: TableGrants): void {
  if (access.virtual) throw capabilityError('ERR_SQL_DENIED', `database ${database} is granted table by table, and this statement opens a virtual table that cannot be checked`, { database });
  for (const table of access.write) {
    if (granted[table] !== 'write') {
      throw capabilityError('ERR_SQL_DENIED', `table ${database}.${table} is not granted for writing (the statement, its triggers or cascades would change it)`, { database, table });
    }
  }
  for (const table of access.read) {
    if (granted[table] === undefined) throw capabilityError('ERR_SQL_DENIED', `table ${database}.${table} is not granted (the statement, a view or a trigger would read it)`, { database, table });
  }
}
