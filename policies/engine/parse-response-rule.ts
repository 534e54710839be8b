/**
 * Reads one response rule: what Warden does when an agent departs from normal, in the same
 * controlled English as policy rules ("block the task and roll it back when it is denied 5 times
 * in a minute"). Grammar: grammar.md, "Response rules"; what each response does:
 * monitoring/response-rule.ts.
 *
 * A sentence is a response rule when it starts with a response (`alert`, `raise an alert`,
 * `step up`, `require approval for the next actions`, `block the task`, `block it`, `kill`,
 * `remediate`, `roll back`); everything else is a policy rule (parse-rule.ts). Rule packs and a
 * task's `policies:` hold both kinds.
 *
 * Invariant, as for policy rules: a sentence is read completely into exactly one rule or rejected
 * with a PolicyParseError (ERR_POLICY_UNREADABLE) quoting it, pointing at the word where reading
 * failed and suggesting the nearest response forms. Nothing is skipped or guessed.
 */
import { PolicyParseError } from '../../errors';
import { unreadableSentence } from './unreadable-sentence';
import { ResponseRuleSchema, type Response, type ResponseRule, type ResponseTrigger } from '../../monitoring/response-rule';
import { nearestTemplates, type RuleTemplate } from './rule-templates';
import { tokenizeRule, TokenizeError, type Token } from './tokenize-rule';

/** The response rule forms, for suggestions and grammar.md. */
export const RESPONSE_TEMPLATES: readonly RuleTemplate[] = [
  { template: 'alert when the anomaly score is above <n>', example: 'alert when the anomaly score is above 40' },
  { template: 'require approval for the next actions when the anomaly score is above <n>', example: 'require approval for the next actions when the anomaly score is above 60' },
  { template: 'block the task when the anomaly score is above <n>', example: 'block the task when the anomaly score is above 80' },
  { template: 'block the task and roll it back when it is denied <n> times in a minute', example: 'block the task and roll it back when it is denied 5 times in a minute' },
  { template: 'block the task when it is denied <n> times in a minute', example: 'block the task when it is denied 5 times in a minute' },
  { template: 'alert when it fails <n> times in a minute', example: 'alert when it fails 5 times in a minute' },
  { template: 'block the task when it contacts a new host', example: 'block the task when it contacts a new host' },
  { template: 'alert when it uses a new tool', example: 'alert when it uses a new tool' },
  { template: 'block the task when it makes the same call <n> times in a row', example: 'block the task when it makes the same call 5 times in a row' },
  { template: 'block the task when it spawns more than <n> sub-agents', example: 'block the task when it spawns more than 10 sub-agents' },
  { template: 'block the task when it makes more than <n> calls in a minute', example: 'block the task when it makes more than 100 calls in a minute' },
  { template: 'block the task when it deletes more than <n> rows in a minute', example: 'block the task when it deletes more than 100 rows in a minute' },
  { template: 'block the task when it deletes more than <n> times its usual rows', example: 'block the task when it deletes more than 10 times its usual rows' },
  { template: 'alert when it writes more than <n> times its usual bytes', example: 'alert when it writes more than 10 times its usual bytes' },
  { template: 'alert when it sends tool output over the network', example: 'alert when it sends tool output over the network' },
  { template: 'remediate the task when its credentials are revoked', example: 'remediate the task when its credentials are revoked' },
  { template: 'block the task when a sub-agent is blocked', example: 'block the task when a sub-agent is blocked' },
];

const NO_MATCH = Symbol('no match');

class Rejected {
  constructor(
    readonly token: Token,
    readonly message: string,
  ) {}
}

const ACTION_STARTS = '"alert", "raise an alert", "step up", "require approval for the next actions", "block the task", "block it", "kill the task", "remediate the task" or "roll back the task"';
const UNITS: Readonly<Record<string, number>> = { second: 1_000, seconds: 1_000, minute: 60_000, minutes: 60_000, hour: 3_600_000, hours: 3_600_000, day: 86_400_000, days: 86_400_000 };
const HOST_NOUNS = ['host', 'hosts', 'domain', 'server', 'site'];
const ROW_VERBS: Readonly<Record<string, 'delete' | 'update' | 'insert' | undefined>> = {
  deletes: 'delete',
  removes: 'delete',
  changes: undefined,
  modifies: undefined,
  updates: 'update',
  inserts: 'insert',
};

