/**
 * Reads one controlled-English policy sentence into a `ParsedRule` (grammar: grammar.md).
 * Hand-written recursive descent over the tokens of tokenize-rule.ts, with backtracking between
 * alternatives and a record of what was expected at the furthest word reached.
 *
 * Invariant: a sentence is either read completely into exactly one rule or rejected with a
 * `PolicyParseError` that quotes it, points at the word where reading failed and suggests the
 * nearest known forms. Nothing is skipped, dropped or guessed (a time window without a time zone,
 * for instance, is an error, not UTC).
 */
import { PolicyParseError } from '../../errors';
import { unreadableSentence } from './unreadable-sentence';
import { nearestTemplates } from './rule-templates';
import {
  ANY_TOOL,
  CURRENCY_WORDS,
  familyScope,
  NETWORK_WRITES,
  normalizeHost,
  normalizePath,
  SPAWN_SCOPE,
  SQL_WRITES,
  tagScope,
  TOOL_FAMILIES,
  toolsScope,
  UNITS,
  VERBS,
  WINDOWS,
  type ArgCondition,
  type BoundValue,
  type FlowDestination,
  type PathAccess,
  type RuleMode,
  type LimitScope,
  type Metric,
  type ParsedRule,
  type RowsOperation,
  type RuleEffect,
  type RuleSubject,
  type ToolScope,
  type VerbClass,
} from './rule-syntax';
import { tokenizeRule, TokenizeError, type Token } from './tokenize-rule';
import { normalizeArgText } from './normalize-text';

/** A rule body before the suffixes ("without approval", "for sub-agents", "when ...") are read. */
type Body = ParsedRule extends infer R ? (R extends ParsedRule ? Omit<R, 'sentence' | 'effect' | 'subject' | 'enforcement'> & { effect?: RuleEffect } : never) : never;

/** Internal: this alternative does not match here; try the next (position restored by `attempt`). */
const NO_MATCH = Symbol('no match');

/** Internal: the words were read but say something the grammar rejects outright. */
class Rejected {
  constructor(
    readonly token: Token,
    readonly message: string,
  ) {}
}

const APPROVAL_ADJECTIVES = ['explicit', 'prior', 'human', 'manual', 'an', 'user'];
const ARTICLES = ['a', 'an', 'any', 'the'];
const RULE_STARTS = 'a rule starting with "allow", "deny", "require approval for", "never", "no more than", "sub-agents may not" or a tool name';
const VERB_LIST = 'a verb such as "use", "delete", "write", "fetch", "spend", "send" or "spawn"';

class RuleParser {
  private pos = 0;
  private furthest = 0;
  private expected: string[] = [];

  constructor(private readonly tokens: readonly Token[]) {}

  // --- cursor -------------------------------------------------------------------------------

  peek(offset = 0): Token {
    return this.tokens[Math.min(this.pos + offset, this.tokens.length - 1)] as Token;
  }

  private advance(): Token {
    const token = this.peek();
    if (token.kind !== 'end') this.pos += 1;
    return token;
  }

  /** Remember that `label` would have been readable at the current position. */
  note(label: string): void {
    if (this.pos > this.furthest) {
      this.furthest = this.pos;
      this.expected = [label];
    } else if (this.pos === this.furthest && !this.expected.includes(label)) {
      this.expected.push(label);
    }
  }

  fail(label?: string): never {
    if (label !== undefined) this.note(label);
    throw NO_MATCH;
  }

  reject(token: Token, message: string): never {
    throw new Rejected(token, message);
  }

  isWord(...words: string[]): boolean {
    const t = this.peek();
    return t.kind === 'word' && words.includes(t.lower);
  }

  /** Reads one of `words` (a keyword) or records them as expected and returns undefined. */
  accept(...words: string[]): Token | undefined {
    if (this.isWord(...words)) return this.advance();
    for (const w of words) this.note(`"${w}"`);
    return undefined;
  }

