/**
 * Open finding (b4d1387, cli/commands/run.ts + worker/prebooted-sandbox-host.ts): `warden run`
 * boots its worker's sandbox host before it has read the task file, and the host opens the state
 * folder's credential stores as its module loads (`createCredentialGate` -> `openCredentialStores`,
 * synchronously, in `serveOverIpc`). When that state folder cannot be opened (WARDEN_STATE_DIR
 * names a file, `identity.db` is a folder, a folder it may not write), the host process dies with
 * Node's raw uncaught-exception report (source line, caret, stack, `Node.js v20...`), and the host's
 * stderr is the run's own (stdio 'inherit'). So a run refused for a bad task file, which must
 * print the file's problems and exit 2 ("bad input gets a clear error"), also prints a stack trace
 * of a process the user never asked for. Before b4d1387 no host was booted for a bad task file,
 * and a worker that booted one found the state folder's problem itself first (its stores open
 * before its host).
 *
 * Severity: low (no task starts; the output is misleading: an EEXIST/EISDIR crash in
 * sandbox-host.js next to an exit-2 task-file error).
 *
 * Suggested fix: open the gate's stores lazily in the host (on its first credential check, and
 * answer a failure as a typed SandboxError to the worker), or catch it in `serveOverIpc` and report
 * one line over IPC; or preboot only once the state folder's stores have opened in the run.
 *
 * The `warden run` cases depend on timing: the run SIGKILLs a host still loading 2 s after it is
 * done (stopProcess), so on a very loaded machine the host may die before it prints. The last case
 * is the cause alone, without timing: a host booted on such a state folder (as `prebootSandboxHost`
 * does), awaited until its probe fails, prints a raw crash report on the stderr it inherits.
 *
 * Real parts: the real `bin/warden.js run` on the built code, a real state folder path, the real
 * sandbox host process.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../support/warden-test-env';

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

  it('a sandbox host booted on a state folder it cannot open fails its probe without a raw crash report', async () => {
    const stateDir = join(root, 'host-only-state-file');
    writeFileSync(stateDir, '');
    const script = `
      const { SandboxClient } = require(${JSON.stringify(join(REPO_ROOT, 'build/sandbox/sandbox-client.js'))});
      const { client, ready } = SandboxClient.boot({ identityStateDir: ${JSON.stringify(stateDir)} });
      ready.then(() => console.log('ready'), (e) => console.log('refused ' + e.code)).finally(() => client.close());
    `;
    const child = spawn(process.execPath, ['-e', script], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    await new Promise<void>((resolve) => child.stderr.on('close', () => resolve()));
    expect(stdout).toContain('refused ERR_SANDBOX_CRASHED');
    expect(stderr).not.toMatch(/^\s+at .+\(.+:\d+:\d+\)$|^Node\.js v\d+/m);
  }, 120_000);
});