class ResponseParser {
  private pos = 0;
  private furthest = 0;
  private expected: string[] = [];

  constructor(private readonly tokens: readonly Token[]) {}

  peek(offset = 0): Token {
    return this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)] as Token;
  }

  private note(label: string): void {
    if (this.pos > this.furthest) {
      this.furthest = this.pos;
      this.expected = [label];
    } else if (this.pos === this.furthest && !this.expected.includes(label)) this.expected.push(label);
  }

  fail(label?: string): never {
    if (label !== undefined) this.note(label);
    throw NO_MATCH;
  }

  accept(...words: string[]): Token | undefined {
    const t = this.peek();
    if (t.kind === 'word' && words.includes(t.lower)) {
      this.pos += 1;
      return t;
    }
    for (const w of words) this.note(`"${w}"`);
    return undefined;
  }

  phrase(...words: string[]): boolean {
    const saved = this.pos;
    for (const w of words) {
      if (this.accept(w) === undefined) {
        this.pos = saved;
        return false;
      }
    }
    return true;
  }

  expect(...words: string[]): Token {
    return this.accept(...words) ?? this.fail();
  }

  expectPhrase(...words: string[]): void {
    for (const w of words) this.expect(w);
  }

  attempt<T>(parse: () => T): T | undefined {
    const saved = this.pos;
    try {
      return parse();
    } catch (error) {
      if (error !== NO_MATCH) throw error;
      this.pos = saved;
      return undefined;
    }
  }

  number(label = 'a number'): number {
    const t = this.peek();
    if (t.kind !== 'number' || t.value === undefined) return this.fail(label);
    if (!Number.isInteger(t.value)) throw new Rejected(t, 'a whole number is needed here');
    this.pos += 1;
    return t.value;
  }

  get furthestToken(): Token {
    return this.tokens[Math.min(this.furthest, this.tokens.length - 1)] as Token;
  }

  get expectations(): string[] {
    return this.expected;
  }

  // --- rule ---------------------------------------------------------------------------------

  parse(): { response: Response; trigger: ResponseTrigger } {
    const response = this.parseAction();
    if (this.accept('when', 'if', 'whenever') === undefined) this.fail();
    const trigger = this.parseTrigger();
    if (this.peek().kind !== 'end') this.fail('the end of the rule');
    return { response, trigger };
  }

  private parseObject(required: boolean): void {
    if (this.accept('it') !== undefined) return;
    if (this.phrase('the', 'task') || this.phrase('the', 'agent') || this.phrase('this', 'task')) return;
    if (required) this.fail('"the task" or "it"');
  }

  /** "remediate [it]", "roll it back", "roll back [it]". */
  private parseRemediation(): void {
    if (this.accept('remediate', 'remediates') !== undefined) {
      this.parseObject(false);
      return;
    }
    this.expect('roll');
    if (this.accept('back') !== undefined) {
      this.parseObject(false);
      return;
    }
    this.parseObject(true);
    this.expect('back');
  }

  private parseAction(): Response {
    if (this.accept('alert') !== undefined) {
      if (this.accept('on', 'about') !== undefined) this.parseObject(true);
      return 'alert';
    }
    if (this.phrase('raise', 'an', 'alert') || this.phrase('raise', 'alert')) return 'alert';
    if (this.phrase('step', 'up')) {
      this.parseObject(false);
      return 'step-up';
    }
    if (this.accept('require', 'requires') !== undefined) {
      while (this.accept('explicit', 'human', 'manual', 'an') !== undefined) {
        /* "require explicit approval" */
      }
      this.expect('approval');
      this.expect('for', 'of');
      this.accept('the', 'its', 'all', 'every');
      this.expect('next', 'following', 'later');
      this.expect('actions', 'action', 'steps', 'calls');
      return 'step-up';
    }
    if (this.accept('block', 'stop', 'quarantine') !== undefined) {
      if (this.accept('and') !== undefined) {
        this.parseRemediation();
        return 'remediate';
      }
      this.parseObject(true);
      if (this.accept('and') !== undefined) {
        this.parseRemediation();
        return 'remediate';
      }
      return 'block';
    }
    if (this.accept('kill', 'remediate') !== undefined) {
      this.parseObject(true);
      return 'remediate';
    }
    if (this.phrase('roll', 'back')) {
      this.parseObject(true);
      return 'remediate';
    }
    return this.fail(ACTION_STARTS);
  }

  /** "in a minute", "within 30 seconds", "per hour", "a minute", "in the last 5 minutes"; undefined when none. */
  private parseWindow(): number | undefined {
    const saved = this.pos;
    if (this.accept('in', 'within', 'per', 'every', 'a', 'an') === undefined) return undefined;
    const lead = this.tokens[this.pos - 1]!.lower;
    if (lead === 'in' || lead === 'within') this.phrase('the', 'last');
    let count = 1;
    if (lead !== 'a' && lead !== 'an' && lead !== 'per' && lead !== 'every') {
      if (this.accept('a', 'an', 'one') === undefined) {
        const n = this.attempt(() => this.number('a number of seconds, minutes or hours'));
        if (n === undefined) {
          this.pos = saved;
          return undefined;
        }
        count = n;
      }
    }
    const unit = this.peek();
    const ms = unit.kind === 'word' ? UNITS[unit.lower] : undefined;
    if (ms === undefined) {
      this.note('"second", "minute", "hour" or "day"');
      this.pos = saved;
      return undefined;
    }
    this.pos += 1;
    if (count < 1) throw new Rejected(unit, 'a window of at least one unit is needed');
    return count * ms;
  }

  private parseTimes(): number {
    const n = this.number();
    if (n < 1) throw new Rejected(this.tokens[this.pos - 1]!, 'a count of at least 1 is needed');
    this.expect('times', 'time');
    return n;
  }

  private parseAbove(): number {
    if (this.phrase('at', 'least')) {
      const n = this.number();
      return n - 1;
    }
    if (this.accept('above', 'over', 'exceeds') !== undefined || this.phrase('more', 'than') || this.phrase('greater', 'than') || this.phrase('higher', 'than')) {
      const n = this.number('a score from 0 to 100');
      if (n < 0 || n >= 100) throw new Rejected(this.tokens[this.pos - 1]!, 'an anomaly score threshold from 0 to 99 is needed (scores run from 0 to 100)');
      return n;
    }
    return this.fail();
  }

  private parseNewHost(): ResponseTrigger {
    this.accept('a', 'an', 'any');
    if (this.accept('new', 'unknown', 'unfamiliar') !== undefined) {
      this.expect(...HOST_NOUNS);
      return { kind: 'signal', signal: 'new-host' };
    }
    this.expect(...HOST_NOUNS);
    this.accept('that', 'which');
    this.expect('it');
    this.expect('never', 'has');
    this.accept('not', 'never');
    this.expect('contacted', 'reached', 'used', 'visited', 'fetched');
    this.accept('before');
    return { kind: 'signal', signal: 'new-host' };
  }

  private parseTrigger(): ResponseTrigger {
    if (this.phrase('a', 'sub-agent') || this.phrase('one', 'of', 'its', 'sub-agents') || this.phrase('any', 'sub-agent')) {
      this.expect('is', 'gets', 'was');
      this.expect('blocked');
      return { kind: 'signal', signal: 'subagent-blocked' };
    }
    if (this.accept('its', 'the') !== undefined) {
      if (this.accept('anomaly') !== undefined) {
        this.expect('score');
        this.accept('is');
        return { kind: 'score', above: this.parseAbove() };
      }
      // Only the grant the worker has no record of: ERR_CREDENTIAL_GRANT_UNKNOWN.
      if (this.accept('grant') !== undefined) {
        this.expect('is', 'was');
        this.expect('unknown');
        return { kind: 'signal', signal: 'grant-unknown' };
      }
      this.expect('credentials', 'credential');
      this.expect('are', 'is', 'get', 'gets', 'were', 'was');
      this.expect('revoked', 'refused');
      // A grant unknown to the worker is refused as firmly as a revoked one (and may be one,
      // pruned since): a rule written for revocation covers it (monitoring/README.md, "Signals").
      return { kind: 'signal', signal: 'credentials-revoked', also: ['grant-unknown'] };
    }
    if (this.accept('it') === undefined && !this.phrase('the', 'task') && !this.phrase('the', 'agent') && !this.phrase('an', 'agent')) {
      this.fail('"it", "its anomaly score", "its credentials", "its grant" or "a sub-agent"');
    }
    return this.parsePredicate();
  }

  private parsePredicate(): ResponseTrigger {
    if (this.accept('is', 'gets', 'was') !== undefined) {
      this.expect('denied', 'refused');
      const count = this.parseTimes();
      return { kind: 'denied', count, ...this.windowOf() };
    }
    if (this.accept('fails') !== undefined) {
      const count = this.parseTimes();
      return { kind: 'failed', count, ...this.windowOf() };
    }
    if (this.accept('scores') !== undefined) return { kind: 'score', above: this.parseAbove() };
    if (this.accept('contacts', 'reaches', 'visits') !== undefined) return this.parseNewHost();
    if (this.accept('connects') !== undefined) {
      this.expect('to');
      return this.parseNewHost();
    }
    if (this.accept('fetches') !== undefined) {
      this.expect('from');
      return this.parseNewHost();
    }
    if (this.accept('sends', 'posts', 'uploads') !== undefined) return this.parseSends();
    if (this.accept('uses', 'calls') !== undefined) return this.parseUsesNew();
    if (this.accept('runs') !== undefined) {
      this.expect('a', 'an');
      this.expect('new', 'unusual');
      this.accept('sql', 'kind', 'type');
      this.accept('of');
      this.expect('statement', 'operation', 'statements', 'operations');
      return { kind: 'signal', signal: 'new-operation' };
    }
    if (this.accept('spawns') !== undefined) {
      if (this.accept('a') !== undefined) {
        this.expect('new');
        this.expect('sub-agent', 'subagent');
        return { kind: 'signal', signal: 'new-subagent' };
      }
      return this.parseMoreSubagents();
    }
    if (this.phrase('fans', 'out')) {
      this.accept('to');
      return this.parseMoreSubagents();
    }
    if (this.accept('makes', 'repeats') !== undefined) {
      if (this.phrase('the', 'same')) {
        this.expect('call', 'action', 'tool');
        this.accept('call');
        const count = this.parseTimes();
        this.phrase('in', 'a', 'row');
        return { kind: 'identical-calls', count };
      }
      this.expectPhrase('more', 'than');
      const more = this.number();
      if (this.accept('tool') !== undefined) this.expect('calls');
      else this.expect('calls', 'actions', 'requests');
      let tools: string[] | undefined;
      if (this.accept('of', 'to') !== undefined) tools = [this.toolName()];
      return { kind: 'calls', more, ...this.windowOf(), ...(tools === undefined ? {} : { tools }) };
    }
    const verb = this.peek();
    if (verb.kind === 'word' && verb.lower in ROW_VERBS) {
      this.pos += 1;
      const operation = ROW_VERBS[verb.lower];
      this.expectPhrase('more', 'than');
      const n = this.number();
      if (this.accept('times') !== undefined) {
        this.expect('its', 'the');
        this.expect('usual');
        this.phrase('number', 'of');
        this.expect('rows');
        if (n < 1) throw new Rejected(this.tokens[this.pos - 1]!, 'a factor of at least 1 is needed');
        return { kind: 'usual', metric: 'rows', factor: n, ...(operation === undefined ? {} : { operation }) };
      }
      this.expect('rows', 'row');
      return { kind: 'rows', more: n, ...(operation === undefined ? {} : { operation }), ...this.windowOf() };
    }
    if (this.accept('writes') !== undefined) return this.parseUsualBytes();
    return this.fail('a verb such as "is denied", "fails", "contacts", "uses", "makes", "spawns", "deletes" or "sends"');
  }

  private windowOf(): { windowMs?: number } {
    const windowMs = this.parseWindow();
    return windowMs === undefined ? {} : { windowMs };
  }

  private parseMoreSubagents(): ResponseTrigger {
    this.expectPhrase('more', 'than');
    const more = this.number();
    this.expect('sub-agents', 'subagents', 'sub-agent');
    return { kind: 'spawns', more, ...this.windowOf() };
  }

  private parseUsesNew(): ResponseTrigger {
    this.expect('a', 'an');
    if (this.accept('new', 'unknown', 'unfamiliar') !== undefined) {
      const noun = this.expect('tool', 'database', 'host');
      return { kind: 'signal', signal: noun.lower === 'tool' ? 'new-tool' : noun.lower === 'database' ? 'new-database' : 'new-host' };
    }
    const noun = this.expect('tool', 'database');
    this.accept('that', 'which');
    this.expect('it');
    this.expect('never', 'has');
    this.accept('not', 'never');
    this.expect('used', 'called');
    this.accept('before');
    return { kind: 'signal', signal: noun.lower === 'tool' ? 'new-tool' : 'new-database' };
  }

  private parseSends(): ResponseTrigger {
    if (this.phrase('tool', 'output') || this.phrase('data', 'it', 'read') || this.phrase('what', 'it', 'read')) {
      if (this.phrase('over', 'the', 'network')) return { kind: 'signal', signal: 'tool-output-sent' };
      this.expect('to');
      this.accept('a', 'any');
      this.expect(...HOST_NOUNS);
      return { kind: 'signal', signal: 'tool-output-sent' };
    }
    if (this.phrase('more', 'than')) {
      this.pos -= 2;
      return this.parseUsualBytes();
    }
    this.accept('data', 'requests');
    this.expect('to');
    return this.parseNewHost();
  }

  private parseUsualBytes(): ResponseTrigger {
    this.expectPhrase('more', 'than');
    const factor = this.number();
    this.expect('times');
    this.expect('its', 'the');
    this.expect('usual');
    this.phrase('amount', 'of');
    this.expect('bytes', 'data');
    if (factor < 1) throw new Rejected(this.tokens[this.pos - 1]!, 'a factor of at least 1 is needed');
    return { kind: 'usual', metric: 'bytes', factor };
  }

  private toolName(): string {
    if (this.accept('tool') !== undefined) {
      const t = this.peek();
      if (t.kind !== 'word' && t.kind !== 'quoted') return this.fail('a tool name');
      this.pos += 1;
      return t.lower;
    }
    const t = this.peek();
    if (t.kind === 'quoted' || (t.kind === 'word' && (t.text.includes('.') || t.text.includes('*')))) {
      this.pos += 1;
      return t.lower;
    }
    return this.fail('a tool name such as sql.exec (or "tool <name>")');
  }
}

