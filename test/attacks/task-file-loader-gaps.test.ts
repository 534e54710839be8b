/**
 * Regression (guarantee 3, task files checked at load; was test/attacks/open/): every file Warden
 * reads from a path the user gave at load is refused at once unless it is a regular file, a JSON
 * task file names each field once, and a YAML task file uses only the core schema's tags.
 *
 * The old loader:
 * - opened the task file (`open(file, 'r')`) before its regular-file check, so `warden run pipe.yaml`
 *   waited for a writer forever;
 * - read a policy pack's rules.txt with `readFileSync`, so a FIFO there stopped the whole process;
 * - kept the last of a JSON field named twice: `"policies": [rule], "policies": []` loaded with no
 *   policy (YAML refuses it);
 * - read `limits: !!omap [ maxSteps: 3 ]` (or `!!set`) as an empty object: the default limits.
 *
 * The FIFO cases run `warden run` in a child process (a blocked synchronous read would stop this
 * one): the fixed loader answers as soon as the CLI starts; the kill timeout only guards a hang.
 */
import { execFile, execFileSync } from 'node:child_process';
import { closeSync, constants, openSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { firstDuplicateJsonKey, loadTaskFile } from '../../task/load-task-file';
import { REPO_ROOT } from '../support/warden-test-env';

let dir: string;
const fifos: string[] = [];

function mkfifo(path: string): string {
  execFileSync('mkfifo', [path]);
  fifos.push(path);
  return path;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-loader-gaps-'));
  await mkdir(join(dir, 'ws'));
});
afterAll(() => {
  // Releases a reader a regression left blocked in open(): a writer that opens and closes gives it end-of-file.
  for (const fifo of fifos) {
    try {
      closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // no reader waiting (ENXIO): nothing to release
    }
  }
});

const yamlHead = `user: alice@example.com
intent: hi
agent:
  name: scribe
  model:
    driver: scripted
    script:
      - final: done
resources:
  workspace: ./ws
`;

async function wardenRun(cwd: string, file: string): Promise<{ code: number | string | null; stdout: string; stderr: string }> {
  const env = { ...process.env, TEMPORAL_ADDRESS: '127.0.0.1:1', WARDEN_STATE_DIR: join(dir, 'state'), WARDEN_TELEMETRY: '0' };
  return new Promise((resolve) => {
    execFile(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'run', file, '--no-worker'], { cwd, env, timeout: 120_000, killSignal: 'SIGKILL' }, (error, stdout, stderr) => {
      const e = error as (Error & { code?: number | string; killed?: boolean }) | null;
      resolve({ code: e === null ? 0 : e.killed === true ? 'killed (hung)' : (e.code ?? null), stdout, stderr });
    });
  });
}

/** [what, set it up in its own folder (returns the task file), the code and what stderr must say] */
const notRegular: [string, (at: string) => Promise<string>, string, string][] = [
  ['the task file is a FIFO', async (at) => mkfifo(join(at, 'pipe.yaml')), 'ERR_TASK_FILE_UNREADABLE', 'not a regular file'],
  ['the task file is a device (/dev/zero)', async () => '/dev/zero', 'ERR_TASK_FILE_UNREADABLE', 'not a regular file'],
  [
    "a policy pack's rules.txt is a FIFO",
    async (at) => {
      await mkdir(join(at, 'pack'));
      mkfifo(join(at, 'pack', 'rules.txt'));
      await writeFile(join(at, 't.yaml'), `${yamlHead}policyPacks: [./pack]\n`);
      return 't.yaml';
    },
    'ERR_TASK_FILE_INVALID',
    'rules.txt is not a regular file',
  ],
  [
    'the rules.txt of a pack another pack @extends is a FIFO',
    async (at) => {
      await mkdir(join(at, 'outer'));
      await mkdir(join(at, 'inner'));
      await writeFile(join(at, 'outer', 'rules.txt'), '@extends inner\n');
      mkfifo(join(at, 'inner', 'rules.txt'));
      await writeFile(join(at, 't.yaml'), `${yamlHead}policyPacks: [./outer]\n`);
      return 't.yaml';
    },
    'ERR_TASK_FILE_INVALID',
    'rules.txt is not a regular file',
  ],
  [
    'a ${file:} secret is a FIFO',
    async (at) => {
      mkfifo(join(at, 'token'));
      await writeFile(join(at, 't.yaml'), `${yamlHead}  hosts: [api.example.com]\n  secrets:\n    api.example.com:\n      Authorization: "Bearer \${file:./token}"\n`);
      return 't.yaml';
    },
    'ERR_TASK_FILE_INVALID',
    'token is not a file',
  ],
  [
    'a database is a FIFO',
    async (at) => {
      mkfifo(join(at, 'db.sqlite'));
      await writeFile(join(at, 't.yaml'), `${yamlHead}  databases:\n    main: ./db.sqlite\n`);
      return 't.yaml';
    },
    'ERR_TASK_FILE_INVALID',
    'db.sqlite is not a file',
  ],
];

