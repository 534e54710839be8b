/**
 * `warden policy compile task.json` reads a .json task file as `warden run` does: a file `run`
 * refuses is refused here too, at the same file:line:column, and never shown with rules `run`
 * would not have read.
 *
 * Attack (s19, atk19b, against cli/commands/policy.ts as merged from h/open2): the merge read a
 * .json task file with its own JSON.parse, which keeps the last of a field named twice, so a file
 * `{"policies": ["allow ..."], ..., "policies": ["deny ..."]}` compiled and showed only the second
 * list (exit 0 for valid rules), while `warden run` refuses the file ("the field "policies" is named
 * twice"), and YAML, which read .json files here before the merge, refused it too ("Map keys must
 * be unique"). A reviewer running `policy compile` saw rules other than the ones written first.
 * The command now reads a .json file through parseTaskText, as `run` does.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { policyCommand } from '../../cli/commands/policy';
import { EXIT } from '../../cli/exit-codes';
import { TaskFileError } from '../../errors';
import { parseTaskText, readTaskFileText } from '../../task/load-task-file';

const dir = mkdtempSync(join(tmpdir(), 'warden-policy-json-twice-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function compile(file: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await policyCommand(['compile', file], { stdout: (t: string) => void (stdout += t), stderr: (t: string) => void (stderr += t), env: {} } as never);
  return { code, stdout, stderr };
}

/** What `warden run` says of the file (its loader's first issue as `file:line:column: ...`), or undefined when it reads it. */
async function runSays(file: string): Promise<string | undefined> {
  try {
    parseTaskText(await readTaskFileText(file), file);
    return undefined;
  } catch (error) {
    if (!(error instanceof TaskFileError)) throw error;
    return error.message.split('\n')[1]!.trim();
  }
}

const head = '"user": "alice@example.com", "intent": "x"';
// [what, file text, line, column]
const refused: Array<[string, string, number, number]> = [
  ['policies named twice', `{${head},\n "policies": ["deny fs.write"],\n "policies": ["allow fs.write"]}`, 3, 2],
  ['policies named twice, the same rules', `{"policies": ["deny fs.write"], "policies": ["deny fs.write"]}`, 1, 33],
  ['another field named twice', `{${head}, "intent": "y", "policies": ["deny fs.write"]}`, 1, 46],
  ['a field named twice in a nested object', `{${head}, "limits": {"maxSteps": 1, "maxSteps": 2}, "policies": ["deny fs.write"]}`, 1, 72],
];

describe('policy compile refuses a .json task file warden run refuses', () => {
  it.each(refused)('%s', async (what, text, line, column) => {
    const file = join(dir, `${what.replace(/\W+/g, '-')}.json`);
    writeFileSync(file, text);
    const said = await runSays(file);
    expect(said).toContain(`${file}:${line}:${column}: `);
    const { code, stdout, stderr } = await compile(file);
    expect({ code, stdout }).toEqual({ code: EXIT.usage, stdout: '' });
    expect(stderr).toContain(said!);
    expect(stderr).toContain('named twice');
  });

  it('a valid .json task file compiles as before (control)', async () => {
    const file = join(dir, 'valid.json');
    writeFileSync(file, `\ufeff{${head}, "policies": ["deny fs.write", "allow fs.read"]}`);
    expect(await runSays(file)).toBeUndefined();
    const { code, stdout } = await compile(file);
    expect(code).toBe(EXIT.ok);
    expect(stdout).toMatch(/fs\.write[\s\S]*fs\.read/);
  });
});
