/**
 * Finding (issue 17 area, response rules; severity low): since b9ce22d a rule written for revoked
 * credentials ("block the task when its credentials are revoked", or "... are refused") is parsed
 * as `credentials-revoked` also `grant-unknown`, and `triggerHolds` fires on either. But
 * `describeTrigger` (policies/engine/parse-response-rule.ts), what `warden policy compile` prints
 * to tell the user what a rule does, reads only `trigger.signal`:
 *
 *   pk:1  block the task when its credentials are revoked
 *     response rule, blocks the task ... when the action's score has the signal credentials-revoked
 *
 * so the compiled explanation says the rule matches less than it does: a user checking what a
 * block rule will do is not told that a grant unknown to the worker (another state folder, a
 * pruned grant) blocks and rolls back the task too. The alert details use the same text.
 *
 * Verdict: FIXED (was open). The fix followed the suggestion: describeTrigger names every signal of `also`
 * ("... has the signal credentials-revoked or grant-unknown"); a table over every trigger the
 * parser can produce, checking each signal `triggerHolds` matches appears in its description.
 */
import { expect, it } from 'vitest';
import { describeTrigger, parseResponseRule } from '../../policies/engine/parse-response-rule';
import { triggerHolds } from '../../monitoring/response-rule';

it.each(['block the task when its credentials are revoked', 'alert when its credentials are refused'])('"%s" is described with every signal it fires on', (sentence) => {
  const rule = parseResponseRule(sentence);
  // It does fire on grant-unknown (the behaviour of b9ce22d) ...
  const ctx = { reasons: [{ signal: 'grant-unknown', points: 100, detail: 'grant unknown' }] } as unknown as Parameters<typeof triggerHolds>[1];
  expect(triggerHolds(rule.trigger, ctx)).toBe('grant unknown');
  // ... so what `warden policy compile` says it does must name it.
  expect(describeTrigger(rule.trigger)).toContain('grant-unknown');
});
