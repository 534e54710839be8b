/**
 * `warden snapshots --json` and `warden rollback --json` read by a script: when they fail, stdout
 * holds one JSON object naming the error, `{ workflowId, error: { code, message } }` (the shape of
 * a step's error in `warden run --json`, and of the console API's errors), next to the usual line
 * on stderr, with the same exit code. They used to print nothing on stdout (the error only on
 * stderr), so a script parsing stdout got an empty string (cli/command-error.ts).
 *
 * Each row is a way the commands fail after reading their arguments: an id this state folder
 * recorded nothing for, a run of it that never was, and a shared state database that cannot be
 * reached (a WardenError from the store). Real parts: the commands, a fresh state folder, a TCP
 * port nothing listens on.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { CliIo } from '../../cli/cli-io';
import { main } from '../../cli/main';

let stateDir: string;
/** A loopback port that was free a moment ago: a connection to it is refused. */
let closedPort: number;

beforeAll(async () => {
  stateDir = mkdtempSync(join(tmpdir(), 'warden-json-errors-'));
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closedPort = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function cli(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = { stdout: '', stderr: '' };
  const io: CliIo = { stdout: (t) => void (out.stdout += t), stderr: (t) => void (out.stderr += t), env: { PATH: process.env.PATH, HOME: process.env.HOME, WARDEN_STATE_DIR: stateDir, ...env } };
  const code = await main(argv, io);
  return { code, ...out };
}

interface Row {
  name: string;
  argv: (command: string, workflowId: string) => string[];
  env?: () => Record<string, string>;
  commands: string[];
  code: string;
  /** What the object names besides the error. */
  context: (workflowId: string) => Record<string, string>;
}

const ROWS: Row[] = [
  {
    name: 'an id this state folder recorded nothing for',
    argv: (command, id) => [command, id, '--json'],
    commands: ['snapshots', 'rollback'],
    code: 'ERR_TASK_RECORDS_NOT_FOUND',
    context: (id) => ({ workflowId: id }),
  },
  {
    name: 'a run of the id that never was',
    argv: (command, id) => [command, id, '--run', 'no-such-run', '--json'],
    commands: ['rollback'],
    code: 'ERR_TASK_RECORDS_NOT_FOUND',
    context: (id) => ({ workflowId: id, runId: 'no-such-run' }),
  },
  {
    name: 'a shared state database that cannot be reached',
    argv: (command, id) => [command, id, '--json'],
    env: () => ({ WARDEN_DATABASE_URL: `postgres://warden:secret@127.0.0.1:${closedPort}/warden` }),
    commands: ['snapshots', 'rollback'],
    code: 'ERR_STATE_UNAVAILABLE',
    context: (id) => ({ workflowId: id }),
  },
];

describe.each(ROWS.flatMap((row) => row.commands.map((command) => [command, row] as const)))('warden %s --json: %s', (command, row) => {
  it(`${row.name}: one JSON object on stdout naming the error, the line on stderr, exit 1`, async () => {
    const workflowId = `unknown-${randomUUID()}`;
    const { code, stdout, stderr } = await cli(row.argv(command, workflowId), row.env?.());
    expect(code, stderr).toBe(1);
    expect(stdout.endsWith('\n') && stdout.trimEnd().split('\n')).toHaveLength(1);
    const object = JSON.parse(stdout) as { error: { code: string; message: string } };
    expect(object).toEqual({ ...row.context(workflowId), error: { code: row.code, message: expect.any(String) } });
    // The same error as the line on stderr says, word for word.
    expect(stderr).toBe(`warden ${command}: ${row.code}: ${object.error.message}\n`);
    expect(object.error.message).not.toContain('secret');
  });

  it(`${row.name}: without --json, stdout stays empty`, async () => {
    const { code, stdout, stderr } = await cli(row.argv(command, `unknown-${randomUUID()}`).filter((arg) => arg !== '--json'), row.env?.());
    expect(code, stderr).toBe(1);
    expect(stdout).toBe('');
    expect(stderr).toMatch(new RegExp(`^warden ${command}: ${row.code}: `));
  });
});
