/**
 * `warden run` while something else holds the embedded server's port (another checkout's server,
 * any program): it says ERR_TEMPORAL_PORT_IN_USE and exits 1. (Found by the issue-16 attack: the
 * SDK runtime installed for the run's worker, whose connection was never made, held the process
 * open forever; cli/commands/run.ts now shuts an idle runtime down.)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import type { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/warden-test-env';

let squatter: Server;
// The squatter never reads: its ends of the probes stay open until destroyed here.
const accepted = new Set<Socket>();
let stateDir: string;

beforeAll(async () => {
  squatter = createServer((socket) => void accepted.add(socket));
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  stateDir = mkdtempSync(join(tmpdir(), 'warden-attack-port-'));
});
afterAll(async () => {
  for (const socket of accepted) socket.destroy();
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
