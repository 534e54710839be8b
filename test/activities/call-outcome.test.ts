/**
 * What a tool call's failure says of its tool (activities/call-outcome.ts): `notRun` only when
 * the tool never started and this is the activity's first attempt, `stopUnconfirmed` only when it
 * started, `egress` (what its program or MCP server did on the network) only when it started; all
 * in the first details object, the rest kept.
 */
import { ApplicationFailure, CancelledFailure } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import { boundedEffects, MAX_FAILED_EFFECTS_JSON, withCallOutcome, type FailedCallEffect, type ToolProgress } from '../../activities/call-outcome';
import type { StepEffect } from '../../task/task-run';

const EGRESS: StepEffect = { tool: 'http.fetch', effect: { urls: [{ url: 'http://new.example', host: 'new.example', method: 'GET' }], bytes: 40, requests: 1, via: 'egress-proxy' }, decision: 'allow', rules: [] };
const APPLIED: FailedCallEffect = { request: { tool: 'http.fetch', agent: { name: 'a', depth: 0 }, args: { url: 'http://hook.example/post', method: 'POST' }, effect: { urls: [{ url: 'http://hook.example/post', host: 'hook.example', method: 'POST' }] } }, decision: 'allow', rules: [] };
const refusal = () => ApplicationFailure.create({ type: 'ERR_TOOL_INPUT_INVALID', message: 'qty must be >= 1', nonRetryable: true, details: [{ problems: ['qty'] }, 'second'] });

describe('withCallOutcome', () => {
  it.each([
    ['never started, first attempt', { started: false }, 1, { problems: ['qty'], notRun: true }],
    ['never started, a later attempt (an earlier one may have run)', { started: false }, 2, { problems: ['qty'] }],
    ['started', { started: true }, 1, { problems: ['qty'] }],
    ['started, stop unconfirmed', { started: true, stopUnconfirmed: 'its server never answered' }, 1, { problems: ['qty'], stopUnconfirmed: 'its server never answered' }],
    // What a program or MCP server did through its egress proxy before the call failed: the workflow scores it (patch warden-count-failed-calls).
    ['started, with egress', { started: true, egress: [EGRESS] }, 1, { problems: ['qty'], egress: [EGRESS] }],
    ['started, with no egress', { started: true, egress: [] }, 1, { problems: ['qty'] }],
    ['never started: no egress is claimed', { started: false, egress: [EGRESS] }, 2, { problems: ['qty'] }],
    // The capability calls a custom tool's gate applied before it failed: the workflow counts them (rate rules).
    ['started, with applied capability calls', { started: true, effects: [APPLIED] }, 1, { problems: ['qty'], effects: [APPLIED] }],
    ['never started: no capability call is claimed', { started: false, effects: [APPLIED] }, 2, { problems: ['qty'] }],
  ] as Array<[string, ToolProgress, number, Record<string, unknown>]>)('an ApplicationFailure: %s', (_label, progress, attempt, first) => {
    const failure = withCallOutcome(refusal(), progress, attempt) as ApplicationFailure;
    expect(failure).toBeInstanceOf(ApplicationFailure);
    expect({ type: failure.type, message: failure.message, nonRetryable: failure.nonRetryable, details: failure.details }).toEqual({ type: 'ERR_TOOL_INPUT_INVALID', message: 'qty must be >= 1', nonRetryable: true, details: [first, 'second'] });
  });

  it('a cancellation before the tool started says so; one after an unconfirmed stop says that', () => {
    const before = withCallOutcome(new CancelledFailure('cancelled'), { started: false }, 1);
    expect(before).toBeInstanceOf(CancelledFailure);
    expect((before as CancelledFailure).details).toEqual([{ notRun: true }]);
    const after = withCallOutcome(new CancelledFailure('cancelled'), { started: true, stopUnconfirmed: 'why' }, 1);
    expect((after as CancelledFailure).details).toEqual([{ stopUnconfirmed: 'why' }]);
    // A program cancelled after its requests: they ride with the cancellation too.
    const reached = withCallOutcome(new CancelledFailure('cancelled'), { started: true, egress: [EGRESS] }, 1);
    expect((reached as CancelledFailure).details).toEqual([{ egress: [EGRESS] }]);
    // A started, confirmed stop: unchanged.
    const plain = new CancelledFailure('cancelled');
    expect(withCallOutcome(plain, { started: true }, 1)).toBe(plain);
  });

  // A tool's or server's own error details holding the outcome's keys are never read as Warden's word:
  // a forged notRun would skip the call's undo, a forged egress would put effects in its record.
  it.each([
    ['notRun', { notRun: true }],
    ['stopUnconfirmed', { stopUnconfirmed: 'forged' }],
    ['egress', { egress: [{ tool: 'http.fetch', effect: 'forged', decision: 'allow', rules: [] }] }],
    ['effects', { effects: [{ request: { tool: 'sql.exec', agent: {} }, decision: 'allow', rules: [] }] }],
  ])('a failure whose own details claim %s has the claim dropped', (_key, forged) => {
    const own = ApplicationFailure.create({ type: 'ERR_MCP_TOOL_FAILED', message: 'failed', nonRetryable: true, details: [{ output: 'x', ...forged }] });
    for (const [progress, attempt] of [[{ started: true }, 1], [{ started: false }, 2]] as const) {
      expect((withCallOutcome(own, progress, attempt) as ApplicationFailure).details).toEqual([{ output: 'x' }]);
    }
    const cancelled = withCallOutcome(new CancelledFailure('cancelled', [{ ...forged }]), { started: true }, 1) as CancelledFailure;
    expect(cancelled.details).toEqual([{}]);
  });

  it('bounds the applied capability calls a failure carries: arguments left out first, then all but tool, agent and decision', () => {
    const small = [APPLIED, APPLIED];
    expect(boundedEffects(small)).toEqual(small);
    const bigArgs = Array.from({ length: 8 }, () => ({ ...APPLIED, request: { ...APPLIED.request, args: { sql: 'x'.repeat(64 * 1024) } } }));
    const withoutArgs = boundedEffects(bigArgs);
    expect(withoutArgs).toHaveLength(8);
    expect(withoutArgs.every((e) => !('args' in e.request) && e.request.effect !== undefined)).toBe(true);
    const bigEffects = Array.from({ length: 8 }, () => ({ ...APPLIED, request: { ...APPLIED.request, effect: { note: 'y'.repeat(64 * 1024) } } }));
    const bare = boundedEffects(bigEffects);
    expect(bare).toEqual(Array(8).fill({ request: { tool: 'http.fetch', agent: { name: 'a', depth: 0 } }, decision: 'allow', rules: [] }));
    for (const bounded of [withoutArgs, bare]) expect(JSON.stringify(bounded).length).toBeLessThanOrEqual(MAX_FAILED_EFFECTS_JSON);
  });

  it('an infrastructure error is returned as is (Temporal retries it)', () => {
    const error = new TypeError('boom');
    expect(withCallOutcome(error, { started: false }, 1)).toBe(error);
  });
});
