/**
 * What the Temporal UI shows about a task instead of anonymous ids: the workflow's static summary
 * and details, and a one-line summary on each activity, child workflow and timer
 * (`fs.write out/report.md`, `approval: sql.exec 42 rows`).
 *
 * Summaries are user metadata in the workflow's history, shown to whoever can see the workflow;
 * they hold what the history already holds (tool names, paths, hosts, the statement's verb and
 * table), cut to one short line, and never a URL's query string or a request body.
 * Pure functions: workflow code calls them.
 */
import type { ToolEffect } from '../policies/engine/policy-request';
import type { Task } from '../task/task-schema';
import { policyPacksOf } from '../task/task-schema';
import { ellipsize } from '../cut-text';

const MAX_SUMMARY = 120;

/** One line of at most `max` characters (control characters and newlines become spaces). */
export function oneLine(text: string, max = MAX_SUMMARY): string {
  // eslint-disable-next-line no-control-regex
  const flat = text.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
  return ellipsize(flat, max);
}

/**
 * Text with Markdown's special characters escaped and bare URLs broken: the Temporal UI renders
 * summaries and details as Markdown (GFM, with autolinks), and intents, user ids, MCP client
 * names and arguments are not Warden's to trust (a sub-agent's intent is written by its parent's
 * model). A link, image, HTML, emphasis, table or list in them stays text, and a bare URL, `www.`
 * host or e-mail address is not turned into a link.
 *
 * Every ASCII punctuation character that opens or closes a CommonMark/GFM construct anywhere in a
 * line is backslash-escaped (CommonMark 0.31 §2.4), a leading `1.` too; a zero-width space
 * (U+200B) goes after a colon before `/` or `\`, after `www` and after `@`: GFM's and linkify's
 * autolink literals (`https://`, `www.`, `user@host`) cannot match across it.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\\`*_{}[\]()<>#!|~&^]/g, (c) => `\\${c}`)
    // List items, setext underlines and ordered lists open only at the start of a line.
    .replace(/^(\s*)([-+=])/, '$1\\$2')
    .replace(/^(\s*\d+)([.)])/, '$1\\$2')
    .replace(/:(?=[\\/])/g, `:${ZWSP}`)
    .replace(/\bwww(?=\.)/gi, `www${ZWSP}`)
    .replace(/@/g, `@${ZWSP}`);
}

/** Zero-width space: invisible, and no autolink rule matches across it. */
const ZWSP = '\u200b';

const str = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);

/**
 * A URL without credentials, query or fragment: `https://api.example.com/v1/items`. Parsed by
 * the WHATWG URL Standard (what http.fetch and browsers use), so `https:alice:pw@h`,
 * `https:\\\\alice:pw@h` and a password holding `@` lose their credentials too. What does not parse
 * as a URL with a host keeps no query or fragment and nothing up to its last `@` (scheme included).
 */
