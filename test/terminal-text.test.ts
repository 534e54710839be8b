/**
 * Text others wrote (a tool, a program, an MCP server, a model, a poller) in a line of Warden's
 * terminal output (terminal-text.ts): every C0 and C1 control, DEL, U+2028/2029 and Bidi_Control
 * character (the marks U+061C, U+200E, U+200F too: regression test/bidi-marks-escaped.test.ts)
 * is escaped visibly as JSON writes it, so no such text starts a line of its own or reaches the
 * terminal as a control. One table over the characters, applied to the function and to every view
 * that prints such text (regression: test/worker/refusal-line-not-forged-by-tool-text.test.ts, was
 * test/attacks/open/refusal-line-forged-by-tool-text.test.ts).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import type { LogEntry } from '@temporalio/worker';
import { alertJsonLine, alertTextLine } from '../activities/monitor-activities';
import { formatAlertLine } from '../cli/commands/alerts';
import { formatTaskView } from '../cli/commands/status';
import { formatPendingApproval, formatRecovery, formatStep, formatSummary } from '../cli/format-summary';
import type { Alert } from '../monitoring/alert';
import type { StepRecord, TaskResult } from '../task/task-run';
import { terminalJson, terminalLine, terminalLines, terminalText, terminalWriter } from '../terminal-text';
import { workerLogText } from '../worker/worker-log-filters';

/** Each character that must never reach a terminal from others' text, and how it is shown. */
const UNSAFE: [string, string, string][] = [
  ['line feed', '\n', '\\n'],
  ['carriage return', '\r', '\\r'],
  ['tab', '\t', '\\t'],
  ['vertical tab (cursor one line down)', '\u000b', '\\u000b'],
  ['form feed', '\f', '\\f'],
  ['backspace', '\b', '\\b'],
  ['bell', '\u0007', '\\u0007'],
  ['NUL', '\u0000', '\\u0000'],
  ['ESC (CSI sequences: cursor up, erase line, colours)', '\u001b', '\\u001b'],
  ['unit separator (last C0)', '\u001f', '\\u001f'],
  ['DEL', '\u007f', '\\u007f'],
  ['C1 padding (first C1)', '\u0080', '\\u0080'],
  ['NEL (C1 next line)', '\u0085', '\\u0085'],
  ['C1 CSI', '\u009b', '\\u009b'],
  ['APC (last C1)', '\u009f', '\\u009f'],
  ['line separator', '\u2028', '\\u2028'],
  ['paragraph separator', '\u2029', '\\u2029'],
  ['left-to-right embedding', '\u202a', '\\u202a'],
  ['right-to-left override', '\u202e', '\\u202e'],
  ['Arabic letter mark (bidi mark)', '\u061c', '\\u061c'],
  ['left-to-right mark', '\u200e', '\\u200e'],
  ['right-to-left mark', '\u200f', '\\u200f'],
  ['left-to-right isolate', '\u2066', '\\u2066'],
  ['pop directional isolate', '\u2069', '\\u2069'],
];
/** Any character of the table (every Bidi_Control by Unicode's property): what no line a view prints may hold. */
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\p{Bidi_Control}]/u;

/** What a tool, model or server writes: a forged line after the character. */
const forged = (char: string) => `real text${char}  #1 fs.write {"path":"report.txt"} -> allowed; ok null${char}\u001b[2K`;

