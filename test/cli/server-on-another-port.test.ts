/**
 * A client command whose address has no server, while the state folder's own embedded server
 * runs on another port (started with other WARDEN_TEMPORAL_PORT settings): the error names the
 * running server and the variables to set, and the command still uses only the address it was
 * given (it never connects elsewhere). Found by a newcomer: `warden server status` said
 * `running: 127.0.0.1:7420` while `warden list` said only "no Temporal server is running on
 * 127.0.0.1:7233 ... Start one with warden server start".
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPortInUse } from '../../temporal/embedded-server';
import { REPO_ROOT } from '../support/warden-test-env';
import { freePort } from '../temporal/ports';

const BIN = join(REPO_ROOT, 'bin/warden.js');

async function warden(argv: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  const { WARDEN_TEMPORAL_PORT: _p, WARDEN_TEMPORAL_UI_PORT: _u, TEMPORAL_ADDRESS: _a, WARDEN_STATE_DIR: _s, ...rest } = process.env;
  try {
    const { stdout, stderr } = await promisify(execFile)(process.execPath, [BIN, ...argv], { env: { ...rest, ...env }, timeout: 120_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

let stateDir: string;
let serverEnv: Record<string, string>;
let serverPort: number;
let uiPort: number;
beforeAll(async () => {
  stateDir = await mkdtemp(join(tmpdir(), 'warden-elsewhere-'));
  serverPort = await freePort();
  uiPort = await freePort();
  serverEnv = { WARDEN_STATE_DIR: stateDir, WARDEN_TEMPORAL_PORT: String(serverPort), WARDEN_TEMPORAL_UI_PORT: String(uiPort) };
  const started = await warden(['server', 'start'], serverEnv);
  expect(started.stderr + started.stdout).toContain(`127.0.0.1:${serverPort}`);
}, 180_000);

afterAll(async () => {
  await warden(['server', 'stop'], serverEnv);
  await rm(stateDir, { recursive: true, force: true });
}, 60_000);

describe('the state folder runs its server on another port than the one asked for', () => {
  // Every client command on the shared connect path (cli/temporal-client.ts runningServerConfig).
  it.each([[['list']], [['status', 'x']], [['logs', 'x']], [['approvals']], [['cancel', 'x']], [['receipt', 'x']], [['replay', 'x']], [['policy', 'test', 'foundation', '--against', 'x']], [['baseline', 'learn']]])(
    'warden %j names the running server and the variables to set, and connects nowhere else',
    async (argv) => {
      const askedPort = await freePort();
      const { code, stderr } = await warden(argv, { WARDEN_STATE_DIR: stateDir, WARDEN_TEMPORAL_PORT: String(askedPort), WARDEN_TEMPORAL_UI_PORT: String(await freePort()) });
      expect(code).toBe(1);
      expect(stderr).toContain(`no Temporal server is running on 127.0.0.1:${askedPort}`);
      expect(stderr).toContain(`embedded server is running on 127.0.0.1:${serverPort}`);
      expect(stderr).toContain(`set WARDEN_TEMPORAL_PORT=${serverPort} WARDEN_TEMPORAL_UI_PORT=${uiPort}`);
      expect(stderr).not.toContain('Start one with `warden server start`');
      expect(await isPortInUse(askedPort)).toBe(false);
    },
    60_000,
  );

  it('with its own port, the same command reaches the server (the hint is not a false alarm)', async () => {
    const { code, stderr } = await warden(['list', '--json'], serverEnv);
    expect(stderr).not.toContain('ERR_TEMPORAL_UNREACHABLE');
    expect(code).toBe(0);
  }, 60_000);

  it('a state folder with no server keeps the plain advice', async () => {
    const other = await mkdtemp(join(tmpdir(), 'warden-elsewhere-none-'));
    const askedPort = await freePort();
    const { code, stderr } = await warden(['list'], { WARDEN_STATE_DIR: other, WARDEN_TEMPORAL_PORT: String(askedPort), WARDEN_TEMPORAL_UI_PORT: String(await freePort()) });
    expect(code).toBe(1);
    expect(stderr).toContain('Start one with `warden server start`');
    expect(stderr).not.toContain('embedded server is running on');
    await rm(other, { recursive: true, force: true });
  }, 60_000);
});
