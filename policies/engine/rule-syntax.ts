/**
 * What a policy sentence means once read: the parsed rule (`ParsedRule`) and the fixed
 * vocabulary the grammar draws on (tool families, verbs, units, recipient-like argument names).
 *
 * Invariant: every word the grammar accepts maps to exactly one meaning listed here, so a rule
 * can be explained back to its author and nothing is guessed.
 */

/** What a matching rule does to the action. */
export type RuleEffect = 'allow' | 'deny' | 'approval';

/**
 * The tools a rule is about. `patterns` are globs over tool names (`*` matches any run of
 * characters, including dots), for tools the sentence names. `tags` are effect tags (families
 * such as `payment`, `messaging`, `network`, and `file`, `database`, `email`, `destructive`): a
 * call whose tool's descriptor has any of them is covered, whatever the tool is called (see
 * `EFFECT_TAGS`). `named` is true when the sentence named the tools itself (as opposed to a
 * verb's default, e.g. "delete ... rows" means SQL writes); only then does a missing measurement
 * make an effect rule fire for those tools (fail closed).
 */
export interface ToolScope {
  label: string;
  patterns: string[];
  tags?: string[];
  named: boolean;
  /** The scope is spawning sub-agents (requests with tool `spawn:<name>`), not calling tools. */
  spawn?: boolean;
  /** Only network calls that write: a method other than GET, HEAD or OPTIONS (unknown counts as a write). */
  networkWrite?: boolean;
}

/** Who the rule applies to: every agent, sub-agents only (depth >= 1), or one agent by name. */
export type RuleSubject = { kind: 'all' } | { kind: 'subagents' } | { kind: 'agent'; name: string };

/**
 * A condition on one argument: its value compared with a text, both normalised the same way
 * (`normalizeArgText`: case, runs of whitespace; SQL statements also lose identifier quotes,
 * `main.` qualifiers and comments).
 */
export interface ArgCondition {
  /** JSON pointer into the arguments, e.g. "/sql". */
  pointer: string;
  op: 'contains' | 'is' | 'starts-with' | 'ends-with';
  /** Normalised (`normalizeArgText`). */
  value: string;
}

/** Quantities a limit can be about. Amounts are kept in cents so sums stay exact. */
export type Metric = 'calls' | 'rows' | 'amount' | 'files' | 'bytes';
export type RowsOperation = 'delete' | 'insert' | 'update';

/** Where a limit is counted: the one call, this agent's calls so far, or the whole task tree. */
export type LimitScope = 'call' | 'agent' | 'tree';

/**
 * Which argument values an intent-binding rule checks: e-mail recipients, any message recipient
 * (e-mail, chat user, channel, phone), payees (`recipient`), amounts paid, URLs, paths.
 */
export type BoundValue = 'email' | 'message' | 'recipient' | 'amount' | 'url' | 'path';

/** What a path rule is about: the access a call has to the path (any access for "access"/"touch"). */
export type PathAccess = 'read' | 'write' | 'list' | 'delete' | 'any';

/** Where a flow rule's data may not go: a host, a recipient (message or payment), or either. */
export type FlowDestination = 'host' | 'recipient' | 'any';

/** A rule is enforced, or only recorded (`shadow`: matched and reported, never held or denied). */
export type RuleMode = 'enforce' | 'shadow';

interface RuleCommon {
  sentence: string;
  effect: RuleEffect;
  subject: RuleSubject;
  /** `shadow`: matched and recorded, never held or denied. Absent: enforced. */
  enforcement?: RuleMode;
}

