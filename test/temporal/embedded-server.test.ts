/**
 * The embedded Temporal server: started once per state folder, reused after, never confused
 * with some other program on the port. Uses its own ports and state folders so it never touches
 * the server the test run itself uses (see test/support/global-setup.ts).
 */
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TemporalServerError } from '../../errors';
import { connectClient } from '../../temporal/connect';
import { embeddedServerStatus, ensureTemporalServer, readServerRecord, stopEmbeddedServer } from '../../temporal/embedded-server';
import { processRuns, readProcStat } from '../../process-stat';
import { loadTemporalConfig } from '../../temporal/temporal-config';
import { freePort, freeServerPorts } from './ports';

const REPO = join(__dirname, '..', '..');

const created: string[] = [];
function stateDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `warden-embedded-${name}-`));
  created.push(dir);
  return dir;
}

async function portsEnv(): Promise<NodeJS.ProcessEnv> {
  // Each server here gets its own ports: an HTTP port pinned in the caller's environment would be
  // the same for all of them (and may be held by the test run's own server).
  const { TEMPORAL_ADDRESS: _a, TEMPORAL_NAMESPACE: _n, WARDEN_TEMPORAL_HTTP_PORT: _h, ...env } = process.env;
  return { ...env, ...(await freeServerPorts()) };
}

async function failure(promise: Promise<unknown>): Promise<TemporalServerError> {
  try {
    await promise;
  } catch (error) {
    return error as TemporalServerError;
  }
  throw new Error('expected a failure');
}

async function listen(port: number, onConnection: (socket: import('node:net').Socket) => void = () => {}): Promise<Server> {
  const server = createServer((socket) => {
    socket.on('error', () => {}); // probes hang up abruptly
    onConnection(socket);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

const cleanups: Array<() => Promise<unknown>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => {});
  for (const dir of created) rmSync(dir, { recursive: true, force: true });
});

describe('external mode', () => {
  it('returns the configured address and starts nothing', async () => {
    const dir = join(stateDir('external'), 'state');
    const server = await ensureTemporalServer({ env: { TEMPORAL_ADDRESS: '10.255.255.1:7233', TEMPORAL_NAMESPACE: 'prod' }, stateDir: dir, log: () => {} });
    expect(server).toEqual({ mode: 'external', address: '10.255.255.1:7233', namespace: 'prod', started: false, reused: false });
    expect(existsSync(dir)).toBe(false);
  });
});

