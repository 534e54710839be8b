/**
 * Regression (s13, atk13's `worker-log-forged-line-from-tool-error`): a tool's error text started
 * lines of its own choosing in a standalone worker's log.
 *
 * An "Activity failed" entry that is no refusal (ERR_TOOL_THREW, an SQL error, a crash...) is kept
 * whole, stack and all, and its text kept its line breaks: `sql.query` with the table name
 * `"x\n<time> [INFO] task warden-a-1 ended: completed"` failed ERR_SQL_FAILED "no such table: x"
 * followed by a line that read as the worker's own entry. Now every line of an entry after its
 * first starts `  | ` (CONTINUATION, worker/worker-log-filters.ts): only Warden starts a line with
 * a time. Real parts for the first row: the real SandboxClient and host, a real SQLite file, the
 * built-in `sql.query`, the activity boundary's conversion and the worker's log text; the table
 * puts the forged line in each other place an entry carries others' text.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import Database from 'better-sqlite3';
import type { LogEntry } from '@temporalio/worker';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { builtinTools } from '../../tools/builtin-tools';
import { ToolError, isErrorCode } from '../../errors';
import { toApplicationFailure } from '../../activities/to-application-failure';
import { CONTINUATION, workerLogText } from '../../worker/worker-log-filters';
import { makeTempDir, toolCall } from '../sandbox/sandbox-test-kit';

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

const entryOf = (meta: Record<string, unknown>): LogEntry => ({
  level: 'WARN',
  message: 'Activity failed',
  timestampNanos: 1_764_615_600_000_000_000n,
  meta: { sdkComponent: 'worker', taskQueue: 'q@w', attempt: 1, activityType: 'runTool', workflowType: 'agentTask', ...meta },
});
const forgedError = (message: string, cause?: unknown) => Object.assign(new Error(message, cause === undefined ? {} : { cause }), { stack: `Error: ${message}\n    at tool (sandbox:1:1)` });

it.each([
  ['a failure message (ERR_TOOL_THREW)', entryOf({ workflowId: 'w', error: toApplicationFailure(new ToolError('ERR_TOOL_THREW', `boom\n${FORGED}`)) })],
  ['a thrown Error\'s message and stack', entryOf({ workflowId: 'w', error: forgedError(`boom\n${FORGED}`) })],
  ["a cause's message", entryOf({ workflowId: 'w', error: forgedError('outer', forgedError(`inner\r\n${FORGED}`)) })],
  ['a meta string (a workflow id)', entryOf({ workflowId: `w\n${FORGED}`, error: forgedError('x') })],
  ['a line separator (U+2028)', entryOf({ workflowId: 'w', error: forgedError(`boom\u2028${FORGED}`) })],
])('%s: every line after the first is the entry\'s continuation', (_where, entry) => {
  const lines = workerLogText(entry).replace(/\n$/, '').split('\n');
  expect(lines[0]).toMatch(/^\d{4}-\d\d-\d\dT[\d:.]+Z \[WARN\] Activity failed /);
  for (const line of lines.slice(1)) expect(line.startsWith(CONTINUATION), line).toBe(true);
  expect(lines.filter((line) => line.trimStart().startsWith(FORGED))).toEqual([]);
});