export type ParsedRule = RuleCommon &
  (
    | { form: 'tool'; tools: ToolScope; only: boolean; condition?: ArgCondition }
    | { form: 'limit'; metric: Metric; max: number; tools: ToolScope; scope: LimitScope; rowsOperation?: RowsOperation; currency?: string }
    | { form: 'rate'; max: number; windowMs: number; window: string; tools: ToolScope; scope: 'agent' | 'tree' }
    | { form: 'path'; tools: ToolScope; mode: 'outside' | 'inside'; paths: string[]; access?: PathAccess }
    | { form: 'host'; tools: ToolScope; mode: 'allow-list' | 'block-list'; hosts: string[] }
    | { form: 'time-window'; tools: ToolScope; fromMinute: number; toMinute: number; zone: string; offsetMinutes: number }
    | { form: 'subagent-depth'; maxLevels: number }
    | { form: 'intent'; tools: ToolScope; value: BoundValue }
    /** After private data was read (by this agent or any in its task tree), a send to a destination the user did not give. */
    | { form: 'flow'; tools: ToolScope; destination: FlowDestination }
    /** SQL effects on named tables, measured where the statement is applied: any such change (or read), or more than `max` rows. */
    | { form: 'table'; tools: ToolScope; tables: string[]; operation: RowsOperation | 'write' | 'read'; max?: number }
  );

export type RuleForm = ParsedRule['form'];

// ---------------------------------------------------------------------------------------------
// Vocabulary

/**
 * Effect tags a call can carry, and what puts them there. With a descriptor (every tool Warden
 * runs has one): its families (`payment`, `messaging`, `network`, `storage`, `code-execution`),
 * `file` (it acts on workspace paths), `database` (it runs SQL), `email` (a messaging tool whose
 * recipients may be e-mail addresses), `file-read|list|write|delete` (the access it has to a path),
 * `sql-write` (it can change rows),
 * `destructive` (destructive, cannot be undone, and not
 * bounded by host capabilities), `read-only`. A tool that declares nothing carries every tag
 * its executor makes possible. Without a descriptor (a request written by hand, an old run) the
 * tool's name decides, by `LEGACY_NAME_TAGS`.
 */
export const EFFECT_TAGS = [
  'payment',
  'messaging',
  'network',
  'storage',
  'code-execution',
  'file',
  'file-read',
  'file-list',
  'file-write',
  'file-delete',
  'database',
  'sql-write',
  'email',
  'destructive',
  'read-only',
] as const;
export type EffectTag = (typeof EFFECT_TAGS)[number];

/** Tool families by their English name (the word before "tools") → the effect tags they cover. */
export const TOOL_FAMILIES: Readonly<Record<string, readonly EffectTag[]>> = {
  file: ['file'],
  filesystem: ['file'],
  network: ['network'],
  http: ['network'],
  database: ['database'],
  sql: ['database'],
  email: ['email'],
  mail: ['email'],
  messaging: ['messaging'],
  message: ['messaging'],
  chat: ['messaging'],
  payment: ['payment'],
  storage: ['storage'],
  code: ['code-execution'],
  destructive: ['destructive'],
};

/** Tags of a tool known only by its name (no descriptor): the globs the families used to be. */
export const LEGACY_NAME_TAGS: readonly { tag: EffectTag; patterns: readonly string[] }[] = [
  { tag: 'file', patterns: ['fs.*'] },
  { tag: 'file-read', patterns: ['fs.read'] },
  { tag: 'file-list', patterns: ['fs.list'] },
  { tag: 'file-write', patterns: ['fs.write'] },
  { tag: 'file-delete', patterns: ['fs.delete', 'fs.remove', 'fs.rm'] },
  { tag: 'storage', patterns: ['fs.*', 'sql.*'] },
  { tag: 'network', patterns: ['http.*'] },
  { tag: 'database', patterns: ['sql.*'] },
  { tag: 'sql-write', patterns: ['sql.exec'] },
  { tag: 'email', patterns: ['email.*', 'mail.*', 'smtp.*'] },
  { tag: 'messaging', patterns: ['email.*', 'mail.*', 'smtp.*', 'chat.*', 'slack.*', 'sms.*'] },
  { tag: 'payment', patterns: ['pay', 'pay.*', 'payment.*', 'payments.*'] },
  { tag: 'destructive', patterns: ['*.delete', '*.remove', '*.rm', '*.drop', '*.destroy', '*.truncate', '*.wipe', '*.purge'] },
];

