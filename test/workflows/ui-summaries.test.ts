/**
 * What the Temporal UI shows of a task, as tables: one short line per call, no URL credentials or
 * query strings, the measured effect of a held action, and agent-written text kept as text
 * (the UI renders Markdown).
 */
import { marked } from 'marked';
import { describe, expect, it } from 'vitest';
import { parseTask } from '../../task/load-task-file';
import { approvalSummary, bareUrl, callTarget, effectSummary, escapeMarkdown, oneLine, policyCheckSummary, taskDetails, taskSummary, toolCallSummary } from '../../workflows/ui-summaries';

describe('call summaries', () => {
  it.each([
    ['fs.write', { path: 'out/report.md', content: 'secret body' }, 'fs.write out/report.md'],
    ['fs.read', { path: 'notes.txt' }, 'fs.read notes.txt'],
    ['fs.list', {}, 'fs.list .'],
    ['http.fetch', { url: 'https://api.example.com/v1/items?api_key=sk-123#frag' }, 'http.fetch GET https:\u200b//api.example.com/v1/items'],
    ['http.fetch', { url: 'https://user:pa55@api.example.com/x', method: 'post', body: 'secret' }, 'http.fetch POST https:\u200b//api.example.com/x'],
    ['sql.exec', { database: 'crm', sql: "DELETE FROM leads WHERE email = 'a@b.c'" }, 'sql.exec crm: DELETE FROM leads'],
    ['sql.exec', { database: 'crm', sql: "UPDATE leads SET name = 'x'" }, 'sql.exec crm: UPDATE leads'],
    ['sql.exec', { database: 'crm', sql: "insert into leads values ('pii')" }, 'sql.exec crm: INSERT INTO leads'],
    ['sql.query', { database: 'crm', sql: 'select email from leads' }, 'sql.query crm: SELECT FROM leads'],
    ['word-count', { text: 'a private letter' }, 'word-count'],
    ['fs.write', { path: '[x](javascript:alert(1)) <img src=x>' }, 'fs.write \\[x\\]\\(javascript:alert\\(1\\)\\) \\<img src=x\\>'],
  ])('%s %j is "%s"', (tool, args, summary) => {
    expect(toolCallSummary(tool, args)).toBe(summary);
  });

  it('never carries argument values beyond the target', () => {
    const summary = toolCallSummary('http.fetch', { url: 'https://h.example/p?token=abc.def.ghi', headers: { authorization: 'Bearer x' }, body: 'b' });
    expect(summary).not.toMatch(/token|Bearer|abc/);
    expect(callTarget('custom-tool', { anything: 'secret' })).toBe('');
  });

  it.each([
    [{ rowsChanged: 42, operation: 'delete' }, '42 rows'],
    [{ rowsChanged: 1 }, '1 row'],
    [{ bytes: 512 }, '512 B'],
    [{ bytes: 1234 }, '1.2 kB'],
    [{ amount: 250, currency: 'EUR' }, '250 EUR'],
    [{ host: 'api.example.com', method: 'post' }, 'POST api.example.com'],
    [{}, ''],
    [undefined, ''],
  ])('effect %j reads "%s"', (effect, text) => {
    expect(effectSummary(effect)).toBe(text);
  });

  it('names the wait for a human by the measured effect, else the target', () => {
    expect(approvalSummary('sql.exec', { database: 'crm', sql: 'DELETE FROM leads' }, { rowsChanged: 42 })).toBe('approval: sql.exec 42 rows');
    expect(approvalSummary('http.fetch', { url: 'https://x.example/a?q=1' }, undefined)).toBe('approval: http.fetch GET https:\u200b//x.example/a');
    expect(policyCheckSummary('fs.write', { path: 'out/a.md' })).toBe('policy: fs.write out/a.md');
  });

  it('keeps summaries to one short line', () => {
    expect(oneLine('a\nb\r\tc\u0000d')).toBe('a b c d');
    expect(oneLine('x'.repeat(500))).toHaveLength(120);
    expect(oneLine('x'.repeat(500)).endsWith('…')).toBe(true);
  });

  it.each([
    ['[click](https://evil.example)', '\\[click\\]\\(https:\u200b//evil.example\\)'],
    ['![img](x)', '\\!\\[img\\]\\(x\\)'],
    ['<script>x</script>', '\\<script\\>x\\</script\\>'],
    ['**bold** _it_ `code` a|b \\', '\\*\\*bold\\*\\* \\_it\\_ \\`code\\` a\\|b \\\\'],
    ['plain words, 42 (ok).', 'plain words, 42 \\(ok\\).'],
    ['sign in at https://evil.example/sso', 'sign in at https:\u200b//evil.example/sso'],
    ['1. item', '1\\. item'],
    ['- item', '\\- item'],
    ['well-known a+b=c', 'well-known a+b=c'],
  ])('escapes Markdown in %j', (text, escaped) => {
    expect(escapeMarkdown(text)).toBe(escaped);
  });
});

