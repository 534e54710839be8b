/**
 * Task files built to hurt: an alias bomb, bytes that are not UTF-8, nesting deep enough to
 * overflow a parser, a file or a field too large. Each is refused with ERR_TASK_FILE_INVALID
 * naming the file and the problem (exit 2 from the CLI), and nothing is started.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { TaskFileError } from '../../errors';
import { loadTaskFile } from '../../task/load-task-file';
import {
  firstInvalidUtf8Offset,
  MAX_TASK_COLLECTION_ENTRIES,
  MAX_TASK_FILE_BYTES,
  MAX_TASK_NESTING,
  MAX_TASK_STRING_CHARS,
  TASK_FIELD_LIMITS,
} from '../../task/task-file-limits';
import { REPO_ROOT } from '../support/warden-test-env';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-limits-'));
});

const head = `user: alice
intent: say hi
agent:
  name: greeter
  model:
    driver: scripted
    script:
`;
const valid = `${head}      - final: hi\n`;
const withArgs = (args: string) => `${head}      - tool: fs.read\n        args: ${args}\n      - final: hi\n`;
const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
const aliasBomb = `user: &a alice
intent: say hi
x0: &x0 [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
x1: &x1 [*x0, *x0, *x0, *x0, *x0, *x0, *x0, *x0, *x0, *x0]
x2: &x2 [*x1, *x1, *x1, *x1, *x1, *x1, *x1, *x1, *x1, *x1]
x3: &x3 [*x2, *x2, *x2, *x2, *x2, *x2, *x2, *x2, *x2, *x2]
x4: &x4 [*x3, *x3, *x3, *x3, *x3, *x3, *x3, *x3, *x3, *x3]
`;

type Content = string | Buffer | { sparseBytes: number };
interface Case {
  name: string;
  file: string;
  content: Content;
  path: string;
  message: RegExp;
}

const cases: Case[] = [
  { name: 'YAML alias bomb', file: 'bomb.yaml', content: aliasBomb, path: '', message: /aliases expand more than the limit/ },
  { name: 'invalid byte 0xff', file: 'latin.yaml', content: Buffer.concat([Buffer.from('user: a'), Buffer.from([0xff, 0xfe]), Buffer.from(`@example.com\n${valid.slice('user: alice\n'.length)}`)]), path: '', message: /not UTF-8: byte 0xff at line 1, column 8/ },
  { name: 'overlong encoding', file: 'overlong.yaml', content: Buffer.concat([Buffer.from(valid), Buffer.from('# '), Buffer.from([0xc0, 0xaf]), Buffer.from('\n')]), path: '', message: /not UTF-8: byte 0xc0 at line 9/ },
  { name: 'encoded surrogate', file: 'surrogate.yaml', content: Buffer.concat([Buffer.from('intent: '), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('\n')]), path: '', message: /not UTF-8: byte 0xed/ },
  { name: 'truncated sequence', file: 'truncated.json', content: Buffer.concat([Buffer.from('{"user": "a'), Buffer.from([0xe2, 0x82])]), path: '', message: /not UTF-8: byte 0xe2/ },
  { name: '50,000-deep array in args (YAML)', file: 'deep.yaml', content: withArgs(deep(50_000)), path: '', message: new RegExp(`nested more than ${MAX_TASK_NESTING} levels deep at line 9`) },
  { name: '50,000-deep array in args (JSON)', file: 'deep.json', content: `{"user":"a","intent":"b","args":${deep(50_000)}}`, path: '', message: /nested more than 64 levels deep at line 1/ },
  {
    name: 'block nesting past the limit',
    file: 'block.yaml',
    content: `${valid}extra:\n${Array.from({ length: MAX_TASK_NESTING + 2 }, (_, i) => `${' '.repeat(i + 1)}k${i}:`).join('\n')} end\n`,
    path: /extra(\.k\d+)+/.source,
    message: /nested more than 64 levels deep/,
  },
  { name: 'a file over the size limit', file: 'huge.yaml', content: { sparseBytes: 100 * 1024 * 1024 }, path: '', message: new RegExp(`104857600 bytes, more than the limit of ${MAX_TASK_FILE_BYTES}`) },
  { name: 'an intent over its limit', file: 'intent.yaml', content: valid.replace('intent: say hi', `intent: ${'x'.repeat(TASK_FIELD_LIMITS.intent + 1)}`), path: 'intent', message: new RegExp(`at most ${TASK_FIELD_LIMITS.intent} characters`) },
  { name: 'a user over its limit', file: 'user.yaml', content: valid.replace('user: alice', `user: ${'a'.repeat(400)}@example.com`), path: 'user', message: /at most 320 characters/ },
  { name: 'a string in args over the string limit', file: 'string.yaml', content: withArgs(`{ path: ${'y'.repeat(MAX_TASK_STRING_CHARS + 1)} }`), path: 'agent.model.script.0.args.path', message: /more than the limit of 262144/ },
  { name: 'an array with too many entries', file: 'wide.json', content: JSON.stringify({ user: 'a', intent: 'b', x: Array.from({ length: MAX_TASK_COLLECTION_ENTRIES + 1 }, () => 0) }), path: 'x', message: /10001 entries, more than the limit of 10000/ },
  // Escapes can write a lone UTF-16 surrogate that no UTF-8 byte sequence can: such text has no canonical JSON (RFC 8785), so no digest could commit to it.
  { name: 'a lone high surrogate escaped in a YAML intent', file: 'lone-high.yaml', content: valid.replace('intent: say hi', 'intent: "say \\uD800hi"'), path: 'intent', message: /lone UTF-16 surrogate/ },
  { name: 'a lone low surrogate escaped in YAML script args', file: 'lone-low.yaml', content: withArgs('{ path: "notes\\uDC00.txt" }'), path: 'agent.model.script.0.args.path', message: /lone UTF-16 surrogate/ },
  { name: 'a reversed surrogate pair in a JSON intent', file: 'reversed.json', content: '{"user":"a","intent":"x\\udc00\\ud800y"}', path: 'intent', message: /the text holds a lone UTF-16 surrogate/ },
  { name: 'a lone surrogate in a JSON key', file: 'lone-key.json', content: '{"user":"a","intent":"b","extra":{"k\\ud800":1}}', path: 'extra.k\uFFFD', message: /the key holds a lone UTF-16 surrogate/ },
  // zod records (and spreads) assign keys, so `__proto__` set the prototype and the entry vanished without a word.
  { name: 'a __proto__ key under resources.secrets (YAML)', file: 'proto.yaml', content: `${valid}resources:\n  secrets:\n    __proto__: x\n`, path: 'resources.secrets.__proto__', message: /a key named "__proto__" is not allowed/ },
  { name: 'a __proto__ key in script args (JSON)', file: 'proto.json', content: '{"user":"a","intent":"b","agent":{"name":"n","model":{"driver":"scripted","script":[{"tool":"fs.read","args":{"__proto__":{"path":"x"}}}]}}}', path: 'agent.model.script.0.args.__proto__', message: /a key named "__proto__" is not allowed/ },
  { name: 'a deadline of ages', file: 'deadline.yaml', content: `${valid}limits:\n  deadline: 99999999999h\n`, path: 'limits.deadline', message: /at most 30 days/ },
  { name: 'a duration with too many digits', file: 'digits.yaml', content: `${valid}limits:\n  toolTimeout: 9999999999999999999999s\n`, path: 'limits.toolTimeout', message: /a duration such as/ },
];

async function place(file: string, content: Content): Promise<string> {
  const path = join(dir, file);
  if (typeof content === 'object' && 'sparseBytes' in content) {
    await writeFile(path, '');
    await truncate(path, content.sparseBytes);
  } else {
    await writeFile(path, content);
  }
  return path;
}

describe('task file limits', () => {
  it.each(cases)('refuses $name naming the file and the problem', async ({ file, content, path, message }) => {
    const at = await place(file, content);
    const error = await loadTaskFile(at).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(TaskFileError);
    const failure = error as TaskFileError;
    expect(failure.code).toBe('ERR_TASK_FILE_INVALID');
    expect(failure.message).toContain(at);
    const issue = failure.issues.find((i) => new RegExp(`^${path}$`).test(i.path) && message.test(i.message));
    expect(issue, JSON.stringify(failure.issues).slice(0, 2000)).toBeDefined();
  });

  it('still loads a file that uses aliases moderately and has a byte-order mark', async () => {
    const text = `\ufeff${valid}tools:\n  builtin: &tools [fs.read]\ngrants:\n  tools: *tools\nresources:\n  workspace: .\n`;
    const task = await loadTaskFile(await place('fine.yaml', text));
    expect(task.grants.tools).toEqual(['fs.read']);
  });

  it('finds the first invalid UTF-8 byte exactly where a strict decoder fails (property)', () => {
    const strict = new TextDecoder('utf-8', { fatal: true });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.string({ unit: 'binary', maxLength: 16 }), (noise, text) => {
        // Valid text with random bytes spliced in: most inputs are invalid, some valid.
        const bytes = Buffer.concat([Buffer.from(text, 'utf8'), Buffer.from(noise)]);
        const offset = firstInvalidUtf8Offset(bytes);
        let decodes = true;
        try {
          strict.decode(bytes);
        } catch {
          decodes = false;
        }
        expect(offset === -1).toBe(decodes);
        if (offset >= 0) {
          // Everything before the offset is valid UTF-8, and the sequence starting there is not.
          expect(() => strict.decode(bytes.subarray(0, offset))).not.toThrow();
        }
      }),
      { numRuns: 2000 },
    );
  });

  it.each([
    ['bomb.yaml', aliasBomb],
    ['deep-cli.json', `{"user":"a","intent":"b","args":${deep(50_000)}}`],
  ])('`warden run` exits 2 for %s and starts nothing', async (file, content) => {
    const at = await place(file, content);
    const stateDir = join(dir, `state-${file}`);
    const result = await promisify(execFile)(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'run', at], {
      cwd: dir,
      // A Temporal port nothing listens on: had the CLI got past the task file it would try to start a server.
      env: { ...process.env, WARDEN_STATE_DIR: stateDir, WARDEN_TEMPORAL_PORT: '1', WARDEN_TEMPORAL_UI_PORT: '2' },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(at);
    expect(result.stderr).toMatch(/ERR_TASK_FILE_INVALID/);
    expect(result.stderr).not.toMatch(/\n\s+at .+:\d+:\d+/); // no stack trace
    expect(existsSync(stateDir)).toBe(false);
  });
});