export const ANY_TOOL: ToolScope = { label: 'any tool', patterns: ['*'], named: true };

export function familyScope(family: string, named = true): ToolScope {
  const tags = TOOL_FAMILIES[family];
  if (tags === undefined) throw new TypeError(`unknown tool family ${family}`);
  return { label: `${family === 'code' ? 'code execution' : family} tools`, patterns: [], tags: [...tags], named };
}

export function toolsScope(label: string, patterns: readonly string[], named: boolean): ToolScope {
  return { label, patterns: [...patterns], named };
}

/** The tools that carry any of `tags` (a verb's default: "write" means tools that write files). */
export function tagScope(label: string, tags: readonly EffectTag[], named = false, patterns: readonly string[] = []): ToolScope {
  return { label, patterns: [...patterns], tags: [...tags], named };
}

export const SPAWN_SCOPE: ToolScope = { label: 'spawning sub-agents', patterns: ['spawn:*'], named: true, spawn: true };
export const NETWORK_WRITES: ToolScope = { label: 'network writes', patterns: [], tags: ['network'], named: true, networkWrite: true };
/** SQL writes: the sql.exec capability (built-in or inside a tool) and any tool that runs SQL. */
export const SQL_WRITES: ToolScope = { label: 'SQL writes', patterns: ['sql.exec'], tags: ['sql-write'], named: false };

/**
 * Verbs the "never ..." forms start with, by what they act on. A verb picks the default tools a
 * rule is about when the sentence names none ("never write outside /workspace" is about fs.write).
 */
export type VerbClass = 'generic' | 'make' | 'delete' | 'change' | 'insert' | 'write' | 'read' | 'list' | 'access' | 'money' | 'send' | 'network' | 'network-write' | 'spawn';

export const VERBS: Readonly<Record<string, VerbClass>> = {
  use: 'generic',
  call: 'generic',
  run: 'generic',
  invoke: 'generic',
  execute: 'generic',
  make: 'make',
  delete: 'delete',
  remove: 'delete',
  change: 'change',
  modify: 'change',
  update: 'change',
  alter: 'change',
  insert: 'insert',
  write: 'write',
  create: 'write',
  save: 'write',
  read: 'read',
  open: 'read',
  list: 'list',
  access: 'access',
  touch: 'access',
  spend: 'money',
  pay: 'money',
  transfer: 'money',
  charge: 'money',
  send: 'send',
  email: 'send',
  fetch: 'network',
  download: 'network',
  request: 'network',
  connect: 'network',
  contact: 'network',
  reach: 'network',
  visit: 'network',
  browse: 'network',
  post: 'network-write',
  upload: 'network-write',
  spawn: 'spawn',
  start: 'spawn',
};

/** Units of the count and amount limits, singular and plural. */
export const UNITS: Readonly<Record<string, { metric: Metric; factor?: number; calls?: 'email' | 'network' | 'payment' }>> = {
  row: { metric: 'rows' },
  rows: { metric: 'rows' },
  file: { metric: 'files' },
  files: { metric: 'files' },
  byte: { metric: 'bytes' },
  bytes: { metric: 'bytes' },
  kb: { metric: 'bytes', factor: 1024 },
  mb: { metric: 'bytes', factor: 1024 * 1024 },
  gb: { metric: 'bytes', factor: 1024 * 1024 * 1024 },
  call: { metric: 'calls' },
  calls: { metric: 'calls' },
  time: { metric: 'calls' },
  times: { metric: 'calls' },
  action: { metric: 'calls' },
  actions: { metric: 'calls' },
  request: { metric: 'calls', calls: 'network' },
  requests: { metric: 'calls', calls: 'network' },
  email: { metric: 'calls', calls: 'email' },
  emails: { metric: 'calls', calls: 'email' },
  message: { metric: 'calls', calls: 'email' },
  messages: { metric: 'calls', calls: 'email' },
  payment: { metric: 'calls', calls: 'payment' },
  payments: { metric: 'calls', calls: 'payment' },
};

