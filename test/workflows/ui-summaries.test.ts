/**
 * What the Temporal UI shows of a task, as tables: one short line per call, no URL credentials or
 * query strings, the measured effect of a held action, and agent-written text kept as text
 * (the UI renders Markdown).
 */
import { describe, expect, it } from 'vitest';
import { parseTask } from '../../task/load-task-file';
import { approvalSummary, callTarget, effectSummary, escapeMarkdown, oneLine, policyCheckSummary, taskDetails, taskSummary, toolCallSummary } from '../../workflows/ui-summaries';

describe('call summaries', () => {
  it.each([
    ['fs.write', { path: 'out/report.md', content: 'secret body' }, 'fs.write out/report.md'],
    ['fs.read', { path: 'notes.txt' }, 'fs.read notes.txt'],
    ['fs.list', {}, 'fs.list .'],
    ['http.fetch', { url: 'https://api.example.com/v1/items?api_key=sk-123#frag' }, 'http.fetch GET https://api.example.com/v1/items'],
    ['http.fetch', { url: 'https://user:pa55@api.example.com/x', method: 'post', body: 'secret' }, 'http.fetch POST https://api.example.com/x'],
    ['sql.exec', { database: 'crm', sql: "DELETE FROM leads WHERE email = 'a@b.c'" }, 'sql.exec crm: DELETE FROM leads'],
    ['sql.exec', { database: 'crm', sql: "UPDATE leads SET name = 'x'" }, 'sql.exec crm: UPDATE leads'],
    ['sql.exec', { database: 'crm', sql: "insert into leads values ('pii')" }, 'sql.exec crm: INSERT INTO leads'],
    ['sql.query', { database: 'crm', sql: 'select email from leads' }, 'sql.query crm: SELECT FROM leads'],
    ['word-count', { text: 'a private letter' }, 'word-count'],
    ['fs.write', { path: '[x](javascript:alert(1)) <img src=x>' }, 'fs.write \\[x\\](javascript:alert(1)) \\<img src=x\\>'],
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
    expect(approvalSummary('http.fetch', { url: 'https://x.example/a?q=1' }, undefined)).toBe('approval: http.fetch GET https://x.example/a');
    expect(policyCheckSummary('fs.write', { path: 'out/a.md' })).toBe('policy: fs.write out/a.md');
  });

  it('keeps summaries to one short line', () => {
    expect(oneLine('a\nb\r\tc\u0000d')).toBe('a b c d');
    expect(oneLine('x'.repeat(500))).toHaveLength(120);
    expect(oneLine('x'.repeat(500)).endsWith('…')).toBe(true);
  });

  it.each([
    ['[click](https://evil.example)', '\\[click\\](https://evil.example)'],
    ['![img](x)', '\\!\\[img\\](x)'],
    ['<script>x</script>', '\\<script\\>x\\</script\\>'],
    ['**bold** _it_ `code` a|b \\', '\\*\\*bold\\*\\* \\_it\\_ \\`code\\` a\\|b \\\\'],
    ['plain words, 42 (ok).', 'plain words, 42 (ok).'],
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
    expect(taskSummary(task)).toBe('digest for ivy@example.com: Summarise \\[this\\](https://evil.example) \\<b\\>now\\</b\\> and then stop');
  });

  it('details the agent, model, grants, packs and limits', () => {
    const details = taskDetails(task, 'wf-parent');
    expect(details).toContain('**Agent** `digest` acting for **ivy@example.com** (sub-agent of `wf-parent`)');
    expect(details).toContain('**Intent:** Summarise \\[this\\](https://evil.example) \\<b\\>now\\</b\\> and then stop');
    expect(details).toContain('- model: `scripted-digest` version `1` (scripted)');
    expect(details).toContain('- granted tools: `fs.read`');
    expect(details).toContain('- policy packs: `foundation`, plus 1 rule of the task');
    expect(details).toContain('- limits: 50 steps, deadline 10m, on deny: stop');
  });
});
