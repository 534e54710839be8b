/**
 * Open finding (s13, atk13): a tool's error text starts lines of its own choosing in a standalone
 * worker's log.
 *
 * terminal-text.ts's invariant: others' text "never ... starts a line of its own" (a forged log
 * entry). worker/worker-log-filters.ts keeps it for a refusal and a task's end (one line each), but
 * an "Activity failed" entry that is no refusal (ERR_TOOL_THREW, an SQL error, a crash...) is kept
 * whole: `terminalLines` escapes controls per line and keeps every line break, and
 * `inspect(meta)` prints the failure's stack, which starts with its message, raw. So the agent's
 * own argument reaches the log as lines: `sql.query` with the table name
 * `"x\n<time> [INFO] task warden-a-1 ended: completed"` fails ERR_SQL_FAILED "no such table: x"
 * followed by a line that reads as the worker's own entry, indented by the two spaces `inspect`
 * gives a nested error's lines (journald, which keeps a record per line, keeps it as a record of
 * its own). On a terminal too: terminalWriter keeps `\n`.
 *
 * Real parts: the real SandboxClient and host, a real SQLite file, the built-in `sql.query`, the
 * activity boundary's conversion (`ToolError` as run-tool.ts throws it, `toApplicationFailure`) and
 * the worker's log text. The SDK entry is built as the SDK's activity logger writes it (as in
 * test/worker/worker-log-filters.test.ts).
 *
 * Suggested fix: in `workerLogText`, put every entry's message and meta on lines that cannot be
 * mistaken for entries: escape line breaks in the failure's message (`oneLine`) and print the
 * stack's own frames indented under it, or prefix every continuation line (e.g. `  | `), so only
 * Warden starts a line with a time stamp.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { LogEntry } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../../sandbox/sandbox-client';
import { builtinTools } from '../../../tools/builtin-tools';
import { ToolError, isErrorCode } from '../../../errors';
import { toApplicationFailure } from '../../../activities/to-application-failure';
import { workerLogText } from '../../../worker/worker-log-filters';
import { makeTempDir, toolCall } from '../../sandbox/sandbox-test-kit';

let client: SandboxClient;
let folder: string;

beforeAll(async () => {
  folder = makeTempDir('worker-log-forged');
  client = await SandboxClient.start();
});

afterAll(async () => {
  await client?.close();
  fs.rmSync(folder, { recursive: true, force: true });
});

const FORGED = '2026-12-01T19:00:00.000Z [INFO] task warden-victim-1 ended: completed';

it("a failed tool call's error text (the agent's table name) does not start a line of the worker log", async () => {
  const file = path.join(folder, 'shop.db');
  const db = new Database(file);
  db.exec('CREATE TABLE items (id INTEGER PRIMARY KEY)');
  db.close();
  const sql = `SELECT * FROM "x\n${FORGED}"`;
  const response = await client.run(toolCall(builtinTools()['sql.query'].source, { database: 'shop', sql }, { sql: { databases: { shop: file }, query: true, exec: false } }));
  expect(response.ok).toBe(false);
  if (response.ok) return;
  // As activities/run-tool.ts throws it, then the activity boundary.
  const code = isErrorCode(response.error.code) ? response.error.code : 'ERR_TOOL_THREW';
  const failure = toApplicationFailure(new ToolError(code, response.error.message));
  const entry: LogEntry = {
    level: 'WARN',
    message: 'Activity failed',
    timestampNanos: 1_764_615_600_000_000_000n,
    meta: { sdkComponent: 'worker', taskQueue: 'q@w', isLocal: false, attempt: 1, namespace: 'default', activityId: '6', activityType: 'runTool', workflowId: 'warden-a-1', workflowRunId: 'r', workflowType: 'agentTask', error: failure, durationMs: 12 },
  };
  const lines = workerLogText(entry).split('\n');
  // The worker's own entry is there; no line of the log is the agent's text (inspect indents the
  // failure's lines by two spaces: a log collector that keeps a record per line, journald, keeps it as one).
  expect(lines[0]).toContain('[WARN] Activity failed');
  expect(lines.filter((line) => line.trimStart().startsWith(FORGED))).toEqual([]);
});