/** Currencies by symbol or code. Warden converts none: a limit compares amounts as declared. */
export const CURRENCY_SYMBOLS: Readonly<Record<string, string>> = { $: 'USD', '€': 'EUR', '£': 'GBP' };
export const CURRENCY_WORDS: Readonly<Record<string, string>> = {
  usd: 'USD',
  dollars: 'USD',
  dollar: 'USD',
  eur: 'EUR',
  euros: 'EUR',
  euro: 'EUR',
  gbp: 'GBP',
  pounds: 'GBP',
  chf: 'CHF',
};

export const WINDOWS: Readonly<Record<string, number>> = {
  second: 1_000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
};

/** Argument names that identify who receives an email or a payment, matched without case, `_` or `-`. */
export const EMAIL_RECIPIENT_KEYS: readonly string[] = ['to', 'cc', 'bcc', 'recipient', 'recipients', 'address', 'email', 'emails', 'replyto'];
/** Argument names that identify who receives any message (chat, SMS, e-mail), matched like the above. */
export const MESSAGE_RECIPIENT_KEYS: readonly string[] = [...EMAIL_RECIPIENT_KEYS, 'channel', 'channels', 'user', 'users', 'phone', 'number', 'chat', 'chatid', 'userid', 'handle', 'target'];
export const PAYMENT_RECIPIENT_KEYS: readonly string[] = [
  'to',
  'recipient',
  'payee',
  'iban',
  'account',
  'accountid',
  'accountnumber',
  'beneficiary',
  'destination',
  'creditor',
  'counterparty',
];
export const URL_KEYS: readonly string[] = ['url', 'uri', 'href', 'link', 'endpoint'];
/** Argument names that carry an amount of money, matched like the above. */
export const AMOUNT_KEYS: readonly string[] = ['amount', 'sum', 'total', 'price', 'value', 'usd', 'eur', 'cents'];
export const PATH_KEYS: readonly string[] = ['path', 'file', 'filename', 'target'];

/** Methods that only read; any other (or an unknown one) makes an HTTP call a network write. */
export const READ_METHODS: readonly string[] = ['GET', 'HEAD', 'OPTIONS'];

/** Where the fs tools' workspace appears to rules; relative paths are resolved against it. */
export const WORKSPACE_ROOT = '/workspace';

