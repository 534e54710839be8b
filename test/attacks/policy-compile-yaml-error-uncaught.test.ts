/**
 * `warden policy compile task.yaml` refuses a YAML task file `warden run` refuses, with the same
 * file:line:column, exit 2 and no stack trace.
 *
 * Attack (s19, atk19b; pre-existing, found as a new user trying malformed task files): the command
 * read a .yaml/.yml task file with the yaml package's `parse` and caught only Warden's errors, so a
 * YAML typo (an unclosed bracket, a key written twice) ended `warden: YAMLParseError: ...` with
 * exit 1, and an alias bomb `warden: ReferenceError: Excessive alias count ...` with its stack
 * trace; a non-core tag (`!!set`) was read and refused as "policies must be a list". It now reads
 * every task file through parseTaskText, as `warden run` does (the .json rows are
 * policy-compile-json-field-twice.test.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { policyCommand } from '../../cli/commands/policy';
import { EXIT } from '../../cli/exit-codes';
import { TaskFileError } from '../../errors';
import { parseTaskText, readTaskFileText } from '../../task/load-task-file';

const dir = mkdtempSync(join(tmpdir(), 'warden-policy-yaml-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function compile(file: string): Promise<{ code: number | string; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io = { stdout: (t: string) => void (stdout += t), stderr: (t: string) => void (stderr += t), env: {} };
  try {
    return { code: await policyCommand(['compile', file], io as never), stdout, stderr };
  } catch (error) {
    // What bin/warden.js prints for an error a command let through: `warden: <name>: <message>` and the stack, exit 1.
    return { code: `threw ${(error as Error).name}`, stdout, stderr };
  }
}

/** `warden run`'s first issue for the file (`file:line:column: ...`). */
async function runSays(file: string): Promise<string> {
  try {
    parseTaskText(await readTaskFileText(file), file);
  } catch (error) {
    if (!(error instanceof TaskFileError)) throw error;
    return error.message.split('\n')[1]!.trim();
  }
  throw new Error('warden run read the file');
}

const level = (name: string, of: string) => `${name}: &${name} [${Array(9).fill(`*${of}`).join(', ')}]\n`;
// [what, file name, text]
const rows: Array<[string, string, string]> = [
  ['an unclosed bracket', 'syntax.yaml', 'policies: [deny fs.write\n'],
  ['a key written twice', 'twice.yml', 'policies: [deny fs.write]\npolicies: [allow fs.write]\n'],
  ['an alias bomb', 'bomb.yaml', `a: &a [x, x, x, x, x, x, x, x, x]\n${level('b', 'a')}${level('c', 'b')}${level('d', 'c')}${level('e', 'd')}policies: [deny fs.write]\n`],
  ['a YAML tag outside the core schema', 'tag.yaml', 'policies: !!set {deny fs.write}\n'],
];

describe('policy compile refuses a YAML task file as warden run does', () => {
  it.each(rows)('%s', async (_what, name, text) => {
    const file = join(dir, name);
    writeFileSync(file, text);
    const said = await runSays(file);
    expect(said).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(:\\d+:\\d+)?: `));
    const { code, stdout, stderr } = await compile(file);
    expect({ code, stdout }).toEqual({ code: EXIT.usage, stdout: '' });
    expect(stderr).toContain(`warden policy: ERR_TASK_FILE_INVALID: invalid task file ${file}`);
    expect(stderr).toContain(said);
  });

  it('a valid YAML task file compiles as before (control)', async () => {
    const file = join(dir, 'valid.yaml');
    writeFileSync(file, 'user: alice@example.com\nintent: x\npolicies:\n  - deny fs.write\n  - allow fs.read\n');
    const { code, stdout } = await compile(file);
    expect(code).toBe(EXIT.ok);
    expect(stdout).toMatch(/fs\.write[\s\S]*fs\.read/);
  });
});
