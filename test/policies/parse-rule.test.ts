/**
 * The controlled-English grammar: every rule form reads into the compiled kind and fields the
 * table says; unreadable sentences fail with ERR_POLICY_UNREADABLE, pointing at the word where
 * reading failed and suggesting the nearest forms.
 */
import { describe, expect, it } from 'vitest';
import { PolicyParseError } from '../../errors';
import { compileRule, validateCedarRules, type CompiledRule } from '../../policies/engine/compile-rule';
import { parseRule } from '../../policies/engine/parse-rule';
import { RULE_TEMPLATES } from '../../policies/engine/rule-templates';

/** Fields a compiled rule must have; `cedar` lists fragments its Cedar text must contain. */
interface Expected {
  kind: 'cedar' | 'stateful';
  form: CompiledRule['form'];
  effect: 'allow' | 'deny' | 'approval';
  cedar?: string[];
  spec?: Record<string, unknown>;
}

const FORMS: [string, Expected][] = [
  // allow / deny / approval for tools and families
  ['allow fs.read', { kind: 'cedar', form: 'tool', effect: 'allow', cedar: ['permit', 'context.tool == "fs.read"'] }],
  ['allow only file tools and sql.query', { kind: 'cedar', form: 'tool', effect: 'deny', cedar: ['!(context.tool == "sql.query" || context.tags.containsAny(["file"]))'] }],
  ['deny fs.*', { kind: 'cedar', form: 'tool', effect: 'deny', cedar: ['forbid', 'context.tool like "fs.*"'] }],
  ['deny file tools', { kind: 'cedar', form: 'tool', effect: 'deny', cedar: ['context.tags.containsAny(["file"])'] }],
  ['block network tools for sub-agents', { kind: 'cedar', form: 'tool', effect: 'deny', cedar: ['context.tags.containsAny(["network"])', 'context.depth >= 1'] }],
  ['deny tool word-count for agent scribe', { kind: 'cedar', form: 'tool', effect: 'deny', cedar: ['context.tool == "word-count"', 'context.agent == "scribe"'] }],
  ['require approval for network tools', { kind: 'cedar', form: 'tool', effect: 'approval', cedar: ['@decision("approval")', 'context.tags.containsAny(["network"])'] }],
  ['email tools require approval', { kind: 'cedar', form: 'tool', effect: 'approval', cedar: ['context.tags.containsAny(["email"])'] }],
  ['never use sql.exec without explicit approval', { kind: 'cedar', form: 'tool', effect: 'approval', cedar: ['context.tool == "sql.exec"'] }],
  ['deny sql.exec when argument sql contains "drop table"', { kind: 'cedar', form: 'tool', effect: 'deny', cedar: ['resource.hasTag("/sql")', 'like "*drop table*"'] }],
  ['require approval for any network write', { kind: 'cedar', form: 'tool', effect: 'approval', cedar: ['context.networkWrite', '!context.pending.contains("method")'] }],
  // counts and amounts in one call
  ['never delete more than 10 rows without explicit approval', { kind: 'cedar', form: 'limit', effect: 'approval', cedar: ['context.rows > 10', 'context.operation == "delete"'] }],
  ['never change more than 500 rows', { kind: 'cedar', form: 'limit', effect: 'deny', cedar: ['context.rows > 500'] }],
  ['never spend over $100', { kind: 'cedar', form: 'limit', effect: 'deny', cedar: ['context.amountCents > 10000'] }],
  ['never spend more than 99.50 EUR', { kind: 'cedar', form: 'limit', effect: 'deny', cedar: ['context.amountCents > 9950'] }],
  ['never write more than 10 MB in one call', { kind: 'cedar', form: 'limit', effect: 'deny', cedar: ['context.bytes > 10485760'] }],
  ['never write more than 5 files in one call', { kind: 'cedar', form: 'limit', effect: 'deny', cedar: ['context.files > 5'] }],
  // counts summed over the task
  ['never write more than 5 files', { kind: 'stateful', form: 'limit', effect: 'deny', spec: { type: 'total', metric: 'files', max: 5, scope: 'tree' } }],
  ['never write more than 5 files per agent', { kind: 'stateful', form: 'limit', effect: 'deny', spec: { type: 'total', metric: 'files', max: 5, scope: 'agent' } }],
  // paths and hosts
  ['never write outside /workspace', { kind: 'cedar', form: 'path', effect: 'deny', cedar: ['context.tags.containsAny(["file-write"])', 'context.pathAccess == "write"', '!(context.path == "/workspace" || context.path like "/workspace/*")'] }],
  ['never read inside /workspace/secrets or /etc', { kind: 'cedar', form: 'path', effect: 'deny', cedar: ['context.tags.containsAny(["file-read"])', 'context.path like "/etc/*"'] }],
  ['never fetch from any host except api.example.com', { kind: 'cedar', form: 'host', effect: 'deny', cedar: ['!(context.host == "api.example.com")'] }],
  ['never fetch from any host except api.example.com and *.corp.example', { kind: 'cedar', form: 'host', effect: 'deny', cedar: ['context.host like "*.corp.example"'] }],
  ['never connect to pastebin.com', { kind: 'cedar', form: 'host', effect: 'deny', cedar: ['context.host == "pastebin.com"'] }],
  // rates
  ['never make more than 20 calls per minute', { kind: 'stateful', form: 'rate', effect: 'deny', spec: { type: 'rate', max: 20, windowMs: 60_000, scope: 'tree' } }],
  ['never make more than 20 calls of http.fetch per minute', { kind: 'stateful', form: 'rate', effect: 'deny', spec: { type: 'rate', max: 20, windowMs: 60_000 } }],
  ['never call sql.exec more than 30 times per hour per agent', { kind: 'stateful', form: 'rate', effect: 'deny', spec: { type: 'rate', max: 30, windowMs: 3_600_000, scope: 'agent' } }],
  ['no more than 10 calls of network tools per second', { kind: 'stateful', form: 'rate', effect: 'deny', spec: { type: 'rate', max: 10, windowMs: 1_000 } }],
  // time windows
  ['never run sql.exec outside 09:00-17:00 UTC', { kind: 'cedar', form: 'time-window', effect: 'deny', cedar: ['!(context.minuteOfDay >= 540 && context.minuteOfDay < 1020)'] }],
  ['never run sql.exec outside 09:00-17:00 UTC+2', { kind: 'cedar', form: 'time-window', effect: 'deny', cedar: ['context.minuteOfDay >= 420 && context.minuteOfDay < 900'] }],
  ['never run sql.exec outside 22:00 to 06:00 UTC without approval', { kind: 'cedar', form: 'time-window', effect: 'approval', cedar: ['context.minuteOfDay >= 1320 || context.minuteOfDay < 360'] }],
  // sub-agents
  ['sub-agents may not spawn sub-agents', { kind: 'cedar', form: 'tool', effect: 'deny', cedar: ['context.kind == "spawn"', 'context.depth >= 1'] }],
  ['no more than 3 levels of sub-agents', { kind: 'cedar', form: 'subagent-depth', effect: 'deny', cedar: ['context.kind == "spawn"', 'context.depth >= 3'] }],
  ['never spawn sub-agents more than 2 levels deep', { kind: 'cedar', form: 'subagent-depth', effect: 'deny', cedar: ['context.depth >= 2'] }],
  ['sub-agents may not use payment tools', { kind: 'cedar', form: 'tool', effect: 'deny', cedar: ['context.tags.containsAny(["payment"])', 'context.depth >= 1'] }],
  ['never spawn more than 5 sub-agents across the task', { kind: 'stateful', form: 'limit', effect: 'deny', spec: { type: 'total', metric: 'calls', max: 5, scope: 'tree' } }],
  // budgets across the task and its sub-agents
  ['never spend more than $500 across the task and its sub-agents', { kind: 'stateful', form: 'limit', effect: 'deny', spec: { type: 'total', metric: 'amount', max: 50_000, scope: 'tree' } }],
  ['never make more than 100 tool calls across the task', { kind: 'stateful', form: 'limit', effect: 'deny', spec: { type: 'total', metric: 'calls', max: 100, scope: 'tree' } }],
  ['never delete more than 1,000 rows across the whole task', { kind: 'stateful', form: 'limit', effect: 'deny', spec: { type: 'total', metric: 'rows', max: 1000, rowsOperation: 'delete' } }],
  // intent binding
  ['never send email to an address the user did not give without approval', { kind: 'stateful', form: 'intent', effect: 'approval', spec: { type: 'intent', value: 'email' } }],
  ['never pay a recipient that is not in the intent', { kind: 'stateful', form: 'intent', effect: 'deny', spec: { type: 'intent', value: 'recipient' } }],
  ['never fetch a URL the user did not give', { kind: 'stateful', form: 'intent', effect: 'deny', spec: { type: 'intent', value: 'url' } }],
  ['never call crm.update with an email address that was not given by the user', { kind: 'stateful', form: 'intent', effect: 'deny', spec: { type: 'intent', value: 'email' } }],
];