describe('workflow summary and details', () => {
  const task = parseTask(
    {
      user: 'ivy@example.com',
      intent: 'Summarise [this](https://evil.example) <b>now</b>\nand then stop',
      agent: { name: 'digest', model: { driver: 'scripted', id: 'scripted-digest', script: [{ final: 'ok' }] } },
      tools: { builtin: ['fs.read'] },
      grants: { tools: ['fs.read'] },
      resources: { workspace: '.' },
      policies: ['never delete more than 10 rows without explicit approval'],
    },
    'task.yaml',
    '/tmp',
  );

  it('summarises agent, user and intent on one line, with the intent\'s markup kept as text', () => {
    expect(taskSummary(task)).toBe('digest for ivy@\u200bexample.com: Summarise \\[this\\]\\(https:\u200b//evil.example\\) \\<b\\>now\\</b\\> and then stop');
  });

  it('details the agent, model, grants, packs and limits', () => {
    const details = taskDetails(task, 'wf-parent');
    expect(details).toContain('**Agent** `digest` acting for **ivy@\u200bexample.com** (sub-agent of `wf-parent`)');
    expect(details).toContain('**Intent:** Summarise \\[this\\]\\(https:\u200b//evil.example\\) \\<b\\>now\\</b\\> and then stop');
    expect(details).toContain('- model: `scripted-digest` version `1` (scripted)');
    expect(details).toContain('- granted tools: `fs.read`');
    expect(details).toContain('- policy packs: `foundation`, plus 1 rule of the task');
    expect(details).toContain('- limits: 50 steps, deadline 10m, on deny: stop');
  });
});

/** Agent- and client-written text as the Temporal UI's Markdown renderer (marked, GFM) would show it. */
const rendered = (markdown: string) => marked.parse(markdown, { async: false, gfm: true });
const HOSTILE = [
  '[Approve this task here](https://evil.example/approve)',
  'ide\n\n[Approve this task here](https://evil.example/approve)\n\n',
  '![pixel](https://evil.example/p.png)',
  'sign in again at https://evil.example/sso to keep the session',
  'HTTPS://EVIL.EXAMPLE/x',
  'http:\\\\evil.example',
  'ftp://evil.example/f',
  'go to www.evil.example now',
  'write to admin@evil.example',
  'mailto:admin@evil.example',
  '<https://evil.example>',
  '<admin@evil.example>',
  '[ref][1]\n\n[1]: https://evil.example',
  '<a href="https://evil.example">x</a>',
  '<img src=x onerror=alert(1)>',
  '&lt;script&gt; &#60;b&#62;',
  '**bold** __bold__ *it* _it_ ~~gone~~',
  '`code` ``co`de``',
  '# heading',
  '> quote',
  '- item',
  '1. item',
  '2) item',
  '+ item',
  '=== x',
  '| a | b |\n|---|---|',
  '\\[escaped\\](https://evil.example)',
  'x\\',
];

describe('agent-written text in the Temporal UI', () => {
  it.each(HOSTILE)('%j renders as one paragraph of its own text, with no link or markup', (text) => {
    for (const markdown of [escapeMarkdown(oneLine(text)), taskSummary(parseTask({ user: 'u@example.com', intent: text, agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'x' }] } }, resources: { workspace: '.' } }, 'task.yaml', '/tmp'))]) {
      const html = rendered(markdown);
      expect(html).toMatch(/^<p>[^<]*<\/p>\n?$/);
    }
    const html = rendered(escapeMarkdown(oneLine(text))).replace(/^<p>|<\/p>\n?$/g, '').replaceAll('\u200b', '');
    const decoded = html.replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
    expect(decoded).toBe(oneLine(text));
  });

  it.each(HOSTILE)('%j as an MCP client name (the model id) stays inside its code span in the details', (name) => {
    const task = parseTask({ user: 'u@example.com', intent: 'edit', agent: { name: 'a', model: { driver: 'scripted', id: name, script: [{ final: 'x' }] } }, resources: { workspace: '.' } }, 'task.yaml', '/tmp');
    const html = rendered(taskDetails(task));
    expect(html).not.toMatch(/<a |<img |<h1|<blockquote|<table|<script|<em>|<del>/);
  });
});

describe('URLs in summaries', () => {
  it.each([
    ['https://api.example.com/v1/items?api_key=sk-123#frag', 'https://api.example.com/v1/items'],
    ['https://alice:s3cret@api.example.com/v1', 'https://api.example.com/v1'],
    ['https:alice:s3cret@api.example.com/v1', 'https://api.example.com/v1'],
    ['https:/alice:s3cret@api.example.com/v1', 'https://api.example.com/v1'],
    ['https:\\\\alice:s3cret@api.example.com/v1', 'https://api.example.com/v1'],
    [' https://alice:s3cret@api.example.com/v1', 'https://api.example.com/v1'],
    ['\thttps://alice:s3cret@api.example.com/v1 ', 'https://api.example.com/v1'],
    ['https://alice:pre@s3cret@api.example.com/v1', 'https://api.example.com/v1'],
    ['HTTPS://alice:s3cret@API.example.com:8443/v1', 'https://api.example.com:8443/v1'],
    ['https://alice@api.example.com/v1', 'https://api.example.com/v1'],
    ['https://:s3cret@api.example.com/v1', 'https://api.example.com/v1'],
    ['https://alice:s3cret%40x@api.example.com/v1', 'https://api.example.com/v1'],
    ['ftp://alice:s3cret@files.example.com/f', 'ftp://files.example.com/f'],
    ['ssh://alice:s3cret@git.example.com/r', 'ssh://git.example.com/r'],
    ['foo:alice:s3cret@host/x?y', 'host/x'],
    ['//alice:s3cret@api.example.com/v1', 'api.example.com/v1'],
    ['alice:s3cret@api.example.com', 'api.example.com'],
    ['not a url', 'not a url'],
  ])('%j is shown as %j', (url, shown) => {
    expect(bareUrl(url)).toBe(shown);
    expect(toolCallSummary('http.fetch', { url })).not.toMatch(/s3cret|alice|api_key|frag/);
  });
});
