/** `warden db migrate|status`: the versioned schema of the state database (state/migrations.ts). */
import { WardenError } from '../../errors';
import { migrate, schemaStatus, type SchemaStatus } from '../../state/migrations';
import { openStateDatabase, stateStoreConfigOf } from '../../state/state-store';
import { stateDirOf } from '../../state-dir';
import type { CliIo } from '../cli-io';
import { EXIT } from '../exit-codes';
import { argumentCountText, parseCommandArgs } from '../parse-command-args';
import { terminalJson, terminalLine, terminalLines } from '../../terminal-text';

export const DB_USAGE = `usage: warden db migrate [--json]
       warden db status [--json]

  The state database workers share: PostgreSQL at WARDEN_DATABASE_URL, else SQLite
  <state folder>/state.db.
  migrate  apply every pending schema migration, in one transaction (safe to run again, and from
           several machines at once); refuses a database migrated by a newer Warden (exit 1)
  status   the schema version of the database and of this Warden; exit 0 when they match,
           1 when migrations are pending or the database is newer than this Warden`;

function describeStatus(status: SchemaStatus): string {
  const lines = [`state database ${status.database} (${status.dialect}): schema version ${status.current}, this Warden knows ${status.latest}`];
  for (const a of status.applied) lines.push(`  applied  ${a.version}  ${a.name}  (${a.appliedAt})`);
  for (const p of status.pending) lines.push(`  pending  ${p.version}  ${p.name}`);
  if (status.unknown.length > 0) lines.push(`  unknown to this Warden: ${status.unknown.join(', ')} (upgrade Warden here)`);
  if (status.altered.length > 0) lines.push(`  applied with different SQL than this Warden's: ${status.altered.join(', ')}`);
  if (status.pending.length > 0) lines.push('  run `warden db migrate`');
  return `${lines.map(terminalLine).join('\n')}\n`;
}

function current(status: SchemaStatus): boolean {
  return status.pending.length === 0 && status.unknown.length === 0 && status.altered.length === 0;
}

export async function dbCommand(argv: string[], io: CliIo): Promise<number> {
  const args = parseCommandArgs('db', DB_USAGE, argv, io, { json: { type: 'boolean' } });
  if (typeof args === 'number') return args;
  const [action, ...rest] = args.positionals;
  if ((action !== 'migrate' && action !== 'status') || rest.length > 0) {
    io.stderr(`${terminalLine(`warden db: ${action === undefined ? 'expected migrate or status' : action !== 'migrate' && action !== 'status' ? `unknown action "${action}"` : argumentCountText(action, 0, rest)}`)}\n${DB_USAGE}\n`);
    return EXIT.usage;
  }
  const json = args.values.json === true;
  let config;
  try {
    config = stateStoreConfigOf(stateDirOf(io.env), io.env);
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden db: ${error.code}: ${terminalLines(error.message)}\n`);
      return EXIT.usage;
    }
    throw error;
  }
  const db = openStateDatabase(config);
  try {
    if (action === 'migrate') {
      const result = await migrate(db);
      const status = await schemaStatus(db);
      if (json) io.stdout(`${terminalJson({ ...result, status }, 2)}\n`);
      else if (result.applied.length === 0) io.stdout(`${terminalLine(`state database ${status.database}: already at schema version ${status.current}`)}\n`);
      else io.stdout(`${terminalLine(`state database ${status.database}: migrated ${result.from} -> ${result.to} (${result.applied.map((m) => `${m.version} ${m.name}`).join('; ')})`)}\n`);
      return EXIT.ok;
    }
    const status = await schemaStatus(db);
    io.stdout(json ? `${terminalJson(status, 2)}\n` : describeStatus(status));
    return current(status) ? EXIT.ok : EXIT.failed;
  } catch (error) {
    if (error instanceof WardenError) {
      io.stderr(`warden db: ${error.code}: ${terminalLines(error.message)}\n`);
      return EXIT.failed;
    }
    throw error;
  } finally {
    await db.close();
  }
}