describe('port already taken', () => {
  it('by a plain TCP server: ERR_TEMPORAL_PORT_IN_USE naming the port and the ways out', { timeout: 120_000 }, async () => {
    const env = await portsEnv();
    const squatter = await listen(Number(env.WARDEN_TEMPORAL_PORT)); // accepts, says nothing
    try {
      const error = await failure(ensureTemporalServer({ env, stateDir: stateDir('squat'), log: () => {} }));
      expect(error).toBeInstanceOf(TemporalServerError);
      expect(error.code).toBe('ERR_TEMPORAL_PORT_IN_USE');
      expect(error.message).toContain(`port ${env.WARDEN_TEMPORAL_PORT} on 127.0.0.1 is in use by something that is not a Temporal server`);
      expect(error.message).toContain('nor let the port go within 10 s');
      expect(error.message).toContain('WARDEN_TEMPORAL_PORT=');
      expect(error.message).toContain('TEMPORAL_ADDRESS=');
      expect(error.details).toMatchObject({ port: Number(env.WARDEN_TEMPORAL_PORT), variable: 'WARDEN_TEMPORAL_PORT' });
    } finally {
      squatter.close();
    }
  });

  it('by something that talks and hangs up (an HTTP/1 server): still not Temporal', async () => {
    const env = await portsEnv();
    const squatter = await listen(Number(env.WARDEN_TEMPORAL_PORT), (socket) => socket.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
    try {
      expect((await failure(ensureTemporalServer({ env, stateDir: stateDir('http'), log: () => {} }))).code).toBe('ERR_TEMPORAL_PORT_IN_USE');
    } finally {
      squatter.close();
    }
  });

  it('the web UI port taken: ERR_TEMPORAL_PORT_IN_USE naming WARDEN_TEMPORAL_UI_PORT', async () => {
    const env = await portsEnv();
    const squatter = await listen(Number(env.WARDEN_TEMPORAL_UI_PORT));
    try {
      const error = await failure(ensureTemporalServer({ env, stateDir: stateDir('ui'), log: () => {} }));
      expect(error.code).toBe('ERR_TEMPORAL_PORT_IN_USE');
      expect(error.message).toContain(`port ${env.WARDEN_TEMPORAL_UI_PORT}`);
      expect(error.message).toContain('WARDEN_TEMPORAL_UI_PORT=');
    } finally {
      squatter.close();
    }
  });
});

describe('a port let go within the wait, as by a server shutting down', () => {
  // A squatter that hangs up on the probe (not Temporal) and closes its listener 2 s later: the
  // old code named the port in use at once; a dev server on its way out does exactly this.
  it.each([
    ['the gRPC port', 'WARDEN_TEMPORAL_PORT'],
    ['the web UI port', 'WARDEN_TEMPORAL_UI_PORT'],
  ])('%s: the embedded server starts once it is free', async (_what, variable) => {
    const env = await portsEnv();
    const squatter = await listen(Number(env[variable]), (socket) => socket.end('HTTP/1.1 503 Service Unavailable\r\n\r\n'));
    const letGo = setTimeout(() => squatter.close(), 2_000);
    const dir = stateDir('letgo');
    cleanups.push(() => stopEmbeddedServer(dir));
    try {
      const server = await ensureTemporalServer({ env, stateDir: dir, log: () => {} });
      expect(server).toMatchObject({ mode: 'embedded', address: `127.0.0.1:${env.WARDEN_TEMPORAL_PORT}`, started: true, reused: false });
    } finally {
      clearTimeout(letGo);
      squatter.close();
    }
  }, 120_000);
});

describe('a server that does not come up', () => {
  it('exits at once: ERR_TEMPORAL_START with the tail of its log, no record left', async () => {
    const env = await portsEnv();
    const bin = stateDir('badcli');
    const cli = join(bin, 'temporal');
    writeFileSync(cli, '#!/bin/sh\necho "Error: unable to open database file: out of disk" >&2\nexit 1\n');
    chmodSync(cli, 0o755);
    const dir = stateDir('crash');
    const error = await failure(ensureTemporalServer({ env: { ...env, TEMPORAL_CLI_PATH: cli }, stateDir: dir, log: () => {} }));
    expect(error.code).toBe('ERR_TEMPORAL_START');
    expect(error.message).toMatch(/exited \(code 1\) before answering/);
    expect(error.message).toContain('unable to open database file: out of disk');
    expect(await readServerRecord(dir)).toBeUndefined();
  });

  it('never answers: ERR_TEMPORAL_START after the timeout, the process is killed', async () => {
    const env = await portsEnv();
    const bin = stateDir('hangcli');
    const cli = join(bin, 'temporal');
    const pidFile = join(bin, 'pid');
    writeFileSync(cli, `#!/bin/sh\necho $$ > ${pidFile}\necho "starting forever"\nexec sleep 300\n`);
    chmodSync(cli, 0o755);
    const dir = stateDir('hang');
    const error = await failure(ensureTemporalServer({ env: { ...env, TEMPORAL_CLI_PATH: cli }, stateDir: dir, log: () => {}, readyTimeoutMs: 1_500 }));
    expect(error.code).toBe('ERR_TEMPORAL_START');
    expect(error.message).toMatch(/did not answer on 127\.0\.0\.1:\d+ within 2s/);
    expect(error.message).toContain('starting forever');
    expect(await readServerRecord(dir)).toBeUndefined();
    expect(processRuns(Number(readFileSync(pidFile, 'utf8')))).toBe(false);
  });
});

// Another `temporal server start-dev` (another state folder's, a user's own) under the pid this
// folder's record names: the record's start time tells them apart, so it is neither reported as
// this folder's server nor stopped (its whole process group) by `warden server stop`.
describe("a record whose pid now names another dev server's process", () => {
  it.each([
    ['the record keeps the start time of the process it named (another one)', (actual: string) => String(BigInt(actual) + 1n), false],
    ['a record written before start times were kept (the command line is all it has)', () => undefined, true],
  ])('%s', async (_label, startTimeOf, taken) => {
    const dir = stateDir('reused-pid');
    mkdirSync(join(dir, 'temporal'), { recursive: true });
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60_000)', 'server', 'start-dev'], { stdio: 'ignore' });
    cleanups.push(async () => other.kill('SIGKILL'));
    await new Promise((resolve) => other.once('spawn', resolve));
    const startTime = startTimeOf(readProcStat(other.pid!)!.startTime);
    const port = await freePort();
    writeFileSync(join(dir, 'temporal', 'server.json'), JSON.stringify({ pid: other.pid, port, uiPort: port, startedAt: 'then', cliPath: '/x', ...(startTime === undefined ? {} : { startTime }) }));
    expect(await embeddedServerStatus(dir)).toMatchObject({ running: taken });
    if (taken) return;
    await expect(stopEmbeddedServer(dir)).resolves.toEqual({ stopped: false, pid: other.pid });
    expect(processRuns(other.pid!)).toBe(true);
  });
});

