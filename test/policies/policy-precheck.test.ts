/**
 * A policy decision made ahead (policies/policy-precheck.ts, activities/precheck-policy.ts) is
 * used by the workflow only when it is the decision the workflow's own check would make:
 * - the digest covers every input of the check but the clock (each field changed alone changes it);
 * - the clock: at every workflow time the decision is accepted for, the check decides what it
 *   decided ahead (rate windows, time-of-day windows); at the times where a rule would decide
 *   otherwise (a call leaving a rate window, the window's end) it is refused.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sha256 } from '@noble/hashes/sha256';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decidePolicyCheck, type CheckPolicyInput } from '../../activities/check-policy';
import type { ActivityDeps } from '../../activities/index';
import { clockReadingOf, precheckPolicy } from '../../activities/precheck-policy';
import { emptyPolicyState, type PolicyState } from '../../policies/engine/policy-state';
import { policyInputDigest, precheckHolds, taskDigestOf, validityOf, type PolicyInputs } from '../../policies/policy-precheck';
import { referenceStableJson } from '../recovery/reference-stable-json';
import { parseTask } from '../../task/load-task-file';
import { REPO_ROOT } from '../support/warden-test-env';

const MINUTE = 60_000;
/** A check without a data plane or sandbox: it reads what its input gives (no transcript, no blobs). */
const noDeps = {} as ActivityDeps;
const workspace = mkdtempSync(join(tmpdir(), 'warden-ahead-'));

function task(policies: string[]) {
  return parseTask(
    {
      user: 'dana@example.com',
      intent: 'write notes',
      agent: { name: 'ahead', model: { driver: 'scripted', script: [{ final: 'done' }] } },
      tools: { builtin: ['fs.write'] },
      grants: { tools: ['fs.write'] },
      resources: { workspace },
      policies,
    },
    'ahead.yaml',
    REPO_ROOT,
  );
}

const write = { type: 'tool' as const, tool: 'fs.write', args: { path: 'notes/a.txt', content: 'a' } };

function stateWithCalls(times: number[]): PolicyState {
  const state = emptyPolicyState();
  state.agents.ahead = { name: 'ahead', depth: 0, calls: times.length, tools: { 'fs.write': { calls: times.length } } };
  state.recent = times.map((at, i) => ({ agent: 'ahead', seq: i + 1, tool: 'fs.write', at }));
  state.toolTags = { 'fs.write': ['file-write'] };
  return state;
}

function checkInput(t: ReturnType<typeof task>, state: PolicyState, nowMs: number): CheckPolicyInput {
  return { task: t, workflowId: 'wf-ahead', depth: 0, chain: [], tool: write.tool, args: write.args, priorOutputs: [], priorSteps: [], state, now: new Date(nowMs).toISOString() };
}

/** The decision made ahead at `atMs`, and for every workflow time in `times`: accepted, and what the workflow's own check decides then. */
async function acrossTimes(policies: string[], state: PolicyState, atMs: number, times: number[]) {
  const t = task(policies);
  const realNow = Date.now;
  Date.now = () => atMs;
  let ahead;
  try {
    ahead = await precheckPolicy(noDeps, { workflowId: 'wf-ahead', task: t, taskRef: `ref-${policies.join('|')}`, action: write, transcriptRef: null, place: { depth: 0, chain: [] }, state });
  } finally {
    Date.now = realNow;
  }
  if (ahead?.precheck === undefined) throw new Error('no decision made ahead');
  const rows = [];
  for (const tW of times) {
    const input = checkInput(t, state, tW);
    const digest = policyInputDigest({ ...input, taskDigest: taskDigestOf(t) });
    const own = await decidePolicyCheck(noDeps, input);
    rows.push({ tW, accepted: precheckHolds(ahead.precheck, digest, tW), own: own.decision.decision });
  }
  return { ahead: ahead.decision.decision, precheck: ahead.precheck, rows };
}