/**
 * Whether `sentence` is a response rule (it starts with a response) rather than a policy rule.
 * Never throws: a sentence that does not tokenize is left to the policy parser to report.
 */
export function isResponseRule(sentence: string): boolean {
  let words: string[];
  try {
    words = tokenizeRule(sentence.trim())
      .filter((t) => t.kind !== 'end')
      .map((t) => t.lower);
  } catch {
    return false;
  }
  const [first, second, third] = words;
  if (first === 'alert' || first === 'kill' || first === 'remediate' || first === 'quarantine') return true;
  if (first === 'raise' && (second === 'an' || second === 'alert')) return true;
  if (first === 'step' && second === 'up') return true;
  if (first === 'roll' && second === 'back') return true;
  if ((first === 'block' || first === 'stop') && (second === 'it' || second === 'and' || (second === 'the' && (third === 'task' || third === 'agent')))) return true;
  if ((first === 'require' || first === 'requires') && words.slice(1, 7).includes('next')) return true;
  return false;
}

function unreadable(sentence: string, column: number, word: string, problem: string, expected: readonly string[], source: string | undefined): PolicyParseError {
  return unreadableSentence('response rule', { sentence, column, word, problem, expected, source }, nearestTemplates(sentence, 3, RESPONSE_TEMPLATES));
}