// A record written before start times were kept names a pid the kernel has since given to a
// thread of another dev server (a Go server runs dozens): kill(tid, 0) answers and
// /proc/<tid>/cmdline is that process's, so the thread was taken for this folder's server, and
// stopping it (kill(-tid) fails: no such group; then kill(tid), which signals the whole process)
// SIGTERMed the other server. A thread id is not a process.
describe("a record written before start times were kept, whose pid is now another dev server's thread", () => {
  it('is not taken for the server, and stopping it leaves the other server running', async () => {
    const dir = stateDir('thread-pid');
    mkdirSync(join(dir, 'temporal'), { recursive: true });
    const other = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60_000)', 'server', 'start-dev'], { stdio: 'ignore' });
    cleanups.push(async () => other.kill('SIGKILL'));
    await new Promise((resolve) => other.once('spawn', resolve));
    let tid: number | undefined;
    for (let i = 0; tid === undefined && i < 100; i++) {
      tid = readdirSync(`/proc/${other.pid}/task`).map(Number).find((id) => id !== other.pid);
      if (tid === undefined) await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(tid).toBeDefined();
    const port = await freePort();
    writeFileSync(join(dir, 'temporal', 'server.json'), JSON.stringify({ pid: tid, port, uiPort: port, startedAt: 'then', cliPath: '/x' }));
    expect(await embeddedServerStatus(dir)).toMatchObject({ running: false });
    await expect(stopEmbeddedServer(dir, { timeoutMs: 500 })).resolves.toEqual({ stopped: false, pid: tid });
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(other.exitCode).toBeNull();
    expect(other.signalCode).toBeNull();
    expect(processRuns(other.pid!, readProcStat(other.pid!)?.startTime)).toBe(true);
  });
});

// A record naming pid 1 (copied from another machine or container, or edited) where pid 1 is a
// dev server (a container whose init is `temporal server start-dev`): `warden server stop` sent
// kill(-1, SIGTERM), then SIGKILL, which signals every process of the namespace but init and the
// caller, not a process group. A server Warden started is its child, never pid 1. Run in a pid
// namespace of its own (root and `unshare -p` only), whose init is the process that stops.
const canOwnPidNamespace = process.platform === 'linux' && process.getuid?.() === 0 && spawnSync('unshare', ['-pf', '--mount-proc', 'true']).status === 0;
describe.skipIf(!canOwnPidNamespace)("a record naming pid 1, a dev server namespace's init", () => {
  it('is not taken for the server, and stopping it signals no other process', async () => {
    const dir = stateDir('init-pid');
    const script = join(dir, 'stop-as-init.ts');
    writeFileSync(
      script,
      `import { spawn } from 'node:child_process';\n` +
        `import { mkdirSync, writeFileSync } from 'node:fs';\n` +
        `import { join } from 'node:path';\n` +
        `import { embeddedServerStatus, stopEmbeddedServer } from ${JSON.stringify(join(REPO, 'temporal', 'embedded-server'))};\n` +
        `(async () => {\n` +
        `  const dir = ${JSON.stringify(dir)};\n` +
        `  mkdirSync(join(dir, 'temporal'), { recursive: true });\n` +
        `  const bystander = spawn('sleep', ['600'], { stdio: 'ignore' });\n` +
        `  await new Promise((resolve) => bystander.once('spawn', resolve));\n` +
        `  writeFileSync(join(dir, 'temporal', 'server.json'), JSON.stringify({ pid: 1, port: 1, uiPort: 1, startedAt: 'then', cliPath: '/x' }));\n` +
        `  const status = await embeddedServerStatus(dir);\n` +
        `  const stop = await stopEmbeddedServer(dir, { timeoutMs: 300 });\n` +
        `  await new Promise((resolve) => setTimeout(resolve, 200));\n` +
        `  process.stdout.write(JSON.stringify({ pid: process.pid, running: status.running, stop, bystander: bystander.signalCode ?? (bystander.exitCode === null ? 'running' : bystander.exitCode) }));\n` +
        `  bystander.kill('SIGKILL');\n` +
        `  process.exit(0);\n` +
        `})();\n`,
    );
    const run = spawnSync('unshare', ['-pf', '--mount-proc', process.execPath, '--require', require.resolve('tsx/cjs'), script, 'server', 'start-dev'], { encoding: 'utf8', timeout: 60_000 });
    expect(run.stderr).toBe('');
    expect(JSON.parse(run.stdout)).toEqual({ pid: 1, running: false, stop: { stopped: false, pid: 1 }, bystander: 'running' });
  });
});

