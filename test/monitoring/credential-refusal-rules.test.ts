/**
 * Response rules about a task's credentials being refused (issue 17): a call refused
 * `ERR_CREDENTIAL_GRANT_UNKNOWN` (the worker has no record of the task's grant: another state
 * folder issued it, or it expired and was pruned, a revoked one included) scores 100 under the
 * signal `grant-unknown`, but a rule written for revoked credentials ("remediate the task when its
 * credentials are revoked") matched `credentials-revoked` only and did not fire: the task the user
 * asked to stop on a refused credential went on. A user who writes that rule means "when its
 * credentials stop being honoured": it now covers both signals; "when its grant is unknown" names
 * the unknown grant alone. A rule recorded before (no `also`, in an old history) keeps matching
 * its one signal, so old histories replay as they ran.
 *
 * Real parts: the real parser, scorer and rule evaluation (the workflow's own code).
 */
import { describe, expect, it } from 'vitest';
import { featuresOfAction, type ActionOutcome } from '../../monitoring/action-features';
import { emptyHistory, recordOutcome, recordProposed } from '../../monitoring/monitor-history';
import { fireRules, type ResponseRule } from '../../monitoring/response-rule';
import { scoreOf, scoreOutcome, scoreProposed } from '../../monitoring/score-action';
import { parseResponseRule } from '../../policies/engine/parse-response-rule';

const T0 = Date.parse('2026-12-01T10:00:00Z');

/** The rules (by id) that fire for one call with `outcome`, scored as the workflow scores it. */
function firedFor(rules: ResponseRule[], outcome: ActionOutcome): string[] {
  const history = emptyHistory();
  const features = featuresOfAction('fs.read', { path: 'notes.txt' });
  const event = recordProposed(history, features, 0, T0);
  const before = scoreProposed(history, undefined, features, T0);
  recordOutcome(event, outcome);
  const reasons = [...before, ...scoreOutcome(history, undefined, features, outcome, T0, before)];
  return fireRules(rules, { history, baseline: undefined, features, score: scoreOf(reasons), reasons, now: T0 }, {}, new Set()).map((f) => f.id);
}

const rule = (sentence: string): ResponseRule => parseResponseRule(sentence, { id: sentence });

describe('rules on refused credentials', () => {
  const REVOKED: ActionOutcome = { failed: 'ERR_CREDENTIAL_REVOKED' };
  const UNKNOWN: ActionOutcome = { failed: 'ERR_CREDENTIAL_GRANT_UNKNOWN' };
  const OTHER: ActionOutcome = { failed: 'ERR_TOOL_FAILED' };
  it.each<[string, ActionOutcome, boolean]>([
    ['remediate the task when its credentials are revoked', REVOKED, true],
    ['remediate the task when its credentials are revoked', UNKNOWN, true],
    ['remediate the task when its credentials are revoked', OTHER, false],
    ['block the task when its credentials are refused', REVOKED, true],
    ['block the task when its credentials are refused', UNKNOWN, true],
    ['alert when its grant is unknown', UNKNOWN, true],
    ['alert when its grant is unknown', REVOKED, false],
  ])('"%s" on %o fires: %s', (sentence, outcome, fires) => {
    expect(firedFor([rule(sentence)], outcome)).toEqual(fires ? [sentence] : []);
  });

  it('a rule recorded before (no `also`) matches its one signal only: old histories replay as they ran', () => {
    const recorded: ResponseRule = { id: 'old', sentence: 'remediate the task when its credentials are revoked', response: 'remediate', trigger: { kind: 'signal', signal: 'credentials-revoked' } };
    expect(firedFor([recorded], REVOKED)).toEqual(['old']);
    expect(firedFor([recorded], UNKNOWN)).toEqual([]);
  });
});