describe('rule forms', () => {
  it.each(FORMS)('%s', (sentence, expected) => {
    const rule = compileRule(sentence, 'test:1');
    expect({ kind: rule.kind, form: rule.form, effect: rule.effect }).toEqual({ kind: expected.kind, form: expected.form, effect: expected.effect });
    if (rule.kind === 'cedar') {
      expect(rule.cedar).toContain('@id("test:1")');
      for (const fragment of expected.cedar ?? []) expect(rule.cedar).toContain(fragment);
    } else {
      expect(rule.spec).toMatchObject(expected.spec ?? {});
    }
  });

  it('every compiled Cedar policy validates against warden.cedarschema', () => {
    const rules = FORMS.map(([sentence], i) => compileRule(sentence, `form:${i}`));
    expect(() => validateCedarRules(rules)).not.toThrow();
  });

  it('reads every template example', () => {
    for (const { example } of RULE_TEMPLATES) expect(() => parseRule(example), example).not.toThrow();
  });

  it('tool families become effect tags and named tools stay literal', () => {
    const rule = parseRule('deny file tools, http.fetch or tool word-count');
    expect(rule.form === 'tool' && rule.tools.patterns).toEqual(['http.fetch', 'word-count']);
    expect(rule.form === 'tool' && rule.tools.tags).toEqual(['file']);
  });

  it('paths in rules are normalised', () => {
    const rule = parseRule('never write outside /workspace/./out/../out/');
    expect(rule.form === 'path' && rule.paths).toEqual(['/workspace/out']);
  });
});