describe('a real embedded server on its own port', () => {
  it('starts detached, survives the process that started it, is reused, then stops', async () => {
    const env = await portsEnv();
    const port = Number(env.WARDEN_TEMPORAL_PORT);
    const address = `127.0.0.1:${port}`;
    const dir = stateDir('real');
    cleanups.push(() => stopEmbeddedServer(dir));

    // A record left by a server that died long ago must not be trusted.
    mkdirSync(join(dir, 'temporal'), { recursive: true });
    const deadPid = await new Promise<number>((resolve) => {
      const child = spawn('true');
      child.once('exit', () => resolve(child.pid!));
    });
    writeFileSync(join(dir, 'temporal', 'server.json'), JSON.stringify({ pid: deadPid, port, uiPort: 1, startedAt: 'then', cliPath: '/x' }));

    // Started by a separate short-lived process, as `warden` itself would: it must exit while the server lives on.
    const script = `require('${join(REPO, 'temporal', 'embedded-server')}').ensureTemporalServer({ stateDir: ${JSON.stringify(dir)}, log: () => {} }).then((s) => console.log(JSON.stringify(s)))`;
    const starter = spawn(process.execPath, ['--require', 'tsx/cjs', '-e', script], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    starter.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
    const exitCode = await new Promise<number | null>((resolve) => starter.once('exit', resolve));
    expect(exitCode).toBe(0);
    const first = JSON.parse(out) as { started: boolean; reused: boolean; address: string; pid: number; uiUrl: string };
    expect(first).toMatchObject({ mode: 'embedded', address, namespace: 'default', started: true, reused: false, uiUrl: `http://127.0.0.1:${env.WARDEN_TEMPORAL_UI_PORT}` });

    const record = await readServerRecord(dir);
    expect(record).toMatchObject({ pid: first.pid, port, uiPort: Number(env.WARDEN_TEMPORAL_UI_PORT) });
    expect(record?.cliPath).toMatch(/temporal$/);
    expect(record?.startTime).toBe(readProcStat(first.pid)?.startTime);
    expect(new Date(record!.startedAt).getTime()).toBeGreaterThan(Date.now() - 120_000);
    expect(processRuns(first.pid)).toBe(true);
    expect(readFileSync(`/proc/${first.pid}/cmdline`, 'utf8').split('\0')).toEqual(
      expect.arrayContaining(['server', 'start-dev', '--ip', '127.0.0.1', '--port', String(port), '--log-format', 'json', '--log-level', 'warn']),
    );

    // Second time: the recorded server is reused.
    const second = await ensureTemporalServer({ env, stateDir: dir, log: () => {} });
    expect(second).toMatchObject({ address, started: false, reused: true, pid: first.pid });

    // Concurrent callers: one lock, all reuse.
    const many = await Promise.all([1, 2, 3].map(() => ensureTemporalServer({ env, stateDir: dir, log: () => {} })));
    expect(many.every((s) => s.reused && s.pid === first.pid)).toBe(true);

    // Another state folder, same port: reuses the Temporal server it finds there, and says so.
    const logs: string[] = [];
    const other = await ensureTemporalServer({ env, stateDir: stateDir('other'), log: (line) => logs.push(line) });
    expect(other).toEqual({ mode: 'embedded', address, namespace: 'default', started: false, reused: true });
    expect(logs).toEqual([`reusing the Temporal server already listening on ${address}`]);

    // Same state folder, different port: refused rather than a second server on the same database.
    const moved = await failure(ensureTemporalServer({ env: { ...env, WARDEN_TEMPORAL_PORT: String(await freePort()) }, stateDir: dir, log: () => {} }));
    expect(moved.code).toBe('ERR_TEMPORAL_START');
    expect(moved.message).toContain(`is running on port ${port}`);

    // It is a working Temporal: a client can list workflows in the default namespace.
    const { client, connection } = await connectClient(loadTemporalConfig(env));
    try {
      const listed = client.workflow.list({ pageSize: 1 });
      for await (const _ of listed) break;
    } finally {
      await connection.close();
    }

    const status = await embeddedServerStatus(dir);
    expect(status).toMatchObject({ running: true, answering: true, address, uiUrl: first.uiUrl, record: { pid: first.pid } });

    await expect(stopEmbeddedServer(dir)).resolves.toEqual({ stopped: true, pid: first.pid });
    expect(processRuns(first.pid)).toBe(false);
    expect(await readServerRecord(dir)).toBeUndefined();
    expect(await embeddedServerStatus(dir)).toMatchObject({ running: false, answering: false });
    await expect(stopEmbeddedServer(dir)).resolves.toEqual({ stopped: false });
  });
});
