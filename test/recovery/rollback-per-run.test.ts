/**
 * Attack on "keys name the run" (issue 9 item 6, its kind), for recovery after the fact: the SQL
 * undo journal is kept per root workflow id, so under a reused `--workflow-id` it holds every
 * run's statements. `warden rollback <workflowId>` then undoes the earlier, completed run's
 * changes together with the latest run's, without saying so.
 *
 * Expected: a rollback names one run (the latest, or one chosen) and undoes only its calls, or
 * refuses as ambiguous; an earlier completed run's rows stay as it left them.
 *
 * Held now: each run's records sit under its own key (workflow id + the root's first run id);
 * `warden rollback <id>` refuses as ambiguous (exit 2, listing the runs) and `--run <runId>`
 * undoes exactly that run.
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rollbackCommand } from '../../cli/commands/rollback';
import type { CliIo } from '../../cli/cli-io';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;
let dbFile: string;

beforeAll(async () => {
  env = await startWardenTestEnv();
  dbFile = join(mkdtempSync(join(tmpdir(), 'warden-attack-rollback-')), 'items.db');
  const db = new Database(dbFile);
  db.exec("CREATE TABLE items (id INTEGER PRIMARY KEY, label TEXT); INSERT INTO items (label) VALUES ('a'), ('b')");
  db.close();
});
afterAll(async () => env?.close());

const labels = () => {
  const db = new Database(dbFile, { readonly: true });
  try {
    return (db.prepare('SELECT label FROM items ORDER BY id').all() as { label: string }[]).map((r) => r.label);
  } finally {
    db.close();
  }
};

const run = (workflowId: string, id: number, label: string) =>
  env.runTask(
    {
      user: 'alice@example.com',
      intent: `label item ${id}`,
      agent: { name: 'labeller', model: { driver: 'scripted', script: [{ tool: 'sql.exec', args: { database: 'items', sql: 'UPDATE items SET label = ? WHERE id = ?', params: [label, id] } }, { final: 'done' }] } },
      tools: { builtin: ['sql.exec'] },
      grants: { tools: ['sql.exec'], databases: ['items'] },
      resources: { databases: { items: dbFile } },
    },
    { workflowId },
  );

describe('rollback of a workflow id used by two runs', () => {
  let code: number;
  let out: string;
  let secondRunId: string;
  let runCode: number;
  let runOut: string;
  let jsonCode: number;
  let jsonOut: string;

  beforeAll(async () => {
    const workflowId = `attack-rollback-${randomUUID()}`;
    expect((await run(workflowId, 1, 'first-run')).status).toBe('completed');
    expect((await run(workflowId, 2, 'second-run')).status).toBe('completed');
    expect(labels()).toEqual(['first-run', 'second-run']);
    const io: CliIo & { text: string } = {
      text: '',
      stdout: (t) => void (io.text += t),
      stderr: (t) => void (io.text += t),
      env: { WARDEN_STATE_DIR: TEST_STATE_DIR },
    };
    code = await rollbackCommand([workflowId], io);
    out = io.text;
    const json = { stdout: '', stderr: '' };
    jsonCode = await rollbackCommand([workflowId, '--json'], { stdout: (t) => void (json.stdout += t), stderr: (t) => void (json.stderr += t), env: io.env });
    jsonOut = json.stdout;
    secondRunId = (await env.client.workflow.getHandle(workflowId).describe()).runId;
    const chosen: CliIo & { text: string } = { ...io, text: '', stdout: (t) => void (chosen.text += t), stderr: (t) => void (chosen.text += t) };
    runCode = await rollbackCommand([workflowId, '--run', secondRunId], chosen);
    runOut = chosen.text;
  });

  it('refuses the ambiguous id, naming the runs and --run, and changes nothing', () => {
    expect(code, out).toBe(2);
    expect(out).toMatch(/--run/);
    expect(out).toContain(secondRunId);
  });

  it('with --json, the refusal is also one object on stdout naming the error and the runs (cli/command-error.ts)', () => {
    expect(jsonCode, jsonOut).toBe(2);
    const object = JSON.parse(jsonOut) as { runs: string[]; error: { code: string; message: string } };
    expect(object.error.code).toBe('ERR_TASK_RUN_AMBIGUOUS');
    expect(object.error.message).toMatch(/name one with --run <runId> \(nothing was rolled back\)/);
    expect(object.runs).toHaveLength(2);
    expect(object.runs).toContain(secondRunId);
  });

  it('with --run undoes exactly that run', () => {
    expect(runCode, runOut).toBe(0);
    expect(labels()).toEqual(['first-run', 'b']);
  });

  it("leaves the earlier run's completed change alone", () => {
    // Either it refused (ambiguous) or it undid the second run only.
    const [first] = labels();
    expect(first, `rollback exited ${code}: ${out}`).toBe('first-run');
  });
});