describe('terminalLine', () => {
  it.each(UNSAFE)('%s is escaped visibly', (_what, char, shown) => {
    expect(terminalLine(`a${char}b`)).toBe(`a${shown}b`);
    expect(terminalLine(char.repeat(3))).toBe(shown.repeat(3));
  });

  it.each([
    ['plain text', 'path "../outside.txt" is outside the workspace'],
    ['a backslash and what looks like an escape (shown as is: never a control)', 'C:\\temp\\new \\u001b'],
    ['text beyond the controls: accents, CJK, emoji, Arabic, Hebrew', 'café 数据 😀 مرحبا שלום'],
    ['the characters beside the escaped ranges', ' ~\u00a0\u061b\u061d\u200d\u2010\u2027\u202f\u2065\u206a'],
    ['a lone surrogate (not a terminal control; mended elsewhere)', 'x\ud800y'],
  ])('%s is left as it is', (_what, text) => {
    expect(terminalLine(text)).toBe(text);
  });

  it('escapes every character of the ranges and nothing else of the BMP', () => {
    for (let code = 0; code < 0x10000; code++) {
      const char = String.fromCharCode(code);
      expect(terminalLine(char) !== char, `U+${code.toString(16)}`).toBe(CONTROL.test(char));
      expect(terminalLine(char)).not.toMatch(CONTROL);
    }
  });

  it('is idempotent: an escaped line escapes to itself', () => {
    const once = terminalLine(UNSAFE.map(([, char]) => char).join('x\\'));
    expect(terminalLine(once)).toBe(once);
  });

  it('terminalLines keeps only the given line breaks', () => {
    expect(terminalLines(`one\u001b[2K\ntwo\r`)).toBe('one\\u001b[2K\ntwo\\r');
  });
});

const step = (over: Partial<StepRecord>): StepRecord => ({ index: 0, turn: 0, kind: 'tool', tool: 'forger', args: {}, decision: 'allow', reason: 'allowed', executed: true, startedAt: '2026-12-01T00:00:00.000Z', durationMs: 1, ...over });
const result = (text: string): TaskResult => ({
  workflowId: 'wf',
  runId: 'run',
  agent: 'writer',
  model: { id: 'scripted', version: '1' },
  depth: 0,
  status: 'failed',
  reason: text,
  steps: [step({ error: { code: 'ERR_TOOL_THREW', message: text } })],
  children: [],
  final: { answer: text, claims: [text] },
  claims: [{ id: 'wf#claim-0', workflowId: 'wf', agent: 'writer', index: 0, claim: { kind: 'text', text }, text, verdict: 'unverified', reason: text, subjects: [], verifier: { id: 'v', version: '1' }, verifiedAt: '2026-12-01T00:00:00.000Z' }],
  recovery: { rolledBack: [{ kind: 'file.restore', detail: text, status: 'failed' }], notUndoable: [text] },
} as unknown as TaskResult);
const alert = (text: string): Alert => ({ id: 'a1', workflowId: 'wf', agent: text, stepIndex: 1, tool: text, score: 90, response: 'block', reasons: [{ detail: text }], rules: [{ id: 'r1', sentence: text, detail: text }], detectedAt: '2026-12-01T00:00:00.000Z' }) as unknown as Alert;
const logEntry = (message: string, error: unknown): LogEntry => ({ level: 'WARN', message, timestampNanos: 1_764_576_000_000_000_000n, meta: { taskQueue: 'q', activityId: '1', activityType: 'runTool', workflowId: 'wf', workflowType: 'agentTask', attempt: 1, error } });

/**
 * Every view that prints others' text, as the text it prints, how many lines Warden itself gives
 * it, and whether it folds a line break and the white space around it into one space (the worker
 * log's refusal line: a refusal may quote a statement over lines) instead of escaping it.
 */
