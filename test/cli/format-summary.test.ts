/**
 * `warden run`'s summary shows Warden's verdict on every claim, not the agent's word: a tally, one
 * line per claim with its verdict and why, and for a signed one the key and custody record.
 */
import { describe, expect, it } from 'vitest';
import { formatStep, formatSummary } from '../../cli/format-summary';
import { REFUSAL_CODES } from '../../refusal-codes';
import type { ClaimOutcome, StepRecord, TaskResult } from '../../task/task-run';

function outcome(index: number, verdict: ClaimOutcome['verdict'], text: string, reason: string, signed = false): ClaimOutcome {
  return {
    id: `wf#claim-${index}`,
    workflowId: 'wf',
    agent: 'writer',
    index,
    claim: { kind: 'text', text },
    text,
    verdict,
    reason,
    subjects: [],
    ...(signed
      ? {
          custody: { seq: 41, hash: 'a'.repeat(64) },
          envelope: { payloadType: 'application/vnd.in-toto+json', payload: 'e30', signatures: [{ keyid: 'kid-0123456789abcdef', sig: 'c2ln' }] },
        }
      : {}),
    verifier: { id: 'warden/verifier/file.sha256', version: '1' },
    verifiedAt: '2026-11-30T00:00:00.000Z',
  };
}

const result: TaskResult = {
  workflowId: 'wf',
  runId: 'run',
  agent: 'writer',
  model: { id: 'scripted', version: '1' },
  depth: 0,
  status: 'refuted',
  reason: '1 claim refuted',
  steps: [],
  children: [],
  final: { answer: 'done', claims: [{ kind: 'sql.count', database: 'app', table: 'items', equals: 3 }, 'the report is good', { kind: 'sql.count' } as never] },
  claims: [
    outcome(0, 'verified', 'report.md has SHA-256 abc', 'report.md hashes to the claimed digest', true),
    outcome(1, 'refuted', 'items in app has 3 rows', '5 row(s) match in app.items'),
    outcome(2, 'unverified', 'the report is good', 'a claim in words'),
  ],
};

describe('formatSummary with claims', () => {
  const lines = formatSummary(result).split('\n');

  it('shows the claims as stated, in words (a malformed one as its JSON)', () => {
    expect(lines).toContain('    claim: the report is good');
    expect(lines.some((l) => /claim: .*items.*3/.test(l))).toBe(true);
    expect(lines).toContain('    claim: {"kind":"sql.count"}');
  });

  it("tallies Warden's verdicts and gives each with its reason, signed ones with key and custody record", () => {
    expect(lines).toContain('claims checked by Warden: 1 verified, 1 refuted, 1 unverified');
    expect(lines).toContain('  VERIFIED   writer: report.md has SHA-256 abc -- report.md hashes to the claimed digest [signed by key kid-01234567…, custody #41]');
    expect(lines).toContain('  REFUTED    writer: items in app has 3 rows -- 5 row(s) match in app.items');
    expect(lines).toContain('  unverified writer: the report is good -- a claim in words');
  });

  it('prints no claim section for a task without claims', () => {
    expect(formatSummary({ ...result, claims: undefined, final: { answer: 'done', claims: [] } })).not.toContain('claims checked');
  });
});

describe('a step line, by how the action was decided', () => {
  const base = { index: 0, turn: 0, kind: 'tool' as const, tool: 'sql.exec', args: { sql: 'DELETE FROM leads' }, decision: 'allow' as const, reason: 'allowed', executed: false, startedAt: '2026-11-30T00:00:00.000Z', durationMs: 1 };
  const held = { decision: 'approval' as const, matched: [] };
  const decided = { requestId: 'r', decidedAt: '2026-11-30T00:00:00.000Z' };
  it.each([
    ['allowed and run', { ...base, executed: true, output: { rows: 3 } }, '-> allowed; ok {"rows":3}'],
    ['approved and run', { ...base, executed: true, output: 1, policy: held, approval: { ...decided, status: 'approved' as const } }, '-> allowed; ok 1'],
    ['held, then withdrawn (task ended first)', { ...base, policy: held }, '-> held for approval, withdrawn undecided; not run'],
    ['held, then denied', { ...base, decision: 'deny' as const, reason: 'denied by ann', policy: held, approval: { ...decided, status: 'denied' as const }, error: { code: 'ERR_APPROVAL_DENIED', message: 'denied by ann' } }, '-> DENIED (denied by ann); not run: ERR_APPROVAL_DENIED'],
    ['denied part-way, its writes undone', { ...base, decision: 'deny' as const, reason: 'denied by rule 1', undone: ['a.txt', 'd/e.txt'], error: { code: 'ERR_POLICY_DENIED', message: 'no' } }, 'not run: ERR_POLICY_DENIED no; its writes undone: a.txt, d/e.txt'],
  ] as [string, StepRecord, string][])('%s', (_what, step, expected) => {
    expect(formatStep(step)).toContain(expected);
  });
});

