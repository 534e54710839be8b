/**
 * The CLI's contract for what a user gives it, class by class, through the real `bin/warden.js`
 * on real files (and the real test Temporal server where a command needs one): bad input is one
 * line naming what is wrong and where, exit 2, never a Node error or a stack trace.
 *
 * - Files a command writes (cli/output-file.ts): `replay --export` and `receipt --out` to a folder,
 *   or under a missing folder, printed Node's EISDIR / ENOENT with a stack (exit 1), after the work.
 * - Files a command reads (regular-file.ts readUserFile): `policy compile <fifo>` printed a raw
 *   NotRegularFileError with a stack; an empty or binary .yaml said "no rules" (exit 0) where
 *   `warden run` refuses it; an approver key, results file, witness or pinned key set that was a
 *   FIFO was waited on forever.
 * - Options (cli/parse-command-args.ts): a single-value option given twice was last-wins
 *   (`run --workflow-id a --workflow-id b` started b); an empty value (`--key=`) named no option.
 * - `snapshots` / `rollback` of an unknown id said "nothing recorded" with no code;
 *   `credentials verify ""` exited 1; `keys rotate extra` said "expected jwks, list or rotate".
 */
import { execFile, execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { freePort } from '../temporal/ports';

const BIN = join(REPO_ROOT, 'bin/warden.js');
const HELLO = join(REPO_ROOT, 'examples', 'hello.yaml');

let dir: string;
/** One pair of ports for every row that must reach no server (nothing listens there): a test process has 100 pairs. */
let nowhere: Record<string, string>;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-user-files-'));
  nowhere = { WARDEN_TEMPORAL_PORT: String(await freePort()), WARDEN_TEMPORAL_UI_PORT: String(await freePort()), WARDEN_STATE_DIR: join(dir, 'state') };
});

