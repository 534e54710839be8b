/**
 * Open finding (s12 review, confirmed s13 by atk13): a standalone worker's alert lines on stdout
 * (`alertJsonLine`, activities/monitor-activities.ts) are plain `JSON.stringify`, so the C1
 * controls (U+009B CSI), DEL, U+2028/9 and Bidi_Control characters of an agent's action (a
 * score reason's detail quotes the path, host or SQL the agent chose; a kill's reason is an
 * operator's text) reach a pipe raw: `warden worker | tee alerts.jsonl` puts a CSI sequence on
 * the terminal, and a bidi override reorders the line, where every `--json` of the CLI escapes
 * them (`terminalJson`, terminal-text.ts). The static scan (test/cli/terminal-output-scan.test.ts)
 * covers cli/ only, and this line is built in activities/.
 *
 * Real parts: the worker's own line function and an alert that parses with AlertSchema.
 * Suggested fix: `terminalJson({ type: 'warden.alert', ...alert })` (the same JSON value; bytes
 * change only where such characters occur), and extend the scan's "no bare JSON.stringify in
 * what is printed" to every function whose text a worker prints (alertJsonLine, workerLogText).
 */
import { expect, it } from 'vitest';
import { alertJsonLine } from '../../../activities/monitor-activities';
import { AlertSchema } from '../../../monitoring/alert';

/** What terminalJson writes as \uXXXX: DEL, C1, U+2028/9, Bidi_Control. */
const RAW = /[\u007f-\u009f\u2028\u2029\p{Bidi_Control}]/u;

it("a worker's alert JSON line escapes the C1 and bidi controls of the agent's action", () => {
  const alert = AlertSchema.parse({
    id: 'a-1',
    rootWorkflowId: 'warden-a-1',
    workflowId: 'warden-a-1',
    runId: 'r',
    agent: 'a',
    user: 'u',
    source: 'monitor',
    stepIndex: 3,
    tool: 'http.fetch',
    score: 80,
    reasons: [{ signal: 'new-host', points: 80, detail: 'host evil\u009b2J\u202eexample.com' }],
    rules: [],
    response: 'alert',
    detectedAt: '2026-12-01T19:00:00.000Z',
  });
  const line = alertJsonLine(alert);
  expect(JSON.parse(line)).toEqual({ type: 'warden.alert', ...alert });
  expect(line).not.toMatch(RAW);
});
