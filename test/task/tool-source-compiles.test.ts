/**
 * A custom tool whose source does not compile is refused when the task file loads (exit 2, the
 * line of its `source`), as every other mistake in a task file is; newcomer s22: it failed only
 * when the agent called it (ERR_SANDBOX_COMPILE, no line), and with `onDeny: continue` the task
 * still completed, exit 0. A source that compiles loads, and loading runs none of it.
 */
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TaskFileError } from '../../errors';
import { loadTaskFile } from '../../task/load-task-file';

function taskWith(source: string): string {
  return [
    'user: alice@example.com',
    'intent: count words',
    'agent:',
    '  name: scribe',
    '  model: { driver: scripted, script: [{ final: done }] }',
    'tools:',
    '  custom:',
    '    - name: word-count',
    '      description: Counts the words in a text.',
    `      source: ${JSON.stringify(source)}`,
    'grants:',
    '  tools: [word-count]',
    '',
  ].join('\n');
}

async function load(source: string): Promise<{ ok: true } | { ok: false; path: string; line?: number; message: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'warden-tool-source-'));
  const file = join(dir, 'task.yaml');
  await writeFile(file, taskWith(source));
  try {
    await loadTaskFile(file);
    return { ok: true };
  } catch (error) {
    if (!(error instanceof TaskFileError)) throw error;
    const issue = error.issues[0]!;
    return { ok: false, path: issue.path, ...(issue.line === undefined ? {} : { line: issue.line }), message: issue.message };
  }
}

describe('a custom tool source, at load', () => {
  it.each([
    ['a stray brace', 'return input.text.split(" ").length; }'],
    ['an operator with no operand', 'return input.a +;'],
    ['an import statement', 'import fs from "node:fs"; return 1;'],
    ['an unterminated string', 'return "words'],
  ])('%s: refused at the line of its source, naming the tool and the parse error', async (_name, source) => {
    const result = await load(source);
    expect(result).toMatchObject({ ok: false, path: 'tools.custom.0.source', line: 10 });
    if (!result.ok) expect(result.message).toMatch(/tool "word-count" does not compile \(SyntaxError: .+\)/);
  });

  it.each([
    ['a return', 'return input.text.split(" ").length;'],
    ['an await of a capability', 'const t = await warden.fs.read("notes.txt"); return t.length;'],
    ['no return at all', 'const x = 1;'],
  ])('%s: loads', async (_name, source) => {
    expect(await load(source)).toEqual({ ok: true });
  });

  it('runs nothing of the source while checking it', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-tool-source-'));
    const marker = join(dir, 'ran');
    // Would write the marker if the body ran (it never can in the sandbox; here it must not run at all).
    const result = await load(`require("node:fs").writeFileSync(${JSON.stringify(marker)}, "x"); return 1;`);
    expect(result).toEqual({ ok: true });
    await expect(readFile(marker)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
