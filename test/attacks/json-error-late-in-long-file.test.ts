/**
 * A long JSON file of the user's that breaks near its end (a truncated download or export) is
 * reported in time linear in its length, whichever reader meets it.
 *
 * Attack (s19, atk19b, against json-syntax.ts as merged from h/open2): the scanner worked out the
 * line and column of every string's opening quote as it met it, each by counting the lines from the
 * text's start, so a file of N lines with a string on each took N^2/2 line searches before the error
 * could be named: a 2 MB pretty-printed history truncated at its end (80,000 lines) held
 * `warden replay --file` for 109 s, 0.5 MB for 7 s; a 0.75 MB task file for `warden run` ~15 s.
 * The place of a string's opening is now worked out only for the problem reported.
 *
 * Each row: a real file, pretty-printed, one string per line, cut before its last bracket, read by
 * the function the command uses; it must be refused at its last line within a bound ~50x what the
 * linear scan takes here (old code: ~7 s per row; the scan is synchronous, so a row cannot be cut short).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readHistoryFile } from '../../cli/history-file';
import { readApproverKeyFile } from '../../client/approvals';
import { readJwksFileAt } from '../../identity/keystore';
import { readTaskResultsFile } from '../../monitoring/collect-task-results';
import { parseTaskText, readTaskFileText } from '../../task/load-task-file';

const dir = mkdtempSync(join(tmpdir(), 'warden-json-late-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `lines` lines of `{ "k": "v" }` in an array, the closing bracket missing: ~25 bytes a line. */
function truncated(lines: number): string {
  return `[\n${Array.from({ length: lines }, (_, k) => `  {"key": "value ${k}"}`).join(',\n')}\n`;
}

async function message(action: () => unknown): Promise<string> {
  try {
    await action();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('no error');
}

// [reader, lines (0.5 MB: a task file is capped at 1 MiB), how it is read]
const rows: Array<[string, number, (file: string) => unknown]> = [
  ['a workflow history (warden replay --file)', 20_000, (file) => readHistoryFile(file)],
  ['task results (warden baseline learn --from)', 20_000, (file) => readTaskResultsFile(file)],
  ['a JWKS file', 20_000, (file) => readJwksFileAt(file)],
  ['an approver key file', 20_000, (file) => readApproverKeyFile(file)],
  ['a .json task file (warden run)', 20_000, async (file) => parseTaskText(await readTaskFileText(file), file)],
];

describe('a long JSON file broken at its end is located in linear time', () => {
  it.each(rows)('%s', async (what, lines, read) => {
    const file = join(dir, `${what.replace(/\W+/g, '-')}.json`);
    writeFileSync(file, truncated(lines), { mode: 0o600 });
    const started = performance.now();
    const said = await message(() => read(file));
    const ms = performance.now() - started;
    // The last line (`lines` + 2) is empty: the text ends there, inside the open array.
    expect(said).toMatch(new RegExp(`(line |:)${lines + 2}(, column |:)1\\b`));
    expect(ms, said).toBeLessThan(2_000);
  }, 60_000);
});