// On code that took the last of a repeated option, `run` and `worker` rows started an embedded server there: stop it.
afterAll(async () => {
  await warden(['server', 'stop'], nowhere);
});

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** The real `warden` as a process. A command waiting on a FIFO is stopped after 30 s (it hangs on the old code). */
function warden(argv: string[], env: Record<string, string>, cwd = dir): Promise<Outcome> {
  return new Promise((resolve) => {
    execFile(process.execPath, [BIN, ...argv], { cwd, env: { ...process.env, WARDEN_APPROVER: '', WARDEN_APPROVER_KEY: '', WARDEN_CUSTODY_WITNESS: '', WARDEN_CUSTODY_TRUSTED_KEYS: '', ...env }, timeout: 30_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/** One clear line: `warden <command>: ...`, no stack trace, no Node error class. */
function expectOneLine(out: Outcome, ...says: (string | RegExp)[]): void {
  const first = out.stderr.split('\n')[0]!;
  expect(first, out.stderr).toMatch(/^warden [a-z]/);
  for (const s of says) expect(first, out.stderr).toMatch(typeof s === 'string' ? new RegExp(s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')) : s);
  expect(out.stderr).not.toMatch(/\n\s+at /);
  expect(out.stderr).not.toMatch(/NotRegularFileError|EISDIR|ENOENT|TypeError/);
}

/** A fresh path in this file's folder (nothing there yet). */
function place(kind: string): string {
  return join(dir, `${kind}-${Math.random().toString(36).slice(2)}`);
}

describe('a file a command is told to write: checked before the work, one line, exit 2', () => {
  /** Each way the path can be unwritable: the path, and the words that must name the problem. */
  const badPaths: [string, () => string, RegExp][] = [
    ['a folder', () => { const f = place('folder'); mkdirSync(f); return f; }, /it is a folder/],
    ['under a missing folder', () => join(place('missing'), 'out.json'), /its folder .* does not exist/],
    ['under a file', () => { const f = place('file'); writeFileSync(f, 'x'); return join(f, 'out.json'); }, /is not a folder/],
    ['a FIFO', () => { const f = place('fifo'); execFileSync('mkfifo', [f]); return f; }, /not a regular file/],
  ];
  const writers: [string, (path: string) => string[], string][] = [
    ['replay --export', (p) => ['replay', 'no-such-task', '--export', p], '--export'],
    ['receipt --out', (p) => ['receipt', 'no-such-task', '--out', p], '--out'],
    ['approvers add --out', (p) => ['approvers', 'add', `person${Math.random().toString(36).slice(2, 8)}`, '--out', p], '--out'],
  ];
  it.each(writers.flatMap(([name, argv, option]) => badPaths.map(([what, path, says]) => [name, what, argv, option, path, says] as const)))(
    '%s to %s',
    async (_name, _what, argv, option, path, says) => {
      const target = path();
      const out = await warden(argv(target), nowhere);
      expect(out.code, out.stderr).toBe(2);
      expectOneLine(out, `ERR_OUTPUT_FILE_INVALID: cannot write ${option} ${target}: `, says);
      // Refused before the work: no server was asked (none runs there), no approver was registered.
      expect(out.stderr).not.toContain('no Temporal server');
    },
  );

  it('approvers add --out an existing file: refused, the file kept as it was, no approver registered', async () => {
    const file = place('existing');
    writeFileSync(file, 'keep me');
    const out = await warden(['approvers', 'add', 'keeper', '--out', file], nowhere);
    expect(out.code, out.stderr).toBe(2);
    expectOneLine(out, `ERR_OUTPUT_FILE_INVALID: cannot write --out ${file}: it exists`);
    expect(readFileSync(file, 'utf8')).toBe('keep me');
    expect((await warden(['approvers', 'list', '--json'], nowhere)).stdout).not.toContain('keeper');
  });

  describe('with a real task', () => {
    let env: WardenTestEnv;
    let workflowId: string;
    const serverEnv = () => ({ WARDEN_STATE_DIR: TEST_STATE_DIR, WARDEN_TEMPORAL_PORT: testTemporalAddress().address.split(':').pop()!, WARDEN_TEMPORAL_UI_PORT: nowhere.WARDEN_TEMPORAL_UI_PORT! });
    beforeAll(async () => {
      env = await startWardenTestEnv();
      workflowId = (await env.runTask({ user: 'u', intent: 'nothing', agent: { name: 'idler', model: { driver: 'scripted', script: [{ final: 'ok' }] } } })).workflowId;
    }, 120_000);
    afterAll(async () => env?.close());

    it.each([
      ['replay --export', (p: string) => ['replay', workflowId, '--export', p], '--export'],
      ['receipt --out', (p: string) => ['receipt', workflowId, '--out', p], '--out'],
    ])('%s of a task that exists, to a folder: one line, exit 2 (was EISDIR and a stack, exit 1)', async (_name, argv, option) => {
      const folder = place('real-folder');
      mkdirSync(folder);
      const out = await warden(argv(folder), serverEnv());
      expect(out.code, out.stderr).toBe(2);
      expectOneLine(out, `ERR_OUTPUT_FILE_INVALID: cannot write ${option} ${folder}: it is a folder`);
    });

    it.each([
      ['replay --export', (p: string) => ['replay', workflowId, '--export', p], '"workflowId"'],
      ['receipt --out', (p: string) => ['receipt', workflowId, '--out', p], '"custody"'],
    ])('%s over an existing file replaces it whole, leaving no temporary file', async (_name, argv, holds) => {
      const folder = place('real-out');
      mkdirSync(folder);
      const file = join(folder, 'out.json');
      writeFileSync(file, 'old content');
      const out = await warden(argv(file), serverEnv());
      expect(out.code, out.stderr + out.stdout).toBe(0);
      expect(readFileSync(file, 'utf8')).toContain(holds);
      expect(readdirSync(folder)).toEqual(['out.json']);
      expect(statSync(file).isFile()).toBe(true);
    });
  });
});

describe('a file a command reads: the same checks and words for every command, exit 2', () => {
  /** Each way the file can be unusable: how to make it, and what the first line must say. */
  const badFiles: [string, (ext: string) => string, RegExp][] = [
    ['missing', (ext) => place('none') + ext, /no such file/],
    ['a FIFO', (ext) => { const f = place('fifo') + ext; execFileSync('mkfifo', [f]); return f; }, /not a regular file/],
    ['not UTF-8', (ext) => { const f = place('binary') + ext; writeFileSync(f, Buffer.from([0x7b, 0x00, 0xff, 0xfe, 0x0a])); return f; }, /not UTF-8: byte 0xff at line 1, column 3/],
  ];
  /** Every command slot that reads a file the user names, with the extension the slot expects. */
  const readers: [string, (file: string) => string[], string][] = [
    ['run <task>', (f) => ['run', f], '.yaml'],
    ['mcp tools <task>', (f) => ['mcp', 'tools', f], '.yaml'],
    ['policy compile <task>', (f) => ['policy', 'compile', f], '.yaml'],
    ['policy compile <rules>', (f) => ['policy', 'compile', f], '.txt'],
    ['replay --file', (f) => ['replay', '--file', f], '.json'],
    ['attest verify <file>', (f) => ['attest', 'verify', f], '.json'],
    ['receipt verify <file>', (f) => ['receipt', 'verify', f], '.json'],
    ['approve --key', (f) => ['approve', 'x', 'request-1', '--key', f], '.json'],
    ['kill --key', (f) => ['kill', 'x', '--key', f], '.json'],
    ['baseline learn --from', (f) => ['baseline', 'learn', '--from', f], '.json'],
    ['audit verify --checkpoint', (f) => ['audit', 'verify', '--checkpoint', f], '.jsonl'],
    ['audit verify --keys', (f) => ['audit', 'verify', '--keys', f], '.json'],
  ];
  it.each(readers.flatMap(([name, argv, ext]) => badFiles.map(([what, make, says]) => [name, what, argv, ext, make, says] as const)))('%s %s', async (_name, what, argv, ext, make, says) => {
    // A missing .txt rules file is taken for a sentence by `policy compile` when it has no "/": name it by path.
    const file = make(ext);
    const out = await warden(argv(file), nowhere);
    expect(out.code, `${what}: ${out.stderr}`).toBe(2);
    const text = out.stderr.split('\n').slice(0, 2).join(' ');
    expect(text).toContain(file);
    expect(text).toMatch(says);
    expect(out.stderr).not.toMatch(/\n\s+at /);
  });

  // What `warden run` refuses, `warden policy compile` refuses in the same words (both exit 2).
  it.each([
    ['empty', '', /the file holds nothing: a task file is a mapping of fields/],
    ['blank lines only', '\n\n  \n', /the file holds nothing: a task file is a mapping of fields/],
    ['a list', '- a\n- b\n', /the file holds a list: a task file is a mapping of fields/],
    ['binary', Buffer.from([0x00, 0x01, 0xff, 0xfe]), /not UTF-8: byte 0xff at line 1, column 3/],
  ])('a task file that is %s: policy compile says what run says, exit 2 (was "no rules", exit 0)', async (_what, content, says) => {
    const file = `${place('task')}.yaml`;
    writeFileSync(file, content);
    const compile = await warden(['policy', 'compile', file], nowhere);
    const run = await warden(['run', file], nowhere);
    expect(compile.code, compile.stderr + compile.stdout).toBe(2);
    expect(run.code, run.stderr).toBe(2);
    expect(compile.stderr).toMatch(says);
    expect(compile.stderr.replace(/^warden policy: /, '')).toBe(run.stderr.replace(/^warden run: /, ''));
    expect(compile.stdout).toBe('');
  });
});

describe('options: a single-value option given twice, or any option given an empty value, is refused naming it (exit 2)', () => {
  /** Every command's options that take a value: [command line before the options, single-value options, repeatable options]. */
  const commands: [string[], string[], string[]][] = [
    [['run', HELLO], ['workflow-id', 'task-queue'], []],
    [['worker'], ['task-queue'], []],
    [['mcp', 'serve', HELLO], ['port', 'token-env', 'task-queue'], []],
    [['list'], ['status', 'limit'], []],
    [['approve', 'x', 'request-1'], ['reason', 'key'], []],
    [['deny', 'x', 'request-1'], ['reason', 'key'], []],
    [['approvers', 'add', 'someone'], ['out'], []],
    [['attest', 'verify', 'f.json'], ['jwks', 'workspace', 'task'], []],
    [['audit', 'verify'], ['task', 'checkpoint'], ['keys']],
    [['baseline', 'learn'], ['since', 'limit', 'max-score'], ['agent', 'from']],
    [['console'], ['port', 'approver', 'key'], []],
    [['credentials', 'verify', 'token'], ['tool'], ['scope']],
    [['keys', 'rotate'], ['alg', 'verify-for'], []],
    [['kill', 'x'], ['key', 'reason'], []],
    [['alerts'], ['task', 'since', 'limit'], []],
    [['policy', 'test', 'foundation'], [], ['against']],
    [['receipt', 'x'], ['out'], []],
    [['receipt', 'verify', 'f.json'], ['jwks', 'witness'], []],
    [['replay', 'x'], ['export'], []],
    [['replay'], ['file'], []],
    [['rollback', 'x'], ['run'], []],
  ];
  const twice = commands.flatMap(([head, single]) => single.map((option) => [head.join(' '), option, [...head, `--${option}`, 'v1', `--${option}`, 'v2']] as const));
  it.each(twice)('warden %s --%s twice', async (_head, option, argv) => {
    const out = await warden([...argv], nowhere);
    expect(out.code, out.stderr).toBe(2);
    expectOneLine(out, `option --${option} was given twice; give it once`);
  });

  const empty = commands.flatMap(([head, single, multiple]) => [...single, ...multiple].flatMap((option) => [
    [head.join(' '), `--${option}=`, [...head, `--${option}=`]] as const,
    [head.join(' '), `--${option} ''`, [...head, `--${option}`, '']] as const,
  ]));
  it.each(empty)('warden %s %s', async (_head, _given, argv) => {
    const out = await warden([...argv], nowhere);
    expect(out.code, out.stderr).toBe(2);
    const option = /--[a-z-]+/.exec(_given)![0];
    expectOneLine(out, `option ${option} needs a value (it was given an empty one)`);
  });

  // Options meant to repeat stay allowed: the parser takes every value.
  it.each([
    [['credentials', 'verify', 'not-a-token', '--scope', 'a', '--scope', 'b'], 1],
    [['audit', 'verify', '--keys', '/nonexistent-a', '--keys', '/nonexistent-b'], 2],
  ])('warden %j: a repeatable option given twice is not refused by the parser', async (argv, code) => {
    const out = await warden(argv, nowhere);
    expect(out.code, out.stderr + out.stdout).toBe(code);
    expect(out.stderr).not.toContain('given twice');
  });
});

describe('other answers made consistent', () => {
  it.each([['snapshots'], ['rollback']])('warden %s of an unknown id: ERR_TASK_RECORDS_NOT_FOUND, exit 1 (as ERR_TASK_NOT_FOUND)', async (command) => {
    const out = await warden([command, 'no-such-task'], nowhere);
    expect(out.code, out.stderr).toBe(1);
    expectOneLine(out, `warden ${command}: ERR_TASK_RECORDS_NOT_FOUND: nothing recorded for no-such-task under `);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
  });

  it.each([
    [['credentials', 'verify', ''], 'the token is empty'],
    [['credentials', 'verify', '  '], 'the token is empty'],
    [['keys', 'rotate', 'extra'], 'rotate takes no argument (got "extra")'],
    [['keys', 'list', 'a', 'b'], 'list takes no argument (got "a b")'],
    [['keys', 'rotat'], 'expected jwks, list or rotate (got "rotat")'],
    // The same words wherever a sub-command is given an argument it does not take (cli/parse-command-args.ts argumentCountText).
    [['approvers', 'list', 'extra'], 'list takes no argument (got "extra")'],
    [['approvers', 'add', 'bob', 'extra'], 'add takes one argument (got "bob extra")'],
    [['server', 'status', 'extra'], 'status takes no argument (got "extra")'],
    [['db', 'status', 'extra'], 'status takes no argument (got "extra")'],
    [['baseline', 'list', 'extra'], 'list takes no argument (got "extra")'],
  ])('warden %j: bad usage, exit 2, saying what is wrong', async (argv, says) => {
    const out = await warden(argv, nowhere);
    expect(out.code, out.stderr + out.stdout).toBe(2);
    expectOneLine(out, says);
  });
});
