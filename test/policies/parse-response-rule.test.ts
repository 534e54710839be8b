/**
 * The response-rule grammar: every form reads into the response and trigger the table says; a
 * policy sentence is never taken for a response rule (and the reverse); unreadable sentences fail
 * with ERR_POLICY_UNREADABLE pointing at the word and suggesting the nearest response forms.
 */
import { describe, expect, it } from 'vitest';
import { PolicyParseError } from '../../errors';
import { loadResponseRules } from '../../monitoring/load-response-rules';
import { isResponseRule, parseResponseRule, RESPONSE_TEMPLATES } from '../../policies/engine/parse-response-rule';
import { loadPolicyEngine } from '../../policies/engine/policy-engine';
import { parseTask } from '../../task/load-task-file';
import { REPO_ROOT } from '../support/warden-test-env';

const FORMS: [string, string, Record<string, unknown>][] = [
  // responses
  ['alert when the anomaly score is above 40', 'alert', { kind: 'score', above: 40 }],
  ['raise an alert when its anomaly score exceeds 50', 'alert', { kind: 'score', above: 50 }],
  ['alert on the task when it scores above 30', 'alert', { kind: 'score', above: 30 }],
  ['step up when the anomaly score is at least 61', 'step-up', { kind: 'score', above: 60 }],
  ['require approval for the next actions when the anomaly score is above 60', 'step-up', { kind: 'score', above: 60 }],
  ['require explicit approval for its next actions when it uses a new tool', 'step-up', { kind: 'signal', signal: 'new-tool' }],
  ['block the task when it is denied 5 times in a minute', 'block', { kind: 'denied', count: 5, windowMs: 60_000 }],
  ['block it when it is denied 3 times', 'block', { kind: 'denied', count: 3 }],
  ['block the task and roll it back when it is denied 5 times in a minute', 'remediate', { kind: 'denied', count: 5, windowMs: 60_000 }],
  ['block the task and remediate it when it fails 10 times within 30 seconds', 'remediate', { kind: 'failed', count: 10, windowMs: 30_000 }],
  ['block and roll back the task when it makes the same call 5 times in a row', 'remediate', { kind: 'identical-calls', count: 5 }],
  ['kill the task when it repeats the same call 8 times', 'remediate', { kind: 'identical-calls', count: 8 }],
  ['remediate the task when its credentials are revoked', 'remediate', { kind: 'signal', signal: 'credentials-revoked', also: ['grant-unknown'] }],
  ['block the task when its credentials are refused', 'block', { kind: 'signal', signal: 'credentials-revoked', also: ['grant-unknown'] }],
  ['alert when its grant is unknown', 'alert', { kind: 'signal', signal: 'grant-unknown' }],
  ['roll back the task when a sub-agent is blocked', 'remediate', { kind: 'signal', signal: 'subagent-blocked' }],
  // triggers
  ['alert when it contacts a new host', 'alert', { kind: 'signal', signal: 'new-host' }],
  ['alert when it reaches a host it never contacted before', 'alert', { kind: 'signal', signal: 'new-host' }],
  ['block the task when it sends data to a new host', 'block', { kind: 'signal', signal: 'new-host' }],
  ['alert when it fetches from an unknown host', 'alert', { kind: 'signal', signal: 'new-host' }],
  ['alert when it uses a tool it never used before', 'alert', { kind: 'signal', signal: 'new-tool' }],
  ['alert when it uses a new database', 'alert', { kind: 'signal', signal: 'new-database' }],
  ['alert when it runs a new kind of statement', 'alert', { kind: 'signal', signal: 'new-operation' }],
  ['alert when it spawns a new sub-agent', 'alert', { kind: 'signal', signal: 'new-subagent' }],
  ['alert when it sends tool output over the network', 'alert', { kind: 'signal', signal: 'tool-output-sent' }],
  ['block the task when it spawns more than 10 sub-agents', 'block', { kind: 'spawns', more: 10 }],
  ['block the task when it fans out to more than 4 sub-agents in a minute', 'block', { kind: 'spawns', more: 4, windowMs: 60_000 }],
  ['block the task when it makes more than 100 calls in a minute', 'block', { kind: 'calls', more: 100, windowMs: 60_000 }],
  ['alert when it makes more than 20 calls of sql.exec per hour', 'alert', { kind: 'calls', more: 20, windowMs: 3_600_000, tools: ['sql.exec'] }],
  ['block the task when it deletes more than 100 rows in a minute', 'block', { kind: 'rows', more: 100, operation: 'delete', windowMs: 60_000 }],
  ['alert when it changes more than 500 rows', 'alert', { kind: 'rows', more: 500 }],
  ['block the task when it deletes more than 10 times its usual rows', 'block', { kind: 'usual', metric: 'rows', factor: 10, operation: 'delete' }],
  ['alert when it writes more than 20 times its usual bytes', 'alert', { kind: 'usual', metric: 'bytes', factor: 20 }],
  ['alert when it sends more than 5 times the usual amount of data', 'alert', { kind: 'usual', metric: 'bytes', factor: 5 }],
];