describe('the summary after steps were shown as they ran', () => {
  const step = (index: number, tool: string): StepRecord => ({ index, turn: index, kind: 'tool', tool, args: {}, decision: 'allow', reason: 'allowed', executed: true, output: index, startedAt: '2026-11-30T00:00:00.000Z', durationMs: 1 });
  const withSteps: TaskResult = { ...result, claims: undefined, steps: [step(0, 'fs.read'), step(1, 'fs.write')] };
  const stepLines = (text: string) => text.split('\n').filter((line) => /#\d+ /.test(line));

  const line0 = formatStep(step(0, 'fs.read'));
  const line1 = formatStep(step(1, 'fs.write'));
  it.each([
    ['none shown: every step listed', [], ['  #0 fs.read {} -> allowed; ok 0', '  #1 fs.write {} -> allowed; ok 1'], ', 2 step(s)\n'],
    ['all shown: counted, none repeated', [['wf#0', line0], ['wf#1', line1]], [], ', 2 step(s), shown on stderr as they ran\n'],
    ['some shown: only the others listed', [['wf#0', line0]], ['  #1 fs.write {} -> allowed; ok 1'], ', 2 step(s), 1 shown on stderr as they ran\n'],
    ["another task's steps shown: this one's all listed", [['wf/child-1#0', line0], ['wf/child-1#1', line1]], ['  #0 fs.read {} -> allowed; ok 0', '  #1 fs.write {} -> allowed; ok 1'], ', 2 step(s)\n'],
    ['shown before its record was final: listed as it ended', [['wf#0', line0], ['wf#1', line1.replace('ok 1', 'ok 0')]], ['  #1 fs.write {} -> allowed; ok 1'], ', 2 step(s), 1 shown on stderr as they ran\n'],
  ] as [string, [string, string][], string[], string][])('%s', (_what, shown, listed, count) => {
    const summary = formatSummary(withSteps, new Map(shown));
    expect(stepLines(summary)).toEqual(listed);
    expect(summary).toContain(count);
  });
});

// A newcomer saw `fs.read` of a path outside the workspace as "allowed; failed:
// ERR_PATH_OUTSIDE_WORKSPACE": the policy allowed the call and the tool refused it, which read as
// Warden letting it through. The line now says both: the policy's decision as recorded (the step,
// its custody record and --json keep `decision: allow`) and who refused it, and why.
describe('a step the policy allowed and the tool refused', () => {
  const base = { index: 0, turn: 0, kind: 'tool' as const, tool: 'fs.read', args: { path: '../outside.txt' }, decision: 'allow' as const, reason: 'tool "fs.read" is granted', executed: true, startedAt: '2026-11-30T00:00:00.000Z', durationMs: 1 };
  const refusedBy = (code: string, message: string): StepRecord => ({ ...base, error: { code, message } });

  it('the newcomer\'s case: fs.read outside the workspace', () => {
    const step = refusedBy('ERR_PATH_OUTSIDE_WORKSPACE', 'path "../outside.txt" is outside the workspace: it climbs out of the workspace with ".."');
    expect(formatStep(step)).toBe('  #0 fs.read {"path":"../outside.txt"} -> allowed by policy, but REFUSED by the tool: ERR_PATH_OUTSIDE_WORKSPACE path "../outside.txt" is outside the workspace: it climbs out of the workspace with ".."');
    expect(step.decision).toBe('allow');
  });

  it.each([...REFUSAL_CODES].map((code) => [code]))('%s: allowed by policy, but REFUSED by the tool, with the why', (code) => {
    const line = formatStep(refusedBy(code, 'the why'));
    expect(line).toContain(`-> allowed by policy, but REFUSED by the tool: ${code} the why`);
    expect(line).not.toMatch(/allowed;|failed:/);
  });

  it.each([
    ['a tool that threw: a failure, not a refusal', { ...base, error: { code: 'ERR_TOOL_THREW', message: 'boom' } }, '-> allowed; failed: ERR_TOOL_THREW boom'],
    ['a file that is not there', { ...base, error: { code: 'ERR_PATH_NOT_FOUND', message: 'no such file' } }, '-> allowed; failed: ERR_PATH_NOT_FOUND no such file'],
    ['a tool that ran out of time', { ...base, error: { code: 'ERR_SANDBOX_TIMEOUT', message: 'over 5 s' } }, '-> allowed; failed: ERR_SANDBOX_TIMEOUT over 5 s'],
    ['denied by the policy itself: DENIED, with its reason', { ...base, decision: 'deny' as const, reason: 'tool "fs.read" is not granted', executed: false, error: { code: 'ERR_TOOL_NOT_GRANTED', message: 'tool "fs.read" is not granted' } }, '-> DENIED (tool "fs.read" is not granted); not run: ERR_TOOL_NOT_GRANTED'],
    ['refused part-way, its writes undone', { ...base, tool: 'word-count', error: { code: 'ERR_POLICY_DENIED', message: 'fs.write denied by policy r1: no' }, undone: ['a.txt'] }, '-> allowed by policy, but REFUSED by the tool: ERR_POLICY_DENIED fs.write denied by policy r1: no; its writes undone: a.txt'],
  ] as [string, StepRecord, string][])('%s', (_what, step, expected) => {
    expect(formatStep(step)).toContain(expected);
  });
});