/**
 * Reads one response rule. Throws PolicyParseError (ERR_POLICY_UNREADABLE) when it cannot.
 * @param options.id the rule's id (`<pack>:<line>`, `task:<n>`; default `cli:1`)
 * @param options.source where the sentence was written, quoted in errors (`policies/foundation/rules.txt:30`)
 */
export function parseResponseRule(sentence: string, options: { id?: string; source?: string } = {}): ResponseRule {
  const text = sentence.trim();
  let tokens: Token[];
  try {
    tokens = tokenizeRule(text);
  } catch (error) {
    if (error instanceof TokenizeError) throw unreadable(text, error.column, error.word, error.message, [], options.source);
    throw error;
  }
  const parser = new ResponseParser(tokens);
  try {
    const { response, trigger } = parser.parse();
    return ResponseRuleSchema.parse({ id: options.id ?? 'cli:1', sentence: text, ...(options.source === undefined ? {} : { source: options.source }), response, trigger });
  } catch (error) {
    if (error instanceof Rejected) throw unreadable(text, error.token.column, error.token.text, error.message, [], options.source);
    if (error !== NO_MATCH) throw error;
    const token = parser.furthestToken;
    const expected = parser.expectations.slice(0, 14);
    const problem = text === '' ? 'the rule is empty' : `expected ${expected.length === 1 ? '' : 'one of '}${expected.join(', ')}`;
    throw unreadable(text, token.column, token.text, problem, expected, options.source);
  }
}