export function bareUrl(raw: string): string {
  const text = raw.trim();
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url !== undefined && url.host !== '') return `${url.protocol}//${url.host}${url.pathname}`;
  const cut = text.split(/[?#]/)[0] ?? '';
  // What looks like a scheme before an `@` may be a user name (`alice:pw@host`): dropped too.
  const at = cut.lastIndexOf('@');
  return at === -1 ? cut : cut.slice(at + 1);
}

/** The first words of a statement that say what it does and to what (`DELETE FROM items`). */
function statementHead(sql: string): string {
  const words = sql.trim().split(/\s+/);
  const verb = (words[0] ?? '').toUpperCase();
  if (verb === 'DELETE' || verb === 'SELECT') {
    const from = words.findIndex((w) => w.toUpperCase() === 'FROM');
    return from === -1 ? verb : `${verb} FROM ${words[from + 1] ?? ''}`;
  }
  if (verb === 'INSERT') return `INSERT INTO ${words[2] ?? ''}`;
  if (verb === 'UPDATE') return `UPDATE ${words[1] ?? ''}`;
  return verb;
}

/**
 * What a call touches, in a few words: a path for files, method and bare URL for HTTP, database
 * and statement head for SQL, the sub-agent for a spawn; nothing for other tools (their arguments
 * are theirs).
 */
export function callTarget(tool: string, args: Record<string, unknown>): string {
  if (tool.startsWith('fs.')) return str(args.path) ?? (tool === 'fs.list' ? '.' : '');
  if (tool === 'http.fetch') return `${(str(args.method) ?? 'GET').toUpperCase()} ${bareUrl(str(args.url) ?? '')}`;
  if (tool.startsWith('sql.')) return `${str(args.database) ?? '?'}: ${statementHead(str(args.sql) ?? '')}`;
  if (tool.startsWith('spawn:')) return str(args.intent) ?? '';
  return '';
}

/** `fs.write out/report.md`: a tool call (activity summary). */
export function toolCallSummary(tool: string, args: Record<string, unknown>): string {
  return oneLine(escapeMarkdown(`${tool} ${callTarget(tool, args)}`));
}

/** The measured effect in a few words: `42 rows`, `1.2 kB`, `POST api.example.com`. */
export function effectSummary(effect: ToolEffect | undefined): string {
  if (effect === undefined) return '';
  if (effect.rowsChanged !== undefined) return `${effect.rowsChanged} row${effect.rowsChanged === 1 ? '' : 's'}`;
  if (effect.amount !== undefined) return `${effect.amount}${effect.currency === undefined ? '' : ` ${effect.currency}`}`;
  if (effect.bytes !== undefined) return effect.bytes < 1000 ? `${effect.bytes} B` : `${(effect.bytes / 1000).toFixed(1)} kB`;
  if (effect.host !== undefined) return `${effect.method === undefined ? '' : `${effect.method.toUpperCase()} `}${effect.host}`;
  return '';
}

/** `approval: sql.exec 42 rows`: the wait for a human (timer summary). */
export function approvalSummary(tool: string, args: Record<string, unknown>, effect: ToolEffect | undefined): string {
  const measured = effectSummary(effect);
  return oneLine(escapeMarkdown(`approval: ${tool} ${measured !== '' ? measured : callTarget(tool, args)}`));
}

/** `policy: fs.write out/report.md`: the policy check of a proposed call. */
export function policyCheckSummary(tool: string, args: Record<string, unknown>): string {
  return oneLine(escapeMarkdown(`policy: ${tool} ${callTarget(tool, args)}`));
}

/** `chat gpt-4o-mini, turn 3`: asking the model. */
export function modelTurnSummary(task: Task, turn: number): string {
  return oneLine(escapeMarkdown(`chat ${task.agent.model.id}, turn ${turn}`));
}

/** The workflow's one-line summary: `scribe for alice@example.com: Count the words…`. */
export function taskSummary(task: Task): string {
  return oneLine(escapeMarkdown(`${task.agent.name} for ${task.user}: ${task.intent}`));
}

/** The workflow's details (Temporal markdown): who, what, which model, grants, packs and limits. */
export function taskDetails(task: Task, parentWorkflowId?: string): string {
  // Code spans cannot hold a backtick, and a blank line would end the paragraph (and the span)
  // before it closes: one line, no backticks; everything else in a span is literal, never a link.
  const code = (text: string) => `\`${oneLine(text, 200).replace(/`/g, "'")}\``;
  const list = (items: readonly string[]) => (items.length === 0 ? 'none' : items.map(code).join(', '));
  const lines = [
    `**Agent** ${code(task.agent.name)} acting for **${escapeMarkdown(oneLine(task.user, 200))}**${parentWorkflowId === undefined ? '' : ` (sub-agent of ${code(parentWorkflowId)})`}`,
    '',
    `**Intent:** ${escapeMarkdown(oneLine(task.intent, 2000))}`,
    '',
    `- model: ${code(task.agent.model.id)} version ${code(task.agent.model.version)} (${task.agent.model.driver})`,
    `- granted tools: ${list(task.grants.tools)}`,
    `- granted sub-agents: ${list(task.grants.subagents)}`,
    ...(task.grants.hosts.length > 0 ? [`- granted hosts: ${list(task.grants.hosts)}`] : []),
    ...(task.grants.databases.length > 0 ? [`- granted databases: ${list(task.grants.databases)}`] : []),
    `- policy packs: ${list(policyPacksOf(task))}${task.policies.length > 0 ? `, plus ${task.policies.length} rule${task.policies.length === 1 ? '' : 's'} of the task` : ''}`,
    `- limits: ${task.limits.maxSteps} steps, deadline ${task.limits.deadline}, on deny: ${task.limits.onDeny}`,
    '',
    'Timeline and custody records: `warden trace <workflow id>` or `warden console`.',
  ];
  return lines.join('\n');
}
