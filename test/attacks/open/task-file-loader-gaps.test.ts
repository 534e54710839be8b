/**
 * Attack (guarantee 3, task files checked at load): three ways past the loader.
 * - A FIFO named as the task file: `open(file, 'r')` blocks until a writer comes, before the
 *   "not a regular file" check runs, so `warden run pipe.yaml` hangs forever (seen: `timeout 60
 *   npx warden run /tmp/la/fifo.yaml` killed at 60 s; a folder or a missing file exits 2 in 4 s).
 *   Secure: refused at once, ERR_TASK_FILE_UNREADABLE "not a regular file" (exit 2).
 * - A JSON task file that names a field twice: JSON.parse keeps the last, so
 *   `"policies": ["never write inside /workspace"], "policies": []` loads with no policy at all,
 *   while the same YAML is refused ("Map keys must be unique"). Secure: refused naming the
 *   duplicated field and its line (nothing in a task file is silently ignored).
 * - A YAML collection tag that makes a mapping a Map or a Set (`!!omap`, `!!set`): zod reads it as
 *   an object with no fields, so `limits: !!omap [ maxSteps: 3 ]` loads as the defaults
 *   (maxSteps 50). Secure: refused (the limit the author wrote is not silently dropped).
 * - A policy pack folder whose rules.txt is a FIFO: the loader checks the pack at load and reads
 *   it with `readFileSync` (policies/engine/load-pack.ts), which blocks the whole process until a
 *   writer comes. Secure: refused (exit 2 naming the pack), not waited on.
 */
import { closeSync, constants, openSync } from 'node:fs';
import { execFileSync, spawn } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadTaskFile } from '../../../task/load-task-file';

const REPO_ROOT = join(__dirname, '..', '..', '..');

let dir: string;
let fifo: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-loader-gaps-'));
  await mkdir(join(dir, 'ws'));
  fifo = join(dir, 'pipe.yaml');
  execFileSync('mkfifo', [fifo]);
});
afterAll(() => {
  // Releases a loader still blocked in open(): a writer that opens and closes gives it end-of-file.
  try {
    closeSync(openSync(fifo, constants.O_WRONLY | constants.O_NONBLOCK));
  } catch {
    // no reader waiting (ENXIO): nothing to release
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

describe('a bad task file does not get past the loader', () => {
  // The secure loader answers in milliseconds; the limit only stops a hang from blocking the run.
  it('a FIFO as the task file is refused, not waited on', async () => {
    await expect(loadTaskFile(fifo)).rejects.toMatchObject({ code: 'ERR_TASK_FILE_UNREADABLE' });
  }, 30_000);

  it('a JSON task file naming `policies` twice is refused, not loaded without its policy', async () => {
    const file = join(dir, 'twice.json');
    await writeFile(
      file,
      [
        '{"user":"alice@example.com","intent":"hi","agent":{"name":"scribe","model":{"driver":"scripted","script":[{"final":"done"}]}},"resources":{"workspace":"./ws"},',
        ' "policies":["never write inside /workspace"],',
        ' "policies":[]}',
      ].join('\n'),
    );
    const outcome = await loadTaskFile(file).then(
      (task) => ({ loaded: true, policies: task.policies }),
      (error: { code?: string; issues?: { line?: number }[] }) => ({ loaded: false, code: error.code, line: error.issues?.[0]?.line }),
    );
    expect(outcome).toEqual({ loaded: false, code: 'ERR_TASK_FILE_INVALID', line: 3 });
  });

  it.each([
    ['!!omap', 'limits: !!omap [ maxSteps: 3 ]\n'],
    ['!!set', 'limits: !!set { maxSteps }\n'],
  ])('`limits: %s …` is refused, not loaded as the default limits', async (tag, line) => {
    const file = join(dir, `tagged-${tag.slice(2)}.yaml`);
    await writeFile(file, yamlHead + line);
    const outcome = await loadTaskFile(file).then(
      (task) => ({ loaded: true, maxSteps: task.limits.maxSteps }),
      (error: { code?: string; issues?: { line?: number }[] }) => ({ loaded: false, code: error.code, line: error.issues?.[0]?.line }),
    );
    expect(outcome).toEqual({ loaded: false, code: 'ERR_TASK_FILE_INVALID', line: 11 });
  });

  it('a policy pack whose rules.txt is a FIFO is refused, not waited on', async () => {
    // In a child process: the read blocks its event loop, so only another process can see it hang.
    const pack = join(dir, 'pack');
    await mkdir(pack);
    const rules = join(pack, 'rules.txt');
    execFileSync('mkfifo', [rules]);
    const file = join(dir, 'packed.yaml');
    await writeFile(file, `${yamlHead}policyPacks: [./pack]\n`);
    const script = join(dir, 'load.ts');
    await writeFile(script, `import { loadTaskFile } from ${JSON.stringify(join(REPO_ROOT, 'task', 'load-task-file'))};\nloadTaskFile(process.argv[2]!).then(() => process.exit(0), (e) => { console.log(e.code); process.exit(2); });\n`);
    const child = spawn(process.execPath, ['--import', 'tsx', script, file], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] });
    // One process (no tsx wrapper), so a kill leaves nothing behind.
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // The secure loader answers in about a second (the tsx start); the bound only stops a hang.
    const outcome = await Promise.race([exited, new Promise<'hung'>((resolve) => setTimeout(() => resolve('hung'), 40_000).unref())]);
    if (outcome === 'hung') {
      child.kill('SIGKILL');
      await exited;
    }
    expect({ outcome, out: out.trim() }).toEqual({ outcome: 2, out: 'ERR_TASK_FILE_INVALID' });
  }, 90_000);
});