const views: [string, (text: string) => string, number, 'folds line breaks'?][] = [
  ['a step refused by the tool (formatStep)', (text) => formatStep(step({ error: { code: 'ERR_PATH_OUTSIDE_WORKSPACE', message: text } })), 1],
  ['a failed step (formatStep)', (text) => formatStep(step({ error: { code: 'ERR_TOOL_THREW', message: text } })), 1],
  ['a denied step, its tool name the model asked for (formatStep)', (text) => formatStep(step({ tool: text, decision: 'deny', reason: text, executed: false })), 1],
  ['the summary: reason, step, answer, claims, verdicts (formatSummary)', (text) => formatSummary(result(text)), 7],
  ['recovery (formatRecovery)', (text) => formatRecovery(result(text)), 1],
  ['a pending approval (formatPendingApproval)', (text) => formatPendingApproval('wf', { requestId: 'r', tool: text, args: { text }, rules: [text], effect: { [text]: text }, requestedAt: 'now', expiresAt: 'later' }), 5],
  ["warden status (formatTaskView)", (text) => formatTaskView({ workflowId: 'wf', runId: 'run', agent: text, user: text, status: 'failed', execution: 'FAILED', startTime: 't', taskQueue: 'q', note: text, result: { ...result(text), runId: undefined } } as unknown as Parameters<typeof formatTaskView>[0]).replace(/\n$/, ''), 13],
  ["warden run's alert line (alertTextLine)", (text) => alertTextLine(alert(text)).replace(/\n$/, ''), 1],
  ['warden alerts (formatAlertLine)', (text) => formatAlertLine(alert(text)).replace(/\n$/, ''), 3],
  ["the worker log's refusal line", (text) => workerLogText(logEntry('Activity failed', ApplicationFailure.create({ type: 'ERR_PATH_OUTSIDE_WORKSPACE', message: text }))).replace(/\n$/, ''), 1, 'folds line breaks'],
  ["the worker log's task end line", (text) => workerLogText({ ...logEntry('Workflow failed', ApplicationFailure.create({ type: 'ERR_TASK_FAILED', message: `failed: ${text}` })), level: 'WARN' }).replace(/\n$/, ''), 1],
];

describe.each(views)('%s', (_view, print, lines, folds) => {
  it.each(UNSAFE)('holds no %s and starts no line of the writer\'s', (_what, char, shown) => {
    const printed = print(forged(char));
    expect(printed.split('\n'), printed).toHaveLength(lines);
    for (const line of printed.split('\n')) expect(line, line).not.toMatch(CONTROL);
    expect(printed).toContain(folds !== undefined && /[\r\n\u2028\u2029]/.test(char) ? 'real text #1 fs.write' : `real text${shown}`);
  });
});

it("the worker log's other entries keep their own line breaks (a stack), each line made safe", () => {
  const error = new Error(forged('\n'));
  const printed = workerLogText(logEntry('Activity failed', error));
  expect(printed.split('\n').length).toBeGreaterThan(2);
  for (const line of printed.slice(0, -1).split('\n')) expect(line, line).not.toMatch(CONTROL);
  expect(printed).toContain('\\u001b[2K');
});

describe('terminalText and terminalWriter: every stream to a terminal (defense in depth; test/cli/tty-output.test.ts on a real pty)', () => {
  it.each(UNSAFE)('%s: escaped as terminalLine does, but line feed and tab (Warden\'s own)', (_what, char, shown) => {
    const kept = char === '\n' || char === '\t';
    expect(terminalText(`a${char}b`)).toBe(kept ? `a${char}b` : `a${shown}b`);
  });

  it('is the identity on text without those characters, and escapes to itself', () => {
    const text = 'task t1: FAILED - C:\\temp \\u001b café 数据 😀\n\tline two\n';
    expect(terminalText(text)).toBe(text);
    const escaped = terminalText(forged('\u001b'));
    expect(terminalText(escaped)).toBe(escaped);
  });

  it('keeps a JSON text the same JSON value (JSON.stringify leaves C1 and bidi controls raw)', () => {
    const value = { reason: UNSAFE.map(([, char]) => char).join(''), answer: 'ok' };
    const json = `${JSON.stringify(value, null, 2)}\n`;
    expect(json).toMatch(CONTROL);
    expect(JSON.parse(terminalText(json))).toEqual(value);
  });

  it.each([
    ['a terminal: escaped', true, 'x\\u001b[2Ky\\u009b\n'],
    ['a pipe or file: byte for byte', false, 'x\u001b[2Ky\u009b\n'],
    ['a stream that does not say (isTTY undefined): byte for byte', undefined, 'x\u001b[2Ky\u009b\n'],
  ])('writes to %s', (_what, isTTY, written) => {
    const chunks: string[] = [];
    const write = terminalWriter({ write: (text: string) => chunks.push(text), ...(isTTY === undefined ? {} : { isTTY }) });
    write('x\u001b[2Ky\u009b\n');
    expect(chunks).toEqual([written]);
  });
});