/** Glob match over tool names, paths or hosts: `*` matches any run of characters. */
export function globMatch(pattern: string, value: string): boolean {
  // Iterative wildcard match (no regex): remember the last `*` and retry from there.
  let p = 0;
  let v = 0;
  let star = -1;
  let mark = 0;
  while (v < value.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === value[v]) {
      p += 1;
      v += 1;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p;
      mark = v;
      p += 1;
    } else if (star !== -1) {
      p = star + 1;
      mark += 1;
      v = mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p += 1;
  return p === pattern.length;
}

const legacyTagCache = new Map<string, EffectTag[]>();

/** The tags a tool has by name alone (`LEGACY_NAME_TAGS`); cached per name (do not mutate the result). */
export function legacyTagsOf(tool: string): EffectTag[] {
  let tags = legacyTagCache.get(tool);
  if (tags === undefined) {
    tags = LEGACY_NAME_TAGS.filter((entry) => entry.patterns.some((p) => globMatch(p, tool))).map((entry) => entry.tag);
    if (legacyTagCache.size > 10_000) legacyTagCache.clear();
    legacyTagCache.set(tool, tags);
  }
  return tags;
}

/**
 * Does the scope cover this tool (`spawn:<name>` for spawns) with these effect tags? A name
 * pattern or a shared tag is enough. `tags` defaults to the tool's tags by name.
 */
export function scopeCoversTool(scope: ToolScope, tool: string, tags: readonly string[] = legacyTagsOf(tool)): boolean {
  const isSpawn = tool.startsWith('spawn:');
  if (isSpawn !== (scope.spawn === true)) return false;
  if (scope.patterns.some((pattern) => globMatch(pattern, tool))) return true;
  return scope.tags !== undefined && scope.tags.some((t) => tags.includes(t));
}

/** Collapse `.`/`..`, duplicate and trailing slashes; relative paths are inside the workspace. */
export function normalizePath(path: string): string {
  // Most paths are already normal (absolute or under the workspace, no "." or ".." segment, no
  // empty one): those are their own normal form, without splitting and joining.
  if (path.indexOf('\\') === -1) {
    const absolute = path.charCodeAt(0) === 0x2f ? path : `${WORKSPACE_ROOT}/${path}`;
    if (isNormalAbsolute(absolute)) return absolute;
  }
  const absolute = path.replace(/\\/g, '/').startsWith('/') ? path.replace(/\\/g, '/') : `${WORKSPACE_ROOT}/${path.replace(/\\/g, '/')}`;
  const parts: string[] = [];
  for (const part of absolute.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') parts.pop();
    else parts.push(part);
  }
  return `/${parts.join('/')}`;
}

/** Whether an absolute path with "/" separators is `normalizePath`'s answer for itself: no empty, "." or ".." segment, not "/". */
function isNormalAbsolute(path: string): boolean {
  if (path.length < 2 || path.charCodeAt(path.length - 1) === 0x2f) return false;
  let start = 1;
  for (let i = 1; i <= path.length; i += 1) {
    if (i < path.length && path.charCodeAt(i) !== 0x2f) continue;
    const length = i - start;
    if (length === 0) return false;
    if (path.charCodeAt(start) === 0x2e && (length === 1 || (length === 2 && path.charCodeAt(start + 1) === 0x2e))) return false;
    start = i + 1;
  }
  return true;
}

/** Lower-case host name without port, brackets or trailing dot. */
export function normalizeHost(host: string): string {
  let h = host.trim().toLowerCase();
  if (h.startsWith('[')) {
    const end = h.indexOf(']');
    return end > 0 ? h.slice(1, end) : h;
  }
  const colon = h.indexOf(':');
  if (colon >= 0 && h.indexOf(':', colon + 1) < 0) h = h.slice(0, colon);
  while (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

/**
 * Whether a path rule (`never <verb> inside|outside <paths>`) matches a call that can touch every
 * path under `root` (a program or MCP server's whole workspace reach): `inside` when some rule path
 * lies under `root` or contains it, `outside` unless one rule path contains all of `root`. Globs
 * count by their literal prefix (conservatively: a glob never contains a whole tree).
 */
export function pathRuleMatchesTree(paths: readonly string[], mode: 'inside' | 'outside', root: string): boolean {
  const under = (path: string, folder: string) => folder === '/' || path === folder || path.startsWith(`${folder}/`);
  if (mode === 'outside') return !paths.some((p) => !p.includes('*') && under(root, p));
  return paths.some((p) => {
    if (!p.includes('*')) return under(p, root) || under(root, p);
    const prefix = p.slice(0, p.indexOf('*'));
    return prefix.startsWith(root) || root.startsWith(prefix);
  });
}

/** The path access of each fs built-in, for rules that name it: "fs.write" covers every call that writes files. */
const FS_BUILTIN_ACCESS: Readonly<Record<string, PathAccess>> = { 'fs.read': 'read', 'fs.write': 'write', 'fs.list': 'list' };

/** The path accesses of the fs built-ins among a scope's patterns (exact names only). */
export function reachAccessOf(patterns: readonly string[]): PathAccess[] {
  return patterns.flatMap((p) => (Object.hasOwn(FS_BUILTIN_ACCESS, p) ? [FS_BUILTIN_ACCESS[p] as PathAccess] : []));
}
