/**
 * What tests that run tasks share: a workspace with an empty SQLite `notes` table, waiting on a
 * task's state query (events, not wall-clock guesses), and a registered approver with a CLI that
 * signs as that approver.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { beforeAll, expect } from 'vitest';
import { approversCommand } from '../../cli/commands/approvers';
import type { CliIo } from '../../cli/cli-io';
import type { TaskState } from '../../task/task-run';
import { taskStateQuery } from '../../workflows/definitions';
import { testTemporalAddress } from './temporal';
import { TEST_STATE_DIR } from './warden-test-env';

export interface NotesWorkspace {
  workspace: string;
  /** `app.db` in the workspace, with `notes (id, body)` and no rows. */
  dbFile: string;
  /** How many rows `notes` holds now. */
  rows(): number;
}

/** A fresh temporary workspace (named `<prefix>…`) holding `app.db` with an empty `notes` table. */
export async function makeNotesWorkspace(prefix: string): Promise<NotesWorkspace> {
  const workspace = await mkdtemp(join(tmpdir(), prefix));
  const dbFile = join(workspace, 'app.db');
  const db = new Database(dbFile);
  db.exec('CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)');
  db.close();
  const rows = () => {
    const d = new Database(dbFile, { readonly: true });
    try {
      return (d.prepare('SELECT count(*) AS n FROM notes').get() as { n: number }).n;
    } finally {
      d.close();
    }
  };
  return { workspace, dbFile, rows };
}

/**
 * Polls the task's state query every 50 ms until `predicate` holds; a query that fails (no worker
 * answering yet) is retried. Throws after `tries` polls.
 */
export async function waitForTaskState(handle: { query: (q: typeof taskStateQuery) => Promise<TaskState> }, predicate: (s: TaskState) => boolean, tries = 1200): Promise<void> {
  for (let i = 0; i < tries; i++) {
    try {
      if (predicate(await handle.query(taskStateQuery))) return;
    } catch {
      // not answering yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('the task never reached the expected state');
}

export interface TestApprover {
  /** `<prefix>-<8 hex>`: unique per run, since the test registry outlives runs. */
  readonly name: string;
  /** `warden approvers add <name>` into a temporary key file; fails the test when it does not exit 0. Call it in `beforeAll`. */
  register(): Promise<void>;
  /** IO for a CLI command on the test state folder and Temporal server, signing as the approver once registered. */
  cli(): { io: CliIo; out: string[] };
}

/** A test approver registered in a `beforeAll` of the calling file (after the hooks declared before this call). */
export function registeredApprover(prefix: string): TestApprover {
  const approver = testApprover(prefix);
  beforeAll(() => approver.register());
  return approver;
}

export function testApprover(prefix: string): TestApprover {
  const name = `${prefix}-${randomUUID().slice(0, 8)}`;
  let keyFile: string | undefined;
  const cli = (): { io: CliIo; out: string[] } => {
    const out: string[] = [];
    const port = testTemporalAddress().address.split(':').pop();
    const env = { ...process.env, WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: port, ...(keyFile === undefined ? {} : { WARDEN_APPROVER_KEY: keyFile }) };
    return { out, io: { stdout: (t) => out.push(t), stderr: (t) => out.push(t), env } };
  };
  return {
    name,
    cli,
    async register() {
      const file = join(await mkdtemp(join(tmpdir(), 'warden-approver-')), `${name}.json`);
      keyFile = file;
      const add = cli();
      expect(await approversCommand(['add', name, '--out', file], add.io), add.out.join('')).toBe(0);
    },
  };
}