describe('terminalJson: JSON the CLI prints, piped or not (regression: test/cli/piped-json-escapes-controls.test.ts)', () => {
  /** Every character a terminal acts on or reorders by, each lone surrogate's edge, and JSON's own specials. */
  const SPECIAL = [
    ...Array.from({ length: 0x20 }, (_, code) => String.fromCharCode(code)),
    ...Array.from({ length: 0x21 }, (_, code) => String.fromCharCode(0x7f + code)),
    '\u2028', '\u2029', '\u061c', '\u200e', '\u200f', '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2066', '\u2067', '\u2068', '\u2069',
    '\ud800', '\udbff', '\udc00', '\udfff', '"', '\\', '/', '😀', 'é',
  ];
  /** Strings of those characters, any UTF-16 unit (lone surrogates included) and pairs. */
  const text = fc.string({ unit: fc.oneof(fc.constantFrom(...SPECIAL), fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code))), maxLength: 24 });
  const value = fc.oneof(text, fc.array(text, { maxLength: 4 }), fc.dictionary(text, fc.oneof(text, fc.integer(), fc.constant(null), fc.array(text, { maxLength: 3 })), { maxKeys: 4 }));
  const indent = fc.constantFrom(undefined, 1, 2);
  /** What JSON.stringify leaves raw in a string and terminalJson must escape. */
  const RAW_IN_JSON = /[\u007f-\u009f\u2028\u2029\p{Bidi_Control}]/u;

  it('parses to the same value, holds no control but the line feeds of the indent, and is JSON.stringify\'s text where no such character occurs', () => {
    fc.assert(
      fc.property(value, indent, (v, space) => {
        const json = terminalJson(v, space);
        expect(JSON.parse(json)).toEqual(v);
        for (const line of json.split('\n')) expect(line).not.toMatch(CONTROL);
        if (space === undefined) expect(json).not.toContain('\n');
        const plain = JSON.stringify(v, null, space);
        if (!RAW_IN_JSON.test(plain)) expect(json).toBe(plain);
      }),
      { numRuns: 2000 },
    );
  });

  it.each(UNSAFE)('%s in a string is written escaped', (_what, char) => {
    const json = terminalJson({ reason: `a${char}b` });
    expect(json).not.toMatch(CONTROL);
    expect(JSON.parse(json)).toEqual({ reason: `a${char}b` });
    if (RAW_IN_JSON.test(char)) expect(json).toBe(`{"reason":"a\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}b"}`);
    else expect(json).toBe(JSON.stringify({ reason: `a${char}b` }));
  });

  it.each(UNSAFE)("%s in an alert is written escaped in `warden worker`'s alert line (alertJsonLine), piped or not", (_what, char) => {
    const line = alertJsonLine(alert(forged(char)));
    expect(line.endsWith('\n')).toBe(true);
    expect(line.slice(0, -1)).not.toMatch(CONTROL);
    expect(JSON.parse(line)).toEqual({ type: 'warden.alert', ...alert(forged(char)) });
  });

  it('writes a lone surrogate as JSON.stringify does, escaped', () => {
    expect(terminalJson(['x\ud800y', '\udfff'])).toBe('["x\\ud800y","\\udfff"]');
  });

  it('refuses a value with no JSON text (TypeError)', () => {
    expect(() => terminalJson(undefined)).toThrow(TypeError);
    expect(() => terminalJson(() => 1)).toThrow(TypeError);
  });
});
