/**
 * A newcomer's first `warden run` while something else holds the embedded server's port (another
 * checkout's server, any program): Warden prints a clear ERR_TEMPORAL_PORT_IN_USE and then never
 * exits; the terminal hangs until Ctrl-C. (Found following the README; also on main before
 * issue 16.) The command must exit, with code 1, after saying why.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

let squatter: Server;
let stateDir: string;

beforeAll(async () => {
  squatter = createServer(() => undefined);
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  stateDir = mkdtempSync(join(tmpdir(), 'warden-attack-port-'));
});
afterAll(async () => {
  await new Promise((resolve) => squatter.close(resolve));
  rmSync(stateDir, { recursive: true, force: true });
});

describe('warden run when the embedded server port is taken', () => {
  it('says so and exits 1', async () => {
    const port = (squatter.address() as AddressInfo).port;
    const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_STATE_DIR: stateDir, WARDEN_TEMPORAL_PORT: String(port), WARDEN_TEMPORAL_UI_PORT: String(port + 1), WARDEN_TEMPORAL_HTTP_PORT: String(port + 2) };
    delete env.TEMPORAL_ADDRESS;
    const child = spawn(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'run', 'examples/hello.yaml'], { cwd: REPO_ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // The error line is the event to wait for; after it the process has nothing left to do.
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const said = new Promise<void>((resolve) => child.stderr.on('data', () => stderr.includes('ERR_TEMPORAL_PORT_IN_USE') && resolve()));
    await said;
    const code = await Promise.race([exited, new Promise<'still running'>((resolve) => setTimeout(() => resolve('still running'), 30_000))]);
    if (code === 'still running') child.kill('SIGKILL');
    expect({ code, stderr }).toMatchObject({ code: 1, stderr: expect.stringContaining('ERR_TEMPORAL_PORT_IN_USE') });
  }, 120_000);
});