describe('response rule forms', () => {
  it.each(FORMS)('%s', (sentence, response, trigger) => {
    expect(isResponseRule(sentence)).toBe(true);
    const rule = parseResponseRule(sentence, { id: 'test:1' });
    expect(rule).toMatchObject({ id: 'test:1', sentence, response });
    expect(rule.trigger).toEqual(trigger);
  });

  it('reads every template example', () => {
    for (const t of RESPONSE_TEMPLATES) expect(() => parseResponseRule(t.example), t.example).not.toThrow();
  });
});

describe('policy rules and response rules are told apart by how they start', () => {
  it.each([
    'block network tools for sub-agents',
    'deny destructive tools',
    'require approval for payment tools',
    'never delete more than 10 rows without explicit approval',
    'block sql.exec when argument sql contains "drop table"',
  ])('"%s" is a policy rule', (sentence) => {
    expect(isResponseRule(sentence)).toBe(false);
    expect(() => loadPolicyEngine({ sentences: [sentence] })).not.toThrow();
  });

  it('the policy engine skips response rules and the monitor skips policy rules, numbering both together', () => {
    const sentences = ['deny destructive tools', 'alert when it uses a new tool', 'never write outside /workspace'];
    expect(loadPolicyEngine({ sentences }).rules.map((r) => r.id)).toEqual(['task:1', 'task:3']);
    expect(loadResponseRules({ sentences }).map((r) => r.id)).toEqual(['task:2']);
  });

  it('the foundation pack holds response rules, read with their pack ids', () => {
    const rules = loadResponseRules({ packs: ['foundation'] });
    expect(rules.length).toBeGreaterThanOrEqual(5);
    expect(rules.every((r) => r.id.startsWith('foundation:') && r.source?.includes('rules.txt'))).toBe(true);
    expect(rules.map((r) => r.response)).toEqual(expect.arrayContaining(['alert', 'step-up', 'remediate']));
  });
});

describe('unreadable response rules', () => {
  it.each([
    ['block the task when it is denied many times', 'many', 'a number'],
    ['alert when the anomaly score is above 150', '150', 'from 0 to 99'],
    ['block the task when it is denied 0 times', '0', 'at least 1'],
    ['alert when it dances', 'dances', 'expected one of "is", "gets"'],
    ['alert if', '', 'it'],
    ['block the task when it is denied 5 times in a fortnight', 'fortnight', 'expected "second", "minute", "hour" or "day"'],
    ['step up', '', '"when"'],
  ])('%s', (sentence, word, expected) => {
    let error: unknown;
    try {
      parseResponseRule(sentence);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(PolicyParseError);
    const e = error as PolicyParseError;
    expect(e.code).toBe('ERR_POLICY_UNREADABLE');
    expect(e.details.word).toBe(word);
    expect(e.message).toContain(expected);
    expect(e.message).toMatch(/cannot read response rule: /);
    expect(e.suggestions.length).toBeGreaterThan(0);
  });

  it('a task file with an unreadable response rule is refused, naming the field and the word', () => {
    let error: unknown;
    try {
      parseTask(
        { user: 'u', intent: 'i', agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'x' }] } }, policies: ['deny destructive tools', 'block the task when it is denied lots'] },
        'bad.yaml',
        REPO_ROOT,
      );
    } catch (e) {
      error = e;
    }
    expect(error).toMatchObject({ code: 'ERR_TASK_FILE_INVALID' });
    expect((error as Error).message).toMatch(/policies\.1: cannot read response rule[\s\S]*"lots"/);
  });
});
