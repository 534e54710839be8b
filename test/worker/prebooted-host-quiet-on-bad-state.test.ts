/**
 * Regression (issue 17, was test/attacks/open/prebooted-host-crash-trace-on-bad-task.test.ts):
 * `warden run` boots its worker's sandbox host before it has read the task file
 * (worker/prebooted-sandbox-host.ts), and the host opened the state folder's credential stores as
 * it loaded (`serveOverIpc` -> `createCredentialGate`). When that state folder could not be opened
 * (WARDEN_STATE_DIR names a file, `identity.db` is a folder) the host died with Node's raw
 * uncaught-exception report on the stderr it shares with the run, next to the run's own exit-2
 * task-file error. Now the host answers every call, its start-up probe included, with a typed
 * error naming the state folder (sandbox/sandbox-host.ts `openGateOrRefuser`) and prints nothing.
 *
 * The host cases are deterministic: the host is awaited until it answered its probe, then closed,
 * and its stderr read until every writer is gone (on the old code they fail every time). The
 * `warden run` cases are the user's view; on the old code they fail only when the host got as far
 * as opening the stores before the run stopped it, on the fixed code they pass either way.
 *
 * Real parts: the real `bin/warden.js run` on the built code, a real state folder path, the real
 * sandbox host process.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

const root = mkdtempSync(join(tmpdir(), 'warden-preboot-trace-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const BAD_TASK = join(root, 'bad.yaml');
writeFileSync(BAD_TASK, 'user: a@example.com\nintent: x\npolcyPacks: []\n');

const STATE_FOLDERS: ReadonlyArray<[string, () => string]> = [
  [
    'WARDEN_STATE_DIR names a regular file',
    () => {
      const file = join(root, 'state-is-a-file');
      writeFileSync(file, '');
      return file;
    },
  ],
  [
    "the state folder's identity.db is a folder",
    () => {
      const dir = join(root, 'identity-db-folder');
      mkdirSync(join(dir, 'identity.db'), { recursive: true, mode: 0o700 });
      return dir;
    },
  ],
];

describe('warden run with a bad task file prints the task file problems only, exit 2', () => {
  it.each(STATE_FOLDERS)('%s', async (_what, makeStateDir) => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      WARDEN_STATE_DIR: makeStateDir(),
      WARDEN_TEMPORAL_PORT: process.env.WARDEN_TEMPORAL_PORT ?? '7430',
      WARDEN_TEMPORAL_UI_PORT: process.env.WARDEN_TEMPORAL_UI_PORT ?? '8430',
    };
    delete env.TEMPORAL_ADDRESS;
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'run', BAD_TASK], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
    // 'close': every writer of the pipe is gone, the sandbox host (which inherited it) included.
    await new Promise<void>((resolve) => (child.stderr.readableEnded ? resolve() : child.stderr.on('close', () => resolve())));
    expect(code).toBe(2);
    expect(stderr).toContain('ERR_TASK_FILE_INVALID');
    expect(stderr).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$|^Node\.js v\d+/m);
  }, 120_000);

  it.each(STATE_FOLDERS)('a sandbox host booted where %s refuses its probe with the reason, and prints nothing', async (_what, makeStateDir) => {
    const stateDir = makeStateDir();
    const script = `
      const { SandboxClient } = require(${JSON.stringify(join(REPO_ROOT, 'build/sandbox/sandbox-client.js'))});
      const { client, ready } = SandboxClient.boot({ identityStateDir: ${JSON.stringify(stateDir)} });
      ready.then(() => console.log('ready'), (e) => console.log('refused ' + e.code + ' ' + e.message)).finally(() => client.close());
    `;
    const child = spawn(process.execPath, ['-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // 'close': every writer of the pipe is gone, the sandbox host (which inherited it) included.
    await new Promise<void>((resolve) => child.stderr.on('close', () => resolve()));
    expect(stdout).toContain('refused ERR_SANDBOX_CRASHED the sandbox host did not start: ERR_STATE_UNAVAILABLE: the sandbox host cannot open the credential stores of');
    expect(stdout).toContain(stateDir);
    expect(stderr).toBe('');
  }, 120_000);
});
