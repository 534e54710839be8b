/**
 * `warden console` as a user runs it: it prints the page's link with the login token (stdout) and
 * the token and approver (stderr), serves on 127.0.0.1 only, demands the token, and stops
 * cleanly on SIGTERM; bad usage exits 2.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { consoleCommand } from '../../cli/commands/console';
import { testTemporalAddress } from '../support/temporal';
import { REPO_ROOT } from '../support/warden-test-env';

function startConsole(args: string[]) {
  const { address, namespace } = testTemporalAddress();
  const env = { ...process.env, TEMPORAL_ADDRESS: address, TEMPORAL_NAMESPACE: namespace, WARDEN_STATE_DIR: join(REPO_ROOT, '.warden-test', `console-${randomUUID()}`) };
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'console', ...args], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

it('prints the link and token, serves on loopback with the token required, and stops on SIGTERM', async () => {
  const run = startConsole([]);
  try {
    await new Promise<void>((resolve, reject) => {
      run.child.stdout.on('data', () => /#token=/.test(run.out()) && resolve());
      void run.exited.then((code) => reject(new Error(`exited ${code}: ${run.err()}`)));
    });
    const match = /^(http:\/\/127\.0\.0\.1:(\d+))\/#token=([A-Za-z0-9_-]{43})\n$/.exec(run.out());
    expect(match, run.out()).not.toBeNull();
    const [, base, , token] = match as RegExpExecArray;
    expect(run.err()).toContain(`login token: ${token}`);
    expect(run.err()).toContain('read-only: no approver key');
    expect((await fetch(`${base}/api/session`)).status).toBe(401);
    const session = await fetch(`${base}/api/session`, { headers: { authorization: `Bearer ${token}` } });
    expect(session.status).toBe(200);
    expect(await session.json()).toEqual({ approver: null, readOnly: true });
    expect((await fetch(`${base}/api/tasks`, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  } finally {
    run.child.kill('SIGTERM');
  }
  expect(await run.exited).toBe(0);
}, 120_000);

it.each([
  [['--port', 'eighty'], '--port must be a port number'],
  [['--port', '70000'], '--port must be a port number'],
  [['--port=-1'], '--port must be a port number'],
  [['extra'], 'unexpected argument "extra"'],
  [['--bogus'], 'unknown option --bogus'],
  [['--approver', 'nobody-registered'], 'ERR_APPROVER_INVALID'],
  [['--key', '/nonexistent/key.json'], 'cannot read the approver key file /nonexistent/key.json'],
])('warden console %j exits 2: %s', async (args, message) => {
  let out = '';
  let err = '';
  const code = await consoleCommand(args, { stdout: (t) => void (out += t), stderr: (t) => void (err += t), env: {} });
  expect(code).toBe(2);
  expect(err).toContain(message);
  expect(out).toBe('');
});
