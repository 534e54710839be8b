/**
 * The rule forms the grammar reads, as templates with placeholders. They serve three purposes:
 * suggestions for an unreadable sentence (nearest templates by word-level edit distance), the
 * summary in grammar.md, and generated rule sets for the benchmark.
 */
import { tokenizeRule, type Token } from './tokenize-rule';

export interface RuleTemplate {
  /** Placeholders: <tools>, <n>, $<amount>, <path>, <hosts>, <hh:mm>-<hh:mm>, <name>, "<text>". */
  template: string;
  /** A filled-in sentence the grammar reads. */
  example: string;
}

export const RULE_TEMPLATES: readonly RuleTemplate[] = [
  { template: 'allow <tools>', example: 'allow fs.read' },
  { template: 'allow only <tools>', example: 'allow only file tools and sql.query' },
  { template: 'deny <tools>', example: 'deny destructive tools' },
  { template: 'deny <tools> for sub-agents', example: 'deny network tools for sub-agents' },
  { template: 'deny <tools> when argument <name> contains "<text>"', example: 'deny sql.exec when argument sql contains "drop table"' },
  { template: 'require approval for <tools>', example: 'require approval for payment tools' },
  { template: '<tools> require approval', example: 'email tools require approval' },
  { template: 'never use <tools>', example: 'never use http.fetch' },
  { template: 'never use <tools> without approval', example: 'never use sql.exec without approval' },
  { template: 'never delete more than <n> rows', example: 'never delete more than 1,000 rows' },
  { template: 'never delete more than <n> rows without explicit approval', example: 'never delete more than 10 rows without explicit approval' },
  { template: 'never change more than <n> rows', example: 'never change more than 500 rows' },
  { template: 'never spend over $<amount>', example: 'never spend over $100' },
  { template: 'never spend more than $<amount> across the task and its sub-agents', example: 'never spend more than $500 across the task and its sub-agents' },
  { template: 'never write more than <n> files', example: 'never write more than 5 files' },
  { template: 'never write more than <n> mb in one call', example: 'never write more than 10 MB in one call' },
  { template: 'never make more than <n> tool calls across the task', example: 'never make more than 100 tool calls across the task' },
  { template: 'never make more than <n> calls per minute', example: 'never make more than 20 calls per minute' },
  { template: 'never make more than <n> calls of <tools> per minute', example: 'never make more than 20 calls of http.fetch per minute' },
  { template: 'never call <tools> more than <n> times per hour', example: 'never call sql.exec more than 30 times per hour' },
  { template: 'no more than <n> calls of <tools> per minute', example: 'no more than 10 calls of network tools per minute' },
  { template: 'never write outside <path>', example: 'never write outside /workspace' },
  { template: 'never write inside <path>', example: 'never write inside /workspace/.git' },
  { template: 'never read outside <path>', example: 'never read outside /workspace' },
  { template: 'never fetch from any host except <hosts>', example: 'never fetch from any host except api.example.com' },
  { template: 'never fetch from <hosts>', example: 'never fetch from pastebin.com' },
  { template: 'never run <tools> outside <hh:mm>-<hh:mm> UTC', example: 'never run sql.exec outside 09:00-17:00 UTC' },
  { template: 'sub-agents may not spawn sub-agents', example: 'sub-agents may not spawn sub-agents' },
  { template: 'sub-agents may not use <tools>', example: 'sub-agents may not use payment tools' },
  { template: 'no more than <n> levels of sub-agents', example: 'no more than 3 levels of sub-agents' },
  { template: 'never spawn sub-agents', example: 'never spawn sub-agents' },
  { template: 'never spawn more than <n> sub-agents across the task', example: 'never spawn more than 5 sub-agents across the task' },
  { template: 'never send email to an address the user did not give', example: 'never send email to an address the user did not give' },
  {
    template: 'never send email to an address the user did not give without approval',
    example: 'never send email to an address the user did not give without approval',
  },
  { template: 'never pay a recipient that is not in the intent', example: 'never pay a recipient that is not in the intent' },
  { template: 'never fetch a URL the user did not give', example: 'never fetch a URL the user did not give' },
  { template: 'require approval for network writes', example: 'require approval for any network write' },
];

/** Placeholder classes a token can stand for, by template placeholder. */
const PLACEHOLDER_KINDS: Readonly<Record<string, (t: Token) => boolean>> = {
  '<tools>': (t) => t.kind === 'word' && (t.text.includes('.') || t.text.includes('*')),
  '<n>': (t) => t.kind === 'number',
  '$<amount>': (t) => t.kind === 'money',
  '<path>': (t) => t.kind === 'path',
  '<hosts>': (t) => t.kind === 'word' && t.text.includes('.'),
  '<hh:mm>-<hh:mm>': (t) => t.kind === 'time-range',
  '<name>': (t) => t.kind === 'word',
  '"<text>"': (t) => t.kind === 'quoted',
};

/** Character-level Levenshtein distance, two rows. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, (previous[j - 1] as number) + cost));
    }
    previous = current;
  }
  return previous[b.length] as number;
}

function wordCost(templateWord: string, token: Token): number {
  const placeholder = PLACEHOLDER_KINDS[templateWord];
  if (placeholder !== undefined) return placeholder(token) ? 0 : 0.8;
  if (templateWord === token.lower) return 0;
  const longest = Math.max(templateWord.length, token.lower.length);
  return Math.min(1, editDistance(templateWord, token.lower) / longest) * 0.9 + 0.1;
}

/** Word-level edit distance between a template and the tokens; substituting similar words is cheap. */
function templateDistance(templateWords: readonly string[], tokens: readonly Token[]): number {
  let previous = Array.from({ length: tokens.length + 1 }, (_, j) => j);
  for (let i = 1; i <= templateWords.length; i += 1) {
    const current = [i];
    for (let j = 1; j <= tokens.length; j += 1) {
      const substitute = (previous[j - 1] as number) + wordCost(templateWords[i - 1] as string, tokens[j - 1] as Token);
      current.push(Math.min((previous[j] as number) + 1, (current[j - 1] as number) + 1, substitute));
    }
    previous = current;
  }
  return previous[tokens.length] as number;
}

const TEMPLATE_WORDS = RULE_TEMPLATES.map((t) => t.template.toLowerCase().split(' '));

/**
 * The `limit` templates nearest to `sentence`, nearest first. Never throws.
 * @param templates the forms to choose from (default: the policy rule forms)
 */
export function nearestTemplates(sentence: string, limit = 3, templates: readonly RuleTemplate[] = RULE_TEMPLATES): string[] {
  let tokens: Token[];
  try {
    tokens = tokenizeRule(sentence).filter((t) => t.kind !== 'end' && t.kind !== 'comma');
  } catch {
    tokens = sentence
      .split(/\s+/)
      .filter((w) => w !== '')
      .map((w, i) => ({ kind: 'word' as const, text: w, lower: w.toLowerCase(), column: i + 1 }));
  }
  const words = templates === RULE_TEMPLATES ? TEMPLATE_WORDS : templates.map((t) => t.template.toLowerCase().split(' '));
  return templates.map((t, i) => ({ template: t.template, distance: templateDistance(words[i] as string[], tokens) }))
    .sort((a, b) => a.distance - b.distance)
    .slice(0, limit)
    .map((t) => t.template);
}