function unreadable(sentence: string): PolicyParseError {
  try {
    parseRule(sentence);
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyParseError);
    return error as PolicyParseError;
  }
  throw new Error(`"${sentence}" was read`);
}

describe('unreadable sentences', () => {
  const CASES: [string, number, string, string][] = [
    // sentence, column, word, a suggestion that must be offered
    ['nevr delete more than 10 rows', 1, 'nevr', 'never delete more than <n> rows'],
    ['never delet more than 10 rows without approval', 7, 'delet', 'never delete more than <n> rows without explicit approval'],
    ['never delete more than ten rows', 24, 'ten', 'never delete more than <n> rows'],
    ['never run sql.exec outside 09:00-17:00', 39, '', 'never run <tools> outside <hh:mm>-<hh:mm> UTC'],
    ['never fetch from any host except', 33, '', 'never fetch from any host except <hosts>'],
    ['sub-agents may spawn sub-agents', 16, 'spawn', 'sub-agents may not spawn sub-agents'],
    ['never send email to an address the user gave', 41, 'gave', 'never send email to an address the user did not give'],
    ['allow fs.read without approval', 15, 'without', 'allow <tools>'],
    ['never make more than 5 calls in one call', 37, 'call', 'never make more than <n> calls per minute'],
    ['never fetch more than 10 rows', 26, 'rows', 'never delete more than <n> rows'],
    ['deny wordcount', 6, 'wordcount', 'deny <tools>'],
  ];

  it.each(CASES)('%s', (sentence, column, word, suggestion) => {
    const error = unreadable(sentence);
    expect(error.code).toBe('ERR_POLICY_UNREADABLE');
    expect(error.column).toBe(column);
    expect(error.details.word).toBe(word);
    expect(error.message).toContain(`"${sentence}"`);
    // the caret line points at the column
    const lines = error.message.split('\n');
    const caret = lines.find((l) => l.trim().startsWith('^')) as string;
    expect(caret.indexOf('^') - 2).toBe(column - 1);
    expect(caret.trim().length).toBe(Math.max(1, word.length));
    expect(error.suggestions).toContain(suggestion);
    expect(error.suggestions.length).toBeGreaterThan(0);
  });

  it('says what was expected at the failing word', () => {
    const error = unreadable('never delete more than 10 rowz');
    expect(error.column).toBe(27);
    expect(error.expected.join(' ')).toContain('rows');
    expect(error.message).toMatch(/column 27, at "rowz": expected/);
  });

  it('quotes the source of a pack rule', () => {
    try {
      parseRule('never frobnicate', { source: 'policies/x/rules.txt:3' });
    } catch (error) {
      expect((error as PolicyParseError).message).toContain('(policies/x/rules.txt:3)');
      expect((error as PolicyParseError).details.source).toBe('policies/x/rules.txt:3');
      return;
    }
    throw new Error('read');
  });

  it('never guesses a time zone, a unit or a word that is not in the grammar', () => {
    for (const s of ['never run sql.exec outside 09:00-17:00 CET', 'never delete more than 10', 'never delete more than 10 rows please', 'be nice', '']) {
      expect(unreadable(s).code).toBe('ERR_POLICY_UNREADABLE');
    }
  });

  it('reports an unclosed quote at the quote', () => {
    const error = unreadable('deny sql.exec when argument sql contains "drop');
    expect(error.column).toBe(42);
  });
});
