/**
 * Found while checking the lazy yaml load (37280a0; the same before it, so not a regression of that
 * change): a `.json` task file whose first token is not JSON (a YAML file saved as .json, the
 * usual mistake) is reported at the file's end, not where the bad token is. Node 20's V8 says
 * `Unexpected token 'a', "name: x\ngoal: do\n" is not valid JSON` with no position, and
 * `jsonErrorOffset` (task/load-task-file.ts) then falls back to `text.length`. The message also
 * quotes the file's opening text, newlines and all, into the one-line issue.
 */
import { describe, expect, it } from 'vitest';
import { TaskFileError } from '../../../errors';
import { parseTaskText } from '../../../task/load-task-file';

function issueOf(text: string): { line?: number; column?: number; message: string } {
  try {
    parseTaskText(text, '/tmp/task.json');
  } catch (error) {
    if (error instanceof TaskFileError) return error.issues[0]!;
    throw error;
  }
  throw new Error('parsed');
}

describe('a .json task file that is not JSON from its first token', () => {
  it.each([
    ['YAML saved as .json', 'name: x\ngoal: do\n', 1, 2],
    ['a longer YAML file', `user: alice@example.com\nintent: Count the words.\nagent:\n  name: scribe\n`, 1, 1],
    ['a bare word on line 2', '{\n  oops: 1\n}\n', 2, 3],
  ])('%s: located at the token, on one line', (_case, text, line, column) => {
    const issue = issueOf(text);
    expect({ line: issue.line, column: issue.column }).toEqual({ line, column });
    expect(issue.message).not.toContain('\n');
  });
});