describe('the clock', () => {
  const t0 = Date.UTC(2026, 10, 30, 12, 0, 0);
  // Every 250 ms over three minutes around the activity's time, and both sides of each boundary.
  const grid = (from: number, to: number) => Array.from({ length: Math.floor((to - from) / 250) + 1 }, (_, i) => from + i * 250);

  const cases: [string, string[], PolicyState, number, { refusedAt: number; own: string }][] = [
    // Two writes at t0+5s and t0+20s; the third is denied until the first leaves the window at t0+65s.
    ['a rate window: a call leaving it lets the next through', ['never make more than 2 calls of fs.write per minute'], stateWithCalls([t0 + 5_000, t0 + 20_000]), t0 + 30_000, { refusedAt: t0 + 65_000, own: 'allow' }],
    ['a rate window: a call leaving at the exact boundary', ['never make more than 2 calls of fs.write per minute'], stateWithCalls([t0 + 5_000, t0 + 20_000]), t0 + 64_999, { refusedAt: t0 + 65_000, own: 'allow' }],
    // Allowed until 12:01 UTC, denied from then on.
    ['a time-of-day window: its end', ['never run fs.write outside 11:00-12:01 UTC'], emptyPolicyState(), t0 + 59_999, { refusedAt: t0 + MINUTE, own: 'deny' }],
    ['a time-of-day window: its start', ['never run fs.write outside 12:01-13:00 UTC'], emptyPolicyState(), t0 + 59_500, { refusedAt: t0 + MINUTE, own: 'allow' }],
  ];

  it.each(cases)('%s: never accepted where the workflow decides otherwise', async (_what, policies, state, atMs, boundary) => {
    const { ahead, precheck, rows } = await acrossTimes(policies, state, atMs, [...grid(atMs - 2 * MINUTE, atMs + 2 * MINUTE), boundary.refusedAt - 1, boundary.refusedAt]);
    for (const row of rows) if (row.accepted) expect({ tW: row.tW, decision: row.own }).toEqual({ tW: row.tW, decision: ahead });
    // Accepted at its own time, refused from the boundary on, where the workflow's own check decides otherwise.
    expect(rows.find((r) => r.tW === atMs)).toMatchObject({ accepted: true, own: ahead });
    expect(precheck.validUntilMs).toBeLessThanOrEqual(boundary.refusedAt);
    expect(rows.find((r) => r.tW === boundary.refusedAt)).toMatchObject({ accepted: false, own: boundary.own });
    expect(boundary.own).not.toBe(ahead);
    // A workflow clock behind the activity's (another host's clock) is refused once it is before the interval.
    expect(rows.find((r) => r.tW === precheck.validFromMs - 1)?.accepted ?? false).toBe(false);
  });

  it('rules that read no clock: the decision holds at any time', async () => {
    const { precheck, rows } = await acrossTimes(['deny fs.write when argument path contains "secret"'], emptyPolicyState(), t0, [t0 - 86_400_000, t0 + 86_400_000 * 365]);
    expect(rows.every((r) => r.accepted)).toBe(true);
    expect(clockReadingOf(task(['deny fs.write when argument path contains "secret"']))).toEqual({ minute: false, rateWindowsMs: [] });
    expect(precheck.validUntilMs - precheck.validFromMs).toBeGreaterThan(86_400_000 * 365);
  });

  it('reads every window of the task and the minute', () => {
    expect(clockReadingOf(task(['never make more than 2 calls of fs.write per minute', 'never call fs.write more than 30 times per hour']))).toEqual({ minute: true, rateWindowsMs: expect.arrayContaining([MINUTE, 60 * MINUTE]) });
    expect(clockReadingOf(task(['never run fs.write outside 09:00-17:00 UTC'])).minute).toBe(true);
  });

  it('validity: the same minute, no call entering or leaving a window', () => {
    const state = stateWithCalls([t0 + 1_000]);
    expect(validityOf(t0 + 30_000, state, { minute: true, rateWindowsMs: [10_000] })).toEqual({ validFromMs: t0 + 11_000, validUntilMs: t0 + MINUTE });
    expect(validityOf(t0 + 5_000, state, { minute: true, rateWindowsMs: [10_000] })).toEqual({ validFromMs: t0 + 1_000, validUntilMs: t0 + 11_000 });
    // A call recorded after the activity's time (a clock ahead) starts a new interval.
    expect(validityOf(t0 + 500, state, { minute: true, rateWindowsMs: [10_000] }).validUntilMs).toBe(t0 + 1_000);
  });
});