  /** Reads the words in order, or reads nothing (expectation noted at the word that differed). */
  acceptPhrase(...words: string[]): boolean {
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

  expectKind(kind: Token['kind'], label: string): Token {
    if (this.peek().kind === kind) return this.advance();
    return this.fail(label);
  }

  /** Runs an alternative; on no match restores the position and returns undefined. */
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

  get furthestToken(): Token {
    return this.tokens[Math.min(this.furthest, this.tokens.length - 1)] as Token;
  }

  get expectations(): string[] {
    return this.expected;
  }

  // --- rule ---------------------------------------------------------------------------------

  parseRule(sentence: string, mode: RuleMode): ParsedRule {
    let body: Body;
    let subject: RuleSubject = { kind: 'all' };
    if (this.accept('allow', 'permit')) body = this.parseAllow();
    else if (this.accept('deny', 'block', 'forbid', 'disallow', 'prohibit')) body = { form: 'tool', tools: this.parseToolList(), only: false, effect: 'deny' };
    else if (this.accept('require', 'requires')) body = this.parseRequireApproval();
    else if (this.accept('never') || this.acceptPhrase('do', 'not') || this.accept("don't")) body = this.parseNeverBody();
    else if (this.acceptPhrase('no', 'more', 'than') || this.acceptPhrase('at', 'most')) body = this.parseNoMoreThan();
    else if (this.accept('sub-agents', 'subagents')) {
      if (!(this.acceptPhrase('may', 'not') || this.acceptPhrase('must', 'not') || this.acceptPhrase('can', 'not') || this.accept('cannot', "can't", "mustn't"))) this.fail();
      subject = { kind: 'subagents' };
      body = this.parseNeverBody();
    } else {
      const toolsFirst = this.attempt(() => this.parseToolsFirst());
      if (toolsFirst === undefined) {
        if (this.furthest === 0) this.expected = [RULE_STARTS];
        return this.fail();
      }
      body = toolsFirst;
    }
    let effect: RuleEffect = body.effect ?? 'deny';
    let condition: ArgCondition | undefined;
    for (;;) {
      // "without approval" turns a deny into an approval; it means nothing for allow rules or "allow only".
      const canAskApproval = effect === 'deny' && !(body.form === 'tool' && body.only);
      if (canAskApproval && this.parseApprovalSuffix()) {
        effect = 'approval';
        continue;
      }
      if (subject.kind === 'all' && this.isWord('for') && !this.isForEachAgent()) {
        subject = this.parseSubject();
        continue;
      }
      if (body.form === 'tool' && !body.only && condition === undefined && body.tools.spawn !== true) {
        const parsed = this.attempt(() => this.parseCondition());
        if (parsed !== undefined) {
          condition = parsed;
          continue;
        }
      }
      break;
    }
    if (this.peek().kind !== 'end') this.fail('the end of the rule');
    const { effect: _ignored, ...rest } = body;
    const rule = { ...rest, sentence, effect, subject, ...(mode === 'shadow' ? { enforcement: mode } : {}) } as ParsedRule;
    if (condition !== undefined && rule.form === 'tool') rule.condition = condition;
    return rule;
  }

  private isForEachAgent(): boolean {
    return this.peek(1).kind === 'word' && this.peek(1).lower === 'each';
  }

  private parseApprovalSuffix(): boolean {
    if (this.accept('without')) {
      while (this.accept(...APPROVAL_ADJECTIVES) !== undefined) {
        /* "without explicit approval", "without an approval" */
      }
      this.expect('approval');
      return true;
    }
    if (this.acceptPhrase('unless', 'approved')) return true;
    return false;
  }

  private parseSubject(): RuleSubject {
    this.expect('for');
    if (this.accept('sub-agents', 'subagents')) return { kind: 'subagents' };
    this.expect('agent');
    const name = this.peek();
    if (name.kind !== 'word' && name.kind !== 'quoted') this.fail('an agent name');
    this.advance();
    return { kind: 'agent', name: name.lower };
  }

  private parseCondition(): ArgCondition {
    this.expect('when', 'if', 'where');
    this.accept('the');
    let pointer: string | undefined;
    if (this.accept('argument', 'arg')) pointer = this.parseArgName();
    else {
      pointer = this.parseArgName();
      this.expect('argument', 'arg');
    }
    let op: ArgCondition['op'];
    if (this.accept('contains', 'includes')) op = 'contains';
    else if (this.accept('is', 'equals')) op = 'is';
    else if (this.acceptPhrase('starts', 'with') || this.acceptPhrase('begins', 'with')) op = 'starts-with';
    else if (this.acceptPhrase('ends', 'with')) op = 'ends-with';
    else this.fail();
    const value = this.peek();
    if (value.kind === 'end' || value.kind === 'comma') this.fail('a quoted text, e.g. "drop table"');
    this.advance();
    return { pointer, op, value: normalizeArgText(value.text, pointer) };
  }

  private parseArgName(): string {
    const t = this.peek();
    if (t.kind === 'path') {
      this.advance();
      return t.text;
    }
    if (t.kind !== 'word' || !isIdentifier(t.text)) this.fail('an argument name, e.g. sql');
    this.advance();
    return `/${t.text.split('.').join('/')}`;
  }

  // --- permission forms ---------------------------------------------------------------------

  private parseAllow(): Body {
    if (this.accept('only')) return { form: 'tool', tools: this.parseToolList(), only: true, effect: 'deny' };
    return { form: 'tool', tools: this.parseToolList(), only: false, effect: 'allow' };
  }

  private parseRequireApproval(): Body {
    while (this.accept(...APPROVAL_ADJECTIVES) !== undefined) {
      /* "require explicit approval" */
    }
    this.expect('approval');
    this.expect('for', 'before', 'to');
    this.accept('using', 'calling', 'use', 'call', 'running', 'run');
    return { form: 'tool', tools: this.parseToolList(), only: false, effect: 'approval' };
  }

  /** "<tools> require approval", "<tools> are denied", "<tools> are allowed". */
  private parseToolsFirst(): Body {
    const tools = this.parseToolList();
    if (this.accept('require', 'requires', 'need', 'needs')) {
      while (this.accept(...APPROVAL_ADJECTIVES) !== undefined) {
        /* "need explicit approval" */
      }
      this.expect('approval');
      return { form: 'tool', tools, only: false, effect: 'approval' };
    }
    this.expect('are', 'is');
    if (this.accept('denied', 'forbidden', 'blocked') || this.acceptPhrase('not', 'allowed')) return { form: 'tool', tools, only: false, effect: 'deny' };
    this.expect('allowed', 'permitted');
    return { form: 'tool', tools, only: false, effect: 'allow' };
  }

  // --- tools --------------------------------------------------------------------------------

  parseToolList(): ToolScope {
    const scopes = [this.parseToolRef()];
    for (;;) {
      const saved = this.pos;
      const comma = this.peek().kind === 'comma';
      if (comma) this.advance();
      const joined = this.accept('and', 'or') !== undefined;
      if (!comma && !joined) break;
      const next = this.attempt(() => this.parseToolRef());
      if (next === undefined) {
        this.pos = saved;
        break;
      }
      scopes.push(next);
    }
    if (scopes.length === 1) return scopes[0] as ToolScope;
    const first = scopes[0] as ToolScope;
    for (const s of scopes) {
      if ((s.spawn === true) !== (first.spawn === true) || (s.networkWrite === true) !== (first.networkWrite === true)) {
        this.reject(this.peek(), 'spawning sub-agents and network writes each need a rule of their own, not a list with tools');
      }
    }
    const tags = [...new Set(scopes.flatMap((s) => s.tags ?? []))];
    return {
      label: scopes.map((s) => s.label).join(', '),
      patterns: [...new Set(scopes.flatMap((s) => s.patterns))],
      ...(tags.length > 0 ? { tags } : {}),
      named: true,
      ...(first.spawn === true ? { spawn: true } : {}),
      ...(first.networkWrite === true ? { networkWrite: true } : {}),
    };
  }

  private parseToolRef(): ToolScope {
    this.accept('the');
    if (this.accept('any', 'all', 'every')) {
      if (this.accept('tool', 'tools')) return ANY_TOOL;
      const scope = this.attempt(() => this.parseFamilyOrName());
      return scope ?? this.fail();
    }
    return this.parseFamilyOrName();
  }

  private parseFamilyOrName(): ToolScope {
    const t = this.peek();
    if (this.isWord('code') && this.peek(1).lower === 'execution' && (this.peek(2).lower === 'tools' || this.peek(2).lower === 'tool')) {
      this.advance();
      this.advance();
      this.advance();
      return familyScope('code');
    }
    if (t.kind === 'word' && TOOL_FAMILIES[t.lower] !== undefined && (this.peek(1).lower === 'tools' || this.peek(1).lower === 'tool')) {
      this.advance();
      this.advance();
      return familyScope(t.lower);
    }
    if (this.isWord('network') && (this.peek(1).lower === 'writes' || this.peek(1).lower === 'write')) {
      this.advance();
      this.advance();
      return NETWORK_WRITES;
    }
    if (this.accept('spawning', 'spawns')) {
      this.accept('sub-agents', 'subagents');
      return SPAWN_SCOPE;
    }
    if (this.accept('tool')) {
      const name = this.peek();
      if ((name.kind === 'word' || name.kind === 'quoted') && isToolPattern(name.lower)) {
        this.advance();
        return toolsScope(name.lower, [name.lower], true);
      }
      this.fail('a tool name');
    }
    if (t.kind === 'quoted' && isToolPattern(t.lower)) {
      this.advance();
      return toolsScope(t.lower, [t.lower], true);
    }
    if (t.kind === 'word' && isToolPattern(t.lower) && (t.lower.includes('.') || t.lower.includes('*'))) {
      this.advance();
      return toolsScope(t.lower, [t.lower], true);
    }
    this.note('a tool name (e.g. fs.write, or tool <name>)');
    this.note('a tool family (e.g. file tools)');
    return this.fail();
  }

  // --- "never ..." ----------------------------------------------------------------------------

  parseNeverBody(): Body {
    const spawn = this.attempt(() => this.parseSpawnBody());
    if (spawn !== undefined) return spawn;
    const verbToken = this.peek();
    if (verbToken.kind !== 'word' || VERBS[verbToken.lower] === undefined) return this.fail(VERB_LIST);
    this.advance();
    let cls = VERBS[verbToken.lower] as VerbClass;
    let messages = false;
    // Nouns that only say what kind of sending is meant.
    if (cls === 'send') {
      const flow = this.attempt(() => this.parseFlow());
      if (flow !== undefined) return flow;
      if (this.accept('requests')) cls = 'network';
      else if (this.accept('data')) cls = 'network-write';
      else if (this.accept('message', 'messages', 'a message')) messages = true;
      else if (this.isWord('a', 'any') && (this.peek(1).lower === 'message' || this.peek(1).lower === 'messages')) {
        this.advance();
        this.advance();
        messages = true;
      } else this.accept('email', 'emails', 'mail');
    }
    const table = this.attempt(() => this.parseTableRule(verbToken, cls));
    if (table !== undefined) return table;
    const tools = this.attempt(() => this.parseToolList());

    if (this.isWord('more', 'over', 'above', 'exceeding')) {
      // "never delete more than 10 rows", "never call http.fetch more than 20 times per minute"
      const verb = { token: verbToken, cls };
      return this.parseLimitRest(verb, tools, this.parseQuantity(verb));
    }
    if (this.accept('outside')) {
      const next = this.peek();
      if (next.kind === 'time-range' || next.kind === 'time') return this.parseTimeWindow(verbToken, cls, tools);
      if (next.kind === 'path') return this.parsePaths(verbToken, cls, tools, 'outside');
      this.fail('a path (e.g. /workspace)');
      this.fail('a time range (e.g. 09:00-17:00 UTC)');
    }
    if (this.accept('inside', 'in', 'under', 'into')) return this.parsePaths(verbToken, cls, tools, 'inside');
    if (this.isWord('from', 'to', 'with')) {
      const intent = this.attempt(() => this.parseIntentBinding(verbToken, cls, tools, true, messages));
      if (intent !== undefined) return intent;
      if (!this.isWord('with')) return this.parseHosts(verbToken, cls, tools);
    }
    if (this.isWord(...ARTICLES) || this.isWord('addresses', 'recipients', 'urls')) {
      const intent = this.attempt(() => this.parseIntentBinding(verbToken, cls, tools, false, messages));
      if (intent !== undefined) return intent;
    }
    if (tools !== undefined) return { form: 'tool', tools, only: false };
    if (cls !== 'generic' && cls !== 'make') {
      // "never post", "never spend": the verb's own tools
      const scope = this.attempt(() => {
        if (this.peek().kind !== 'end' && !this.isWord('without', 'for', 'unless')) this.fail();
        return defaultTools(cls);
      });
      if (scope !== undefined) return { form: 'tool', tools: scope, only: false };
    }
    return this.fail('more than <n> <unit>');
  }

  /** "spawn sub-agents", "spawn sub-agents more than N levels deep", "spawn more than N sub-agents". */
  private parseSpawnBody(): Body {
    this.expect('spawn', 'start', 'create');
    if (this.accept('sub-agents', 'subagents', 'any')) {
      this.accept('sub-agents', 'subagents');
      if (this.acceptPhrase('more', 'than')) {
        const n = this.parseCount('a number of levels');
        this.expect('levels', 'level');
        this.expect('deep');
        return { form: 'subagent-depth', maxLevels: n };
      }
      return { form: 'tool', tools: SPAWN_SCOPE, only: false };
    }
    if (!this.acceptPhrase('more', 'than')) this.fail();
    const n = this.parseCount('a number of sub-agents');
    this.expect('sub-agents', 'subagents');
    const scope = this.parseScope() ?? 'tree';
    if (scope === 'call') this.reject(this.tokens[this.pos - 1] as Token, 'a spawn starts one sub-agent; count sub-agents per agent or across the task');
    return { form: 'limit', metric: 'calls', max: n, tools: SPAWN_SCOPE, scope };
  }

  private parseCount(label: string): number {
    const t = this.expectKind('number', label);
    const n = t.value as number;
    if (!Number.isInteger(n)) this.reject(t, 'expected a whole number');
    return n;
  }

  // --- limits and rates ---------------------------------------------------------------------

  private parseQuantity(verb: { token: Token; cls: VerbClass }): Quantity {
    if (!(this.acceptPhrase('more', 'than') || this.accept('over', 'above', 'exceeding'))) this.fail();
    return this.parseAmount(verb);
  }

  private parseAmount(verb: { token: Token; cls: VerbClass }): Quantity {
    const t = this.peek();
    if (t.kind === 'money') {
      this.advance();
      return { metric: 'amount', max: Math.round((t.value as number) * 100), currency: t.currency as string, token: t };
    }
    const n = this.expectKind('number', 'a number or an amount (e.g. 10, $100)');
    const value = n.value as number;
    const unit = this.peek();
    const currency = CURRENCY_WORDS[unit.lower];
    if (unit.kind === 'word' && currency !== undefined) {
      this.advance();
      return { metric: 'amount', max: Math.round(value * 100), currency, token: n };
    }
    if (this.acceptPhrase('tool', 'calls') || this.acceptPhrase('tool', 'call')) return { metric: 'calls', max: wholeNumber(this, n), token: n };
    if (verb.cls === 'spawn' || this.isWord('sub-agents', 'subagents')) {
      this.expect('sub-agents', 'subagents');
      return { metric: 'calls', max: wholeNumber(this, n), token: n, spawn: true };
    }
    const spec = unit.kind === 'word' ? UNITS[unit.lower] : undefined;
    if (spec === undefined) return this.fail('a unit: rows, files, bytes, MB, calls, times, requests, emails, payments, or a currency');
    this.advance();
    const max = spec.factor !== undefined ? Math.round(value * spec.factor) : wholeNumber(this, n);
    return { metric: spec.metric, max, token: n, unit, ...(spec.calls !== undefined ? { calls: spec.calls } : {}) };
  }

  private parseLimitRest(verb: { token: Token; cls: VerbClass }, named: ToolScope | undefined, quantity: Quantity): Body {
    let tools = named;
    if (this.accept('of', 'with', 'using', 'to', 'on', 'through', 'by')) {
      if (tools !== undefined) this.reject(this.tokens[this.pos - 1] as Token, 'the tools are already named before "more than"');
      tools = this.parseToolList();
    }
    let window: { ms: number; label: string } | undefined;
    const saved = this.pos;
    if (this.accept('per', 'a', 'an', 'every', 'each')) {
      const w = this.peek();
      const ms = WINDOWS[w.lower] ?? WINDOWS[w.lower.endsWith('s') ? w.lower.slice(0, -1) : ''];
      if (w.kind === 'word' && ms !== undefined) {
        this.advance();
        window = { ms, label: w.lower.endsWith('s') ? w.lower.slice(0, -1) : w.lower };
      } else {
        this.note('"second"');
        this.note('"minute"');
        this.note('"hour"');
        this.note('"day"');
        this.pos = saved;
      }
    }
    const scope = this.parseScope();
    const metric = quantity.metric;
    const scopeTools = tools ?? this.defaultLimitTools(verb, quantity);
    if (window !== undefined) {
      if (metric !== 'calls') this.reject(quantity.token, 'rates are counted in calls ("more than 20 calls per minute"); limit rows, files, bytes and amounts per call or across the task');
      if (scope === 'call') this.reject(this.tokens[this.pos - 1] as Token, 'a rate counts many calls; say "per agent" or "across the task"');
      return { form: 'rate', max: quantity.max, windowMs: window.ms, window: window.label, tools: scopeTools, scope: scope ?? 'tree' };
    }
    if (metric === 'calls' && scope === 'call') this.reject(this.tokens[this.pos - 1] as Token, 'a call is one call; count calls per agent or across the task');
    const defaultScope: LimitScope = metric === 'calls' || metric === 'files' ? 'tree' : 'call';
    const body: Body = { form: 'limit', metric, max: quantity.max, tools: scopeTools, scope: scope ?? defaultScope };
    if (metric === 'rows') {
      const op = rowsOperation(verb.token.lower, verb.cls);
      if (op !== undefined) body.rowsOperation = op;
    }
    if (quantity.currency !== undefined) body.currency = quantity.currency;
    return body;
  }

  /** The tools a limit is about when the sentence names none: from the unit and the verb. */
  private defaultLimitTools(verb: { token: Token; cls: VerbClass }, quantity: Quantity): ToolScope {
    const { cls } = verb;
    const bad = (what: string): never => this.reject(quantity.unit ?? quantity.token, `"${verb.token.text}" and ${what} do not go together; name the tools ("... of <tools>")`);
    switch (quantity.metric) {
      case 'rows':
        if (cls === 'delete' || cls === 'change' || cls === 'insert' || cls === 'write') return SQL_WRITES;
        return bad('rows');
      case 'files':
        if (cls === 'write' || cls === 'change') return tagScope('file writes', ['file-write']);
        if (cls === 'delete') return tagScope('file deletes', ['file-delete']);
        if (cls === 'read') return tagScope('file reads', ['file-read']);
        if (cls === 'access') return tagScope('file tools', ['file']);
        return bad('files');
      case 'bytes':
        if (cls === 'write' || cls === 'change') return tagScope('file writes', ['file-write']);
        if (cls === 'network-write' || cls === 'send') return { ...NETWORK_WRITES, named: false };
        return bad('bytes');
      case 'amount':
        if (cls === 'money') return familyScope('payment', false);
        return bad('an amount of money');
      case 'calls':
        if (quantity.spawn === true) return SPAWN_SCOPE;
        if (quantity.calls === 'email') return familyScope('email');
        if (quantity.calls === 'network') return cls === 'network-write' ? NETWORK_WRITES : familyScope('network');
        if (quantity.calls === 'payment') return familyScope('payment');
        if (cls === 'make') return ANY_TOOL;
        if (cls === 'generic') return this.reject(quantity.token, 'name the tools: "never call <tools> more than <n> times ..."');
        return defaultTools(cls);
    }
  }

  /** "in one call", "per agent", "across the task [and its sub-agents]", "in total". */
  private parseScope(): LimitScope | undefined {
    if (this.acceptPhrase('in', 'one', 'call') || this.acceptPhrase('in', 'a', 'single', 'call') || this.acceptPhrase('in', 'a', 'call') || this.acceptPhrase('per', 'call')) return 'call';
    if (this.acceptPhrase('per', 'agent') || this.acceptPhrase('for', 'each', 'agent') || this.acceptPhrase('per', 'sub-agent')) return 'agent';
    if (this.acceptPhrase('in', 'total') || this.acceptPhrase('per', 'task') || this.acceptPhrase('in', 'the', 'task')) return 'tree';
    if (this.accept('across')) {
      this.accept('the', 'a', 'all', 'its');
      if (this.accept('sub-agents', 'subagents')) return 'tree';
      this.accept('whole', 'entire');
      this.expect('task');
      this.accept('tree');
      if (this.accept('and')) {
        this.accept('all');
        this.accept('its', 'of', 'the');
        this.accept('its');
        this.expect('sub-agents', 'subagents');
      }
      return 'tree';
    }
    return undefined;
  }

  /** "no more than 3 levels of sub-agents", "no more than 20 calls of http.fetch per minute". */
  private parseNoMoreThan(): Body {
    const n = this.peek();
    if (n.kind === 'number' && (this.peek(1).lower === 'levels' || this.peek(1).lower === 'level')) {
      this.advance();
      this.advance();
      this.expect('of');
      this.accept('nested');
      this.expect('sub-agents', 'subagents');
      return { form: 'subagent-depth', maxLevels: wholeNumber(this, n) };
    }
    const verb = { token: n, cls: (n.kind === 'money' ? 'money' : 'make') as VerbClass };
    const quantity = this.parseAmount(verb);
    return this.parseLimitRest(verb, undefined, quantity);
  }

  // --- paths, hosts, time windows -----------------------------------------------------------

  private parsePaths(verb: Token, cls: VerbClass, tools: ToolScope | undefined, mode: 'outside' | 'inside'): Body {
    const paths: string[] = [];
    do {
      const t = this.expectKind('path', 'a path starting with / (e.g. /workspace)');
      paths.push(t.text.includes('*') ? t.text : normalizePath(t.text));
    } while (this.acceptListSeparator(() => this.peek().kind === 'path'));
    const scope = tools ?? fileTools(cls);
    if (scope === undefined) this.reject(verb, `"${verb.text}" is not about files; use read, write, list, delete or access, or name the tools`);
    const access = pathAccessOf(cls);
    return { form: 'path', tools: scope, mode, paths, ...(access === undefined ? {} : { access }) };
  }

  private parseHosts(verb: Token, cls: VerbClass, tools: ToolScope | undefined): Body {
    this.expect('from', 'to');
    let mode: 'allow-list' | 'block-list' = 'block-list';
    if (this.accept('any', 'all')) {
      this.expect('host', 'hosts', 'domain', 'domains', 'server', 'servers');
      if (!(this.accept('except', 'but', 'besides') || this.acceptPhrase('other', 'than'))) this.fail();
      mode = 'allow-list';
    } else if (this.accept('host', 'hosts', 'domain', 'domains')) {
      if (this.acceptPhrase('other', 'than')) mode = 'allow-list';
    }
    const hosts: string[] = [];
    do {
      const t = this.peek();
      if (!(t.kind === 'word' && isHostName(t.lower))) this.fail('a host name (e.g. api.example.com)');
      this.advance();
      hosts.push(t.lower.includes('*') ? t.lower : normalizeHost(t.lower));
    } while (this.acceptListSeparator(() => this.peek().kind === 'word' && isHostName(this.peek().lower)));
    const scope = tools ?? (cls === 'network' ? familyScope('network', false) : cls === 'network-write' ? NETWORK_WRITES : undefined);
    if (scope === undefined) this.reject(verb, `"${verb.text}" is not a network verb; use fetch, connect, post or upload, or name the tools`);
    return { form: 'host', tools: scope, mode, hosts };
  }

  private parseTimeWindow(verb: Token, cls: VerbClass, tools: ToolScope | undefined): Body {
    let from: number;
    let to: number;
    const t = this.advance();
    if (t.kind === 'time-range') {
      from = t.from as number;
      to = t.to as number;
    } else {
      from = t.value as number;
      if (!this.accept('to', 'and', '-')) this.fail();
      to = this.expectKind('time', 'a time (e.g. 17:00)').value as number;
    }
    const zoneToken = this.peek();
    const offset = zoneToken.kind === 'word' ? readZone(zoneToken.text) : undefined;
    if (offset === undefined) this.fail('a time zone: UTC, or UTC+hh:mm / UTC-hh:mm');
    this.advance();
    if (from === to) this.reject(t, 'the window is empty: its start and end are the same');
    const scope = tools ?? (cls === 'generic' || cls === 'make' ? undefined : defaultTools(cls));
    if (scope === undefined) this.reject(verb, 'name the tools the window applies to, e.g. "never run sql.exec outside 09:00-17:00 UTC"');
    return { form: 'time-window', tools: scope, fromMinute: from, toMinute: to, zone: zoneToken.text.toUpperCase(), offsetMinutes: offset };
  }

  private acceptListSeparator(nextIsItem: () => boolean): boolean {
    const saved = this.pos;
    if (this.peek().kind === 'comma') this.advance();
    this.accept('or', 'and');
    if (this.pos !== saved && nextIsItem()) return true;
    this.pos = saved;
    return false;
  }

  // --- intent binding -----------------------------------------------------------------------

  /**
   * "send email to an address the user did not give", "pay a recipient that is not in the
   * intent", "fetch a URL the user did not give", "call email.send with an address ...".
   */
  private parseIntentBinding(verb: Token, cls: VerbClass, tools: ToolScope | undefined, preposition: boolean, messages = false): Body {
    if (preposition) this.expect('to', 'with', 'from');
    this.accept(...ARTICLES);
    const noun = this.peek();
    let value: BoundValue | undefined;
    if (this.acceptPhrase('email', 'address') || this.acceptPhrase('email', 'addresses') || this.accept('address', 'addresses', 'email')) value = cls === 'network' ? 'url' : 'email';
    else if (this.accept('recipient', 'recipients')) value = cls === 'money' ? 'recipient' : messages ? 'message' : 'email';
    else if (messages && this.accept('channel', 'channels', 'user', 'users', 'number', 'numbers')) value = 'message';
    else if (this.accept('payee', 'payees', 'account', 'accounts', 'beneficiary', 'iban')) value = 'recipient';
    else if (this.accept('url', 'urls', 'link', 'links')) value = 'url';
    else if (cls === 'money' && this.accept('amount', 'amounts', 'sum', 'sums')) value = 'amount';
    else if (this.accept('path', 'paths', 'file', 'files')) value = 'path';
    else this.fail();
    this.parseNotFromUser();
    const scope =
      tools ??
      (value === 'email'
        ? familyScope('email', false)
        : value === 'message'
          ? familyScope('messaging', false)
          : value === 'recipient' || value === 'amount'
          ? familyScope('payment', false)
          : value === 'url'
            ? familyScope('network', false)
            : (fileTools(cls) ?? undefined));
    if (scope === undefined) this.reject(verb, 'name the tools this rule is about');
    if (value === 'recipient' && cls !== 'money' && tools === undefined) this.reject(noun, 'a payee or account is what a payment goes to; use "pay", "transfer" or name the tools');
    return { form: 'intent', tools: scope, value };
  }

  /**
   * "send data read from a private source to a host or recipient the user did not give",
   * "send private data to a host the user did not give" (after "send").
   */
  private parseFlow(): Body {
    if (this.accept('private')) this.expect('data');
    else {
      this.expect('data');
      this.accept('that', 'which');
      this.accept('was');
      this.expect('read');
      this.expect('from');
      this.accept('a', 'any', 'the');
      this.expect('private');
      this.expect('source', 'sources');
    }
    this.expect('to');
    this.accept(...ARTICLES);
    let destination: FlowDestination;
    if (this.accept('destination', 'destinations')) destination = 'any';
    else if (this.accept('host', 'hosts')) destination = this.acceptPhrase('or', 'recipient') || this.acceptPhrase('or', 'recipients') ? 'any' : 'host';
    else if (this.accept('recipient', 'recipients')) destination = this.acceptPhrase('or', 'host') || this.acceptPhrase('or', 'hosts') ? 'any' : 'recipient';
    else return this.fail('"host", "recipient" or "destination"');
    this.parseNotFromUser();
    const scope = destination === 'host' ? familyScope('network', false) : destination === 'recipient' ? tagScope('messages and payments', ['messaging', 'payment']) : tagScope('sends', ['network', 'messaging', 'payment']);
    return { form: 'flow', tools: scope, destination };
  }

  /**
   * Structured SQL rules on tables, decided on what the broker measured where it applied the
   * statement: "never delete from table items", "never change tables customers, orders",
   * "never delete more than 100 rows from table items", "never read table salaries".
   */
  private parseTableRule(verb: Token, cls: VerbClass): Body {
    const operation = tableOperation(verb.lower, cls);
    if (operation === undefined) return this.fail();
    let max: number | undefined;
    if (this.acceptPhrase('more', 'than') || this.accept('over', 'above', 'exceeding')) {
      max = this.parseCount('a number of rows');
      this.expect('rows', 'row');
    } else this.accept('rows', 'any');
    this.accept('from', 'in', 'into', 'on', 'to', 'of');
    this.accept('the');
    this.expect('table', 'tables');
    const tables: string[] = [];
    do {
      const t = this.peek();
      if (!((t.kind === 'word' || t.kind === 'quoted') && /^[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)?$/.test(t.lower))) this.fail('a table name (e.g. items, or inventory.items)');
      this.advance();
      tables.push(t.lower);
    } while (this.acceptListSeparator(() => this.peek().kind === 'word' || this.peek().kind === 'quoted'));
    const scope = operation === 'read' ? tagScope('SQL', ['database'], false, ['sql.query', 'sql.exec']) : SQL_WRITES;
    return { form: 'table', tools: scope, tables, operation, ...(max === undefined ? {} : { max }) };
  }

  /** "(that|which)? the user did not give | is not in the intent | the user has not given | ...". */
  private parseNotFromUser(): void {
    this.accept('that', 'which');
    if (this.accept('the')) {
      this.expect('user');
      if (!(this.acceptPhrase('did', 'not') || this.acceptPhrase('has', 'not') || this.acceptPhrase('does', 'not') || this.accept("didn't", "hasn't", 'never'))) this.fail();
      this.expect('give', 'given', 'provide', 'provided', 'mention', 'mentioned', 'name', 'named', 'write', 'wrote', 'specify', 'specified', 'type', 'typed');
      return;
    }
    this.accept('is', 'was');
    this.expect('not');
    if (this.accept('in', 'from')) {
      this.expect('the');
      this.expect('intent', 'request', 'task', 'user');
      return;
    }
    this.expect('given', 'provided', 'named', 'mentioned');
    this.expect('by', 'in');
    this.expect('the');
    this.expect('user', 'intent');
  }
}

interface Quantity {
  metric: Metric;
  /** Whole units; cents for amounts, bytes for sizes. */
  max: number;
  currency?: string;
  token: Token;
  unit?: Token;
  calls?: 'email' | 'network' | 'payment';
  spawn?: boolean;
}

function wholeNumber(parser: RuleParser, t: Token): number {
  const n = t.value as number;
  if (!Number.isInteger(n)) parser.reject(t, 'expected a whole number');
  return n;
}

function rowsOperation(verb: string, cls: VerbClass): RowsOperation | undefined {
  if (cls === 'delete') return 'delete';
  if (cls === 'insert') return 'insert';
  if (verb === 'update') return 'update';
  return undefined;
}

function defaultTools(cls: VerbClass): ToolScope {
  switch (cls) {
    case 'generic':
    case 'make':
      return ANY_TOOL;
    case 'delete':
      return tagScope('deletes', ['sql-write', 'file-delete'], false, ['sql.exec']);
    case 'change':
      return tagScope('changes', ['sql-write', 'file-write'], false, ['sql.exec']);
    case 'insert':
      return SQL_WRITES;
    case 'write':
      return tagScope('file writes', ['file-write']);
    case 'read':
      return tagScope('file reads', ['file-read']);
    case 'list':
      return tagScope('file listings', ['file-list']);
    case 'access':
      return familyScope('file', false);
    case 'money':
      return familyScope('payment', false);
    case 'send':
      return familyScope('email', false);
    case 'network':
      return familyScope('network', false);
    case 'network-write':
      return NETWORK_WRITES;
    case 'spawn':
      return SPAWN_SCOPE;
  }
}

function fileTools(cls: VerbClass): ToolScope | undefined {
  switch (cls) {
    case 'write':
    case 'change':
      return tagScope('file writes', ['file-write']);
    case 'read':
      return tagScope('file reads', ['file-read']);
    case 'list':
      return tagScope('file listings', ['file-list']);
    case 'delete':
      return tagScope('file deletes', ['file-delete']);
    case 'access':
      return familyScope('file', false);
    default:
      return undefined;
  }
}

/** The path access a verb is about; undefined for "access"/"touch" (any access). */
function pathAccessOf(cls: VerbClass): PathAccess | undefined {
  switch (cls) {
    case 'write':
    case 'change':
      return 'write';
    case 'read':
      return 'read';
    case 'list':
      return 'list';
    case 'delete':
      return 'delete';
    default:
      return undefined;
  }
}

/** What a verb does to a table: delete, insert, update, any write, or read. */
function tableOperation(verb: string, cls: VerbClass): RowsOperation | 'write' | 'read' | undefined {
  if (cls === 'delete') return 'delete';
  if (cls === 'insert') return 'insert';
  if (verb === 'update') return 'update';
  if (cls === 'change' || cls === 'write') return 'write';
  if (cls === 'read' || cls === 'access') return cls === 'read' ? 'read' : undefined;
  return undefined;
}

function isLower(c: string): boolean {
  return c >= 'a' && c <= 'z';
}
function isDigitChar(c: string): boolean {
  return c >= '0' && c <= '9';
}

/** Tool names and globs: lower-case letters, digits, "_", "-", "." and "*", starting with a letter or "*". */
function isToolPattern(text: string): boolean {
  if (text === '' || !(isLower(text[0] as string) || text[0] === '*')) return false;
  for (const c of text) if (!(isLower(c) || isDigitChar(c) || c === '.' || c === '_' || c === '-' || c === '*')) return false;
  return !text.endsWith('.');
}

/** Argument names: letters, digits, "_", "-", with "." separating nested names ("options.to"). */
function isIdentifier(text: string): boolean {
  const isLetter = (c: string): boolean => isLower(c) || (c >= 'A' && c <= 'Z') || c === '_';
  if (text === '' || !isLetter(text[0] as string)) return false;
  for (const c of text) if (!(isLetter(c) || isDigitChar(c) || c === '.' || c === '-')) return false;
  return !text.endsWith('.');
}

/** Host names, IPv4 addresses and `*.` globs, optionally with a port. */
function isHostName(text: string): boolean {
  if (text === 'localhost') return true;
  if (!text.includes('.')) return false;
  for (const c of text) if (!(isLower(c) || isDigitChar(c) || c === '.' || c === '-' || c === '*' || c === ':')) return false;
  return !text.startsWith('.') && !text.endsWith('.');
}

/** "UTC" / "GMT" / "Z" → 0; "UTC+2", "UTC-05:30" → offset in minutes east of UTC. */
export function readZone(text: string): number | undefined {
  const upper = text.toUpperCase();
  if (upper === 'UTC' || upper === 'GMT' || upper === 'Z') return 0;
  if (!(upper.startsWith('UTC') || upper.startsWith('GMT')) || upper.length < 5) return undefined;
  const sign = upper[3] === '+' ? 1 : upper[3] === '-' ? -1 : 0;
  if (sign === 0) return undefined;
  const rest = upper.slice(4);
  const colon = rest.indexOf(':');
  const hoursText = colon < 0 ? rest : rest.slice(0, colon);
  const minutesText = colon < 0 ? '0' : rest.slice(colon + 1);
  if (hoursText === '' || hoursText.length > 2 || [...hoursText, ...minutesText].some((c) => !isDigitChar(c))) return undefined;
  const hours = Number(hoursText);
  const minutes = Number(minutesText);
  if (hours > 14 || minutes > 59) return undefined;
  return sign * (hours * 60 + minutes);
}

function unreadable(sentence: string, column: number, word: string, problem: string, expected: readonly string[], source: string | undefined): PolicyParseError {
  return unreadableSentence('policy rule', { sentence, column, word, problem, expected, source }, nearestTemplates(sentence));
}

/**
 * Reads one sentence. Throws `PolicyParseError` (ERR_POLICY_UNREADABLE) when it cannot; `source`
 * (e.g. "policies/foundation/rules.txt:4") is quoted in the message.
 */
export function parseRule(sentence: string, options: { source?: string; mode?: RuleMode } = {}): ParsedRule {
  // "shadow: <rule>" is recorded, never enforced.
  const shadowed = /^shadow\s*:\s*/i.exec(sentence.trim());
  const mode: RuleMode = shadowed !== null ? 'shadow' : (options.mode ?? 'enforce');
  const text = shadowed !== null ? sentence.trim().slice(shadowed[0].length) : sentence.trim();
  let tokens: Token[];
  try {
    tokens = tokenizeRule(text);
  } catch (error) {
    if (error instanceof TokenizeError) throw unreadable(text, error.column, error.word, error.message, [], options.source);
    throw error;
  }
  const parser = new RuleParser(tokens);
  try {
    return parser.parseRule(text, mode);
  } catch (error) {
    if (error instanceof Rejected) throw unreadable(text, error.token.column, error.token.text, error.message, [], options.source);
    if (error !== NO_MATCH) throw error;
    const token = parser.furthestToken;
    const expected = parser.expectations.slice(0, 14);
    const problem = text === '' ? 'the rule is empty' : `expected ${expected.length === 1 ? '' : 'one of '}${expected.join(', ')}`;
    throw unreadable(text, token.column, token.text, problem, expected, options.source);
  }
}