describe('a file the loader reads that is not a regular file is refused, not waited on', () => {
  it.each(notRegular)('warden run: %s exits 2', async (what, setUp, code, said) => {
    const at = join(dir, what.replace(/\W+/g, '-'));
    await mkdir(at);
    await mkdir(join(at, 'ws'));
    const file = await setUp(at);
    const out = await wardenRun(at, file);
    expect(out.code, out.stderr).toBe(2);
    expect(out.stderr).toContain(`: ${code}: `);
    expect(out.stderr).toContain(said);
    expect(out.stdout).toBe('');
  }, 180_000);
});

describe('a JSON task file names each field once', () => {
  const head = '{"user":"alice@example.com","intent":"hi","agent":{"name":"scribe","model":{"driver":"scripted","script":[{"final":"done"}]}},"resources":{"workspace":"./ws"},';
  // [what, the text after head, the field named twice, its line, its column, the object it is in]
  const cases: [string, string, string, number, number, string][] = [
    ['`policies` twice (the last, empty, list would drop the guardrail)', '\n "policies":["never write inside /workspace"],\n "policies":[]}', 'policies', 3, 2, ''],
    ['a nested field twice', '\n "limits":{"maxSteps":3,\n  "maxSteps":50}}', 'maxSteps', 3, 3, 'limits'],
    ['the same key written with an escape', '\n "intent":"again"}', 'intent', 2, 2, ''],
    ['a key twice inside a list item', '\n "tools":{"custom":[{"name":"a","name":"b"}]}}', 'name', 2, 33, 'tools.custom.0'],
  ];
  it.each(cases)('%s is refused with its line and column', async (_what, tail, key, line, column, path) => {
    const file = join(dir, `twice-${key}-${line}-${column}.json`);
    await writeFile(file, head.replace('"intent"', key === 'intent' ? '"\\u0069ntent"' : '"intent"') + tail);
    const outcome = await loadTaskFile(file).then(
      (task) => ({ loaded: true, policies: task.policies }),
      (error: { code?: string; issues?: { line?: number; column?: number; path?: string; message?: string }[] }) => ({
        loaded: false,
        code: error.code,
        at: [error.issues?.[0]?.line, error.issues?.[0]?.column, error.issues?.[0]?.path],
        message: error.issues?.[0]?.message,
      }),
    );
    expect(outcome).toEqual({ loaded: false, code: 'ERR_TASK_FILE_INVALID', at: [line, column, path], message: `the field "${key}" is named twice in one object (a JSON task file names each field once)` });
  });

  it('finds no duplicate where keys only look alike or repeat in different objects', () => {
    expect(firstDuplicateJsonKey('{"a":{"b":1},"c":{"b":2},"d":[{"e":"}\\"{"},{"e":[]}],"A":null,"a ":true}')).toBeUndefined();
    expect(firstDuplicateJsonKey('[1, "x", {"k": -2.5e3}, {"k": false}]')).toBeUndefined();
  });
});

describe('a YAML task file uses only the core schema tags', () => {
  it.each([
    ['!!omap', 'limits: !!omap [ maxSteps: 3 ]\n', 'limits'],
    ['!!set', 'limits: !!set { maxSteps }\n', 'limits'],
    ['!!binary', 'policies: [ never write inside /workspace, !!binary aGk= ]\n', 'policies.1'],
    ['!!timestamp', 'limits: { maxSteps: 3, timeout: !!timestamp 2001-12-14 }\n', 'limits.timeout'],
    ['!local', 'limits: !local { maxSteps: 3 }\n', 'limits'],
  ])('`%s` is refused with its line and column, not loaded as something else', async (tag, line, path) => {
    const file = join(dir, `tagged-${tag.replace(/!/g, '')}.yaml`);
    await writeFile(file, yamlHead + line);
    const outcome = await loadTaskFile(file).then(
      (task) => ({ loaded: true, maxSteps: task.limits.maxSteps }),
      (error: { code?: string; issues?: { line?: number; column?: number; path?: string; message?: string }[] }) => ({
        loaded: false,
        code: error.code,
        at: [error.issues?.[0]?.line, error.issues?.[0]?.column, error.issues?.[0]?.path],
        message: error.issues?.[0]?.message?.split(':')[0],
      }),
    );
    expect(outcome).toEqual({ loaded: false, code: 'ERR_TASK_FILE_INVALID', at: [11, line.indexOf('!') + 1, path], message: `the YAML tag "${tag}" is not allowed` });
  });

  it('the core tags still load as written', async () => {
    const file = join(dir, 'core-tags.yaml');
    await writeFile(file, `${yamlHead}limits: !!map { maxSteps: !!int "7" }\npolicies: !!seq [ !!str never write inside /workspace ]\n`);
    const task = await loadTaskFile(file);
    expect({ maxSteps: task.limits.maxSteps, policies: task.policies }).toEqual({ maxSteps: 7, policies: ['never write inside /workspace'] });
  });
});
