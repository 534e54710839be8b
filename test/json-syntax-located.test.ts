/**
 * A JSON file of the user's that is not JSON is reported at the character where it stops being JSON
 * (json-syntax.ts), whatever the file is: a task file (`warden run`, `warden policy compile`), a
 * JWKS (`warden attest`/`receipt --jwks`, an operator's), an approver key file, a signing key file,
 * a workflow history (`warden replay`), task results (`warden monitor`).
 *
 * Was atk18's open finding `json-task-unexpected-token-located-at-end` (s18, low, pre-existing): a
 * `.json` task file holding YAML was located at the file's end, as Node 20's JSON.parse names no
 * position for that error and the loader fell back to the text's length; its message quoted the
 * file's text across lines. The other kinds said only "not JSON" (or quoted V8's message, the key
 * files included), and `warden policy compile` read a .json task file as YAML.
 *
 * Each row runs on real files through the function the command uses; the grammar itself is held
 * against JSON.parse on every prefix of a set of texts, valid and not.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readJsonFile } from '../cli/commands/attest';
import { policyCommand } from '../cli/commands/policy';
import { EXIT } from '../cli/exit-codes';
import { readHistoryFile } from '../cli/history-file';
import { readApproverKeyFile } from '../client/approvals';
import { TaskFileError } from '../errors';
import { openKeySourceKeystore } from '../identity/key-source-keystore';
import { readJwksFileAt } from '../identity/keystore';
import { jsonSyntaxProblem } from '../json-syntax';
import { readTaskResultsFile } from '../monitoring/collect-task-results';
import { parseTaskText, readTaskFileText } from '../task/load-task-file';

const dir = mkdtempSync(join(tmpdir(), 'warden-json-located-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** What a reader reports for a file that is not JSON: the message the user sees, and how it names a place. */
interface Kind {
  name: string;
  read(file: string): Promise<string>;
  where(file: string, line: number, column: number): string;
  /** Reads the file as a task file does: a leading byte-order mark is dropped, not an error. */
  dropsBom?: boolean;
  /** JSON lines: an empty file is no results, not an error. */
  acceptsEmpty?: boolean;
  /** A private key's file: the place is named, nothing of its text (no message quoting it). */
  quotesNothing?: boolean;
}

async function thrown(action: () => unknown): Promise<Error> {
  try {
    await action();
  } catch (error) {
    return error as Error;
  }
  throw new Error('no error');
}

/** The stderr of a command that writes its failure there, and its exit code when it has one. */
function stderrOf(run: (io: { stdout(t: string): void; stderr(t: string): void; env: NodeJS.ProcessEnv }) => unknown): Promise<string> {
  let text = '';
  const io = { stdout() {}, stderr: (t: string) => void (text += t), env: {} };
  return Promise.resolve(run(io)).then(() => text.replace(/\n$/, ''));
}

const lineColumn = (_file: string, line: number, column: number) => `line ${line}, column ${column}`;

const kinds: Kind[] = [
  {
    name: 'a task file (warden run)',
    read: async (file) => {
      const error = await thrown(async () => parseTaskText(await readTaskFileText(file), file));
      if (!(error instanceof TaskFileError)) throw error;
      return error.message;
    },
    where: (file, line, column) => `${file}:${line}:${column}: not valid JSON: `,
    dropsBom: true,
  },
  {
    name: 'a task file (warden policy compile)',
    read: (file) =>
      stderrOf(async (io) => expect(await policyCommand(['compile', file], io)).toBe(EXIT.usage)),
    // Read as warden run reads it (parseTaskText): the same file:line:column and excerpt.
    where: (file, line, column) => `${file}:${line}:${column}: not valid JSON: `,
    dropsBom: true,
  },
  { name: 'a JWKS (warden attest --jwks)', read: (file) => stderrOf((io) => expect(readJsonFile(io, 'attest', file, 'JWKS')).toBeUndefined()), where: lineColumn },
  { name: "an operator's JWKS file", read: async (file) => (await thrown(() => readJwksFileAt(file))).message, where: lineColumn },
  { name: 'an approver key file', read: async (file) => (await thrown(() => readApproverKeyFile(file))).message, where: lineColumn, quotesNothing: true },
  { name: 'a signing key file', read: async (file) => (await thrown(() => openKeySourceKeystore(file))).message, where: lineColumn, quotesNothing: true },
  { name: 'a workflow history (warden replay)', read: async (file) => (await thrown(() => readHistoryFile(file))).message, where: lineColumn },
  { name: 'task results (warden monitor)', read: async (file) => (await thrown(() => readTaskResultsFile(file))).message, where: lineColumn, acceptsEmpty: true },
];