const windowWords = (ms: number | undefined): string => {
  if (ms === undefined) return 'in the run';
  for (const [unit, size] of [['day', 86_400_000], ['hour', 3_600_000], ['minute', 60_000], ['second', 1_000]] as const) {
    if (ms % size === 0) return ms === size ? `within a ${unit}` : `within ${ms / size} ${unit}s`;
  }
  return `within ${ms} ms`;
};

/** A trigger in words (`warden policy compile`, alert details). */
export function describeTrigger(trigger: ResponseTrigger): string {
  switch (trigger.kind) {
    case 'score':
      return `the action's anomaly score is above ${trigger.above}`;
    case 'denied':
      return `at least ${trigger.count} actions are refused ${windowWords(trigger.windowMs)}`;
    case 'failed':
      return `at least ${trigger.count} actions fail ${windowWords(trigger.windowMs)}`;
    case 'signal':
      // Every signal the trigger fires on (monitoring/response-rule.ts `triggerHolds`), `also` included.
      return trigger.also === undefined || trigger.also.length === 0 ? `the action's score has the signal ${trigger.signal}` : `the action's score has the signal ${[trigger.signal, ...trigger.also].join(' or ')}`;
    case 'identical-calls':
      return `the same call is made ${trigger.count} times in a row`;
    case 'spawns':
      return `more than ${trigger.more} sub-agents are spawned ${windowWords(trigger.windowMs)}`;
    case 'calls':
      return `more than ${trigger.more} actions${trigger.tools === undefined ? '' : ` of ${trigger.tools.join(', ')}`} are made ${windowWords(trigger.windowMs)}`;
    case 'rows':
      return `more than ${trigger.more} rows are ${trigger.operation === undefined ? 'changed' : { delete: 'deleted', update: 'updated', insert: 'inserted' }[trigger.operation]} ${windowWords(trigger.windowMs)}`;
    case 'usual':
      return `one call ${trigger.metric === 'rows' ? `${trigger.operation === undefined ? 'changes' : `${trigger.operation}s`} rows` : 'writes or sends bytes'} more than ${trigger.factor} times the most its baseline learnt`;
  }
}

/** What a response rule does, in words (`warden policy compile`). */
export function describeResponseRule(rule: ResponseRule): string {
  const action = {
    alert: 'raises an alert',
    'step-up': 'holds this and every later action for approval',
    block: 'blocks the task (no more actions, credentials revoked) and holds it for `warden kill`',
    remediate: 'blocks the task and runs its compensations',
  }[rule.response];
  return `response rule, ${action} when ${describeTrigger(rule.trigger)}`;
}
