/**
 * The runtime `warden run` and the test workers install (`installQuietRuntime`) keeps the SDK's own
 * logging to errors. Those errors were written by the SDK's default console logger, raw: an ERROR
 * entry quoting an agent's text (a workflow's failure message, an activity's error) reached the
 * run's terminal with its controls (ESC and C1 CSI sequences, line separators, bidi overrides) and
 * could forge a line of Warden's output. It is now written as the standalone worker's log is
 * (`workerLogText` through `terminalWriter`): controls escaped, each further line of an entry
 * marked as its continuation.
 *
 * Real parts: a fresh Node process (the runtime is installed once per process) with the real SDK
 * Runtime; the entry is logged through the installed runtime's logger, as the SDK's own code does.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { beforeAll, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/test-state-dir';

const ROWS: [string, string][] = [
  ['ESC (CSI: erase line, colours)', '\u001b[2K\u001b[31m'],
  ['C1 CSI', '\u009b2K'],
  ['line feed (a forged line)', '\n2026-12-01T00:00:00.000Z [INFO] task t ended: completed'],
  ['carriage return', '\r'],
  ['line separator', '\u2028'],
  ['right-to-left override', '\u202e'],
  ['DEL', '\u007f'],
];

/**
 * Stdout and stderr of one fresh process that installs the quiet runtime and has the SDK log one
 * ERROR per row, `row <i>: <text>`, then a WARN (one process: loading the worker's modules is slow).
 */
function logThroughQuietRuntime(texts: string[]): { stdout: string; stderr: string } {
  const entries = texts.map((text, i) => `Runtime.instance().logger.error(${JSON.stringify(`row ${i}: ${text}`)}, { workflowId: 'w' });`).join('');
  const script =
    `const { installQuietRuntime } = require(${JSON.stringify(join(REPO_ROOT, 'worker', 'create-warden-worker.ts'))});` +
    `const { Runtime } = require('@temporalio/worker');` +
    `installQuietRuntime();` +
    entries +
    `Runtime.instance().logger.warn('a warning is not shown');` +
    // The native runtime holds the process open; the SDK hands entries to the logger on a later tick.
    `setTimeout(() => process.exit(0), 500);`;
  const child = spawnSync(process.execPath, ['--import', 'tsx', '-e', script], { cwd: REPO_ROOT, encoding: 'utf8', timeout: 120_000 });
  if (child.status !== 0) throw new Error(`the child exited ${child.status}: ${child.stderr}`);
  return { stdout: child.stdout, stderr: child.stderr };
}

/** Any character a terminal or log viewer acts on but a line feed (every Bidi_Control by Unicode's property). */
const CONTROL = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029\p{Bidi_Control}]/u;
const ENTRY_START = /^\d{4}-\d\d-\d\dT[\d:.]+Z \[(\w+)\] /;

let logged: { stdout: string; stderr: string };
beforeAll(() => {
  logged = logThroughQuietRuntime(ROWS.map(([, text]) => text));
});

it('the SDK writes nothing on stdout and only its errors on stderr', () => {
  expect(logged.stdout).toBe('');
  expect(logged.stderr).not.toContain('a warning is not shown');
});

it.each(ROWS.map(([what, text], i) => [what, text, i] as const))('an SDK error quoting %s is written escaped, one line Warden starts per entry', (_what, _text, i) => {
  expect(logged.stderr).not.toMatch(CONTROL);
  const lines = logged.stderr.replace(/\n$/, '').split('\n');
  const start = lines.findIndex((line) => ENTRY_START.test(line) && line.includes(`] row ${i}: `));
  expect(start).toBeGreaterThanOrEqual(0);
  expect(lines[start]).toMatch(/\[ERROR\] row \d+: /);
  // Lines up to the next entry continue this one: a line break the text held never starts a line of its own.
  const next = lines.findIndex((line, at) => at > start && !line.startsWith('  | '));
  for (const line of lines.slice(start + 1, next === -1 ? undefined : next)) expect(line.startsWith('  | ')).toBe(true);
  if (next !== -1) {
    expect(lines[next]).toMatch(ENTRY_START);
    expect(lines[next]).toContain(`] row ${i + 1}: `);
  }
});