describe('the digest', () => {
  const t = task(['never make more than 2 calls of fs.write per minute']);
  const base = { ...checkInput(t, stateWithCalls([1_000]), 5_000), taskDigest: taskDigestOf(t) };
  const changes: [string, Partial<typeof base>][] = [
    ['the task', { taskDigest: taskDigestOf(task(['never make more than 3 calls of fs.write per minute'])) }],
    ['the workflow', { workflowId: 'wf-other' }],
    ['the depth', { depth: 1 }],
    ['the agent chain', { chain: ['parent'] }],
    ['the tool', { tool: 'fs.read' }],
    ['an argument', { args: { ...write.args, content: 'b' } }],
    ['an earlier output', { priorSteps: [{ output: 'x' }] }],
    ['an earlier output\'s trust label', { priorSteps: [{ output: 'x', trust: 'trusted' }] }],
    ['the transcript head', { priorOutputsRef: 'f'.repeat(64) }],
    ['the seed', { seed: { userTexts: ['pay bob'], trustedAtoms: [] } }],
    ['the policy state (a call counted)', { state: stateWithCalls([1_000, 2_000]) }],
    ['the policy state (a call\'s time)', { state: stateWithCalls([1_001]) }],
  ];
  it.each(changes)('changes with %s', (_what, change) => {
    expect(policyInputDigest({ ...base, ...change })).not.toBe(policyInputDigest(base));
  });
  it('does not change with the clock or member order', () => {
    const reordered = Object.fromEntries(Object.entries(base).reverse()) as typeof base;
    expect(policyInputDigest({ ...reordered, now: new Date(99_000).toISOString() } as typeof base)).toBe(policyInputDigest(base));
  });
});

/**
 * The digest's form is frozen under `warden-policy-precheck` (recorded histories recompute it on
 * replay): whatever makes it faster must give the same hex as the form written out here, SHA-256
 * of the UTF-8 of the stable JSON as first written (test/recovery/reference-stable-json.ts), for
 * any text the inputs may carry (non-ASCII, astral, lone surrogates, escapes).
 */
describe('the digest form', () => {
  const frozenForm = (inputs: PolicyInputs) =>
    bytesToHex(
      sha256(
        utf8ToBytes(
          referenceStableJson({
            v: 1,
            task: inputs.taskDigest,
            workflowId: inputs.workflowId,
            depth: inputs.depth,
            chain: inputs.chain,
            tool: inputs.tool,
            args: inputs.args,
            priorOutputs: inputs.priorOutputs,
            priorSteps: inputs.priorSteps ?? null,
            priorOutputsRef: inputs.priorOutputsRef ?? null,
            seed: inputs.seed ?? null,
            state: inputs.state,
          }),
        ),
      ),
    );
  const text = fc.oneof(fc.string(), fc.string({ unit: 'grapheme' }), fc.string({ unit: 'binary' }), fc.string({ unit: fc.integer({ min: 0xd7f0, max: 0xe010 }).map((c) => String.fromCharCode(c)) }));
  const t = task(['never make more than 2 calls of fs.write per minute']);
  const base = { ...checkInput(t, stateWithCalls([1_000, 2_000]), 5_000), taskDigest: taskDigestOf(t) };

  it('equals the frozen form for arguments, outputs and agent names of any text', () => {
    fc.assert(
      fc.property(text, text, text, fc.jsonValue(), (arg, output, name, value) => {
        const inputs = { ...base, chain: [name], args: { ...base.args, [arg]: value, content: arg }, priorSteps: [{ output }, { output: value, trust: 'untrusted' as const }] };
        expect(policyInputDigest(inputs)).toBe(frozenForm(inputs));
      }),
      { numRuns: 500 },
    );
  });

  it('equals the frozen form for a fixed input, the task digest too', () => {
    expect(policyInputDigest(base)).toBe(frozenForm(base));
    expect(taskDigestOf(t)).toBe(bytesToHex(sha256(utf8ToBytes(referenceStableJson(t)))));
  });
});