// [what, text, line, column, what the message says]
const inputs: Array<[string, string, number, number, RegExp]> = [
  ['YAML saved as .json', 'name: x\ngoal: do\n', 1, 2, /unexpected "a" in the word "name"/],
  ['YAML whose first word cannot begin JSON', 'user: alice@example.com\nintent: Count the words.\n', 1, 1, /unexpected "u" in the word "user"/],
  ['a bare word on line 2', '{\n  oops: 1\n}\n', 2, 3, /unexpected "o" where a field name in double quotes should come/],
  ['a trailing comma in an object', '{\n  "name": "x",\n}\n', 3, 1, /no comma after the last field/],
  ['a trailing comma in an array', '{\n  "tools": ["a", "b",]\n}\n', 2, 22, /no comma after the last element/],
  ['an unterminated string', '{\n  "name": "x\n}\n', 2, 13, /the string opened at line 2, column 11 is not closed on its line/],
  ['a bad escape', '{\n  "name": "a\\qb"\n}\n', 2, 13, /bad escape "\\q"/],
  ['a truncated file', '{\n  "name": "x",\n  "goal": [1, 2', 3, 16, /the text ends where "," or "]" should come; the array opened at line 3, column 11 is not closed/],
  ['single quotes', "{'name': 'x'}", 1, 2, /unexpected "'" where a field name in double quotes should come/],
  ['a byte-order mark', '\ufeff{"name": "x"}', 1, 1, /byte-order mark/],
  ['an empty file', '', 1, 1, /the text is empty/],
];

const rows: Array<[string, string, Kind, string, number, number, RegExp]> = kinds.flatMap((kind) =>
  inputs
    .filter(([what]) => !(kind.dropsBom === true && what === 'a byte-order mark') && !(kind.acceptsEmpty === true && what === 'an empty file'))
    .map(([what, text, line, column, says]): [string, string, Kind, string, number, number, RegExp] => [kind.name, what, kind, text, line, column, says]),
);

describe('a JSON file that is not JSON is reported at the character where it stops being JSON', () => {
  it.each(rows)('%s: %s', async (_kind, what, kind, text, line, column, says) => {
    const file = join(dir, `${kind.name.replace(/\W+/g, '-')}-${what.replace(/\W+/g, '-')}.json`);
    writeFileSync(file, text, { mode: 0o600 });
    const message = await kind.read(file);
    expect(message).toContain(kind.where(file, line, column));
    if (kind.quotesNothing === true) {
      expect(message).not.toMatch(/unexpected|name|oops|alice/);
    } else {
      expect(message).toMatch(says);
    }
    // One line, but for the task file's excerpt of the offending line under it.
    if (kind.dropsBom !== true) expect(message).not.toContain('\n');
  });
});

describe('the grammar agrees with JSON.parse', () => {
  const texts = [
    '{"a": [1, -2.5e+3, 0, true, false, null, "x\\u00e9\\n"], "b": {"c": {}}, "d": []}',
    ' [ {"a" : 1 } , [ ] , "" ] ',
    '{"a": 01}', '{"a": 1.}', '{"a": .5}', '{"a": +1}', '{"a": 1e}', '{"a": -}', '[1,,2]', '{,}', '{"a":1,,"b":2}', '{"a"::1}',
    '"\\ud83d"', '"tab\there"', '[truefalse]', 'nulll', '{"a":1}}', '[[[[[]]]]]', '\u00a0{}', '{"\\/":"\\b\\f\\r"}',
  ];
  it.each(texts)('%j and every prefix of it', (text) => {
    for (let end = 0; end <= text.length; end += 1) {
      const prefix = text.slice(0, end);
      let parses = true;
      try {
        JSON.parse(prefix);
      } catch {
        parses = false;
      }
      const problem = jsonSyntaxProblem(prefix);
      expect({ prefix, valid: problem === undefined }).toEqual({ prefix, valid: parses });
      if (problem !== undefined) expect(problem.offset).toBeLessThanOrEqual(prefix.length);
    }
  });

  it('scans any depth without recursion', () => {
    expect(jsonSyntaxProblem('['.repeat(200_000) + ']'.repeat(200_000))).toBeUndefined();
    expect(jsonSyntaxProblem('['.repeat(200_000))?.message).toMatch(/the text ends where a value should come/);
  });
});
