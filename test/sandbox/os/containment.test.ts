/**
 * The OS sandbox's promises, each tried with a real program in a real bubblewrap sandbox: what
 * the program can see, write and reach, and that its limits and its end hold.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runSandboxed } from '../../../sandbox/os/run-sandboxed';
import { osSandboxProblem } from '../../../sandbox/os/sandboxed-process';
import type { OsSandboxSpecInput } from '../../../sandbox/os/os-sandbox-spec';
import { makeTempDir, startLoopbackServer, type LoopbackServer } from '../sandbox-test-kit';

const LIMITS = { wallTimeMs: 20_000, cpuTimeMs: 10_000, memoryMb: 256, maxProcesses: 64 };

function sh(script: string, extra: Partial<OsSandboxSpecInput> = {}): Promise<Awaited<ReturnType<typeof runSandboxed>>> {
  return runSandboxed({ command: 'sh', args: ['-c', script], limits: LIMITS, ...extra });
}

/** A small Node program run in the sandbox with `node -e`. */
function nodeProgram(source: string, extra: Partial<OsSandboxSpecInput> = {}) {
  return runSandboxed({ command: 'node', args: ['-e', source], limits: LIMITS, ...extra });
}

describe('what a sandboxed program sees', () => {
  it('runs as an unprivileged id without capabilities, in its own PID namespace', async () => {
    const run = await sh('id -u; grep CapEff /proc/self/status; ls /proc | grep -c "^[0-9]"');
    expect(run.exitCode).toBe(0);
    const [uid, caps, processes] = run.stdout.trim().split('\n');
    expect(uid).toBe('1000');
    expect(caps).toMatch(/CapEff:\s+0+$/);
    // Only the sandbox's own processes: bubblewrap's init, sh, ls, grep.
    expect(Number(processes)).toBeLessThan(8);
  });

  it.each([
    ['/root', 'ls -a /root'],
    ['/home of the host', 'ls /home/*/ 2>&1; ls /home'],
    ['the worktree', `ls ${JSON.stringify(path.resolve(__dirname))}`],
    ['/var', 'ls /var'],
  ])('cannot read %s', async (_label, script) => {
    const run = await sh(script);
    expect(run.stdout.trim()).toMatch(/^(sandbox)?$/);
  });

  it('reads root-only files under /etc as empty (they are masked)', async () => {
    const run = await sh('wc -c < /etc/shadow; test -r /etc/passwd && echo passwd-readable');
    expect(run.stdout.trim().split('\n')).toEqual(['0', 'passwd-readable']);
  });

  it("gets none of the worker's environment, only the declared variables", async () => {
    process.env['WARDEN_TEST_SECRET'] = 'hunter2';
    try {
      const run = await sh('env', { env: { DECLARED: 'yes' } });
      expect(run.stdout).not.toContain('hunter2');
      expect(run.stdout).toContain('DECLARED=yes');
      const names = run.stdout.trim().split('\n').map((line) => line.split('=')[0]).sort();
      expect(names).toEqual(['DECLARED', 'HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR'].sort());
    } finally {
      delete process.env['WARDEN_TEST_SECRET'];
    }
  });

  it('cannot create a user namespace to regain privileges', async () => {
    const run = await sh('unshare --user --map-root-user true && echo escaped');
    expect(run.stdout).not.toContain('escaped');
  });
});

describe('writes', () => {
  it.each(['/usr/warden-probe', '/etc/warden-probe', '/warden-probe', '/workspace-probe'])('cannot write %s', async (target) => {
    const run = await sh(`echo x > ${target} && echo wrote`);
    expect(run.stdout).not.toContain('wrote');
  });

  // Written back with their current values, so a failure of this test changes nothing.
  it.each(['/proc/sys/vm/swappiness', '/proc/sys/kernel/core_pattern', '/proc/sys/kernel/hostname'])('cannot change the host kernel setting %s', async (setting) => {
    const run = await sh(`v=$(cat ${setting}); printf '%s\\n' "$v" > ${setting} && echo wrote`);
    expect(run.stdout).not.toContain('wrote');
  });

  it('writes to /tmp stay in the sandbox', async () => {
    const marker = `warden-probe-${process.pid}-${Date.now()}`;
    const run = await sh(`echo x > /tmp/${marker} && echo wrote`);
    expect(run.stdout).toContain('wrote');
    expect(fs.existsSync(path.join('/tmp', marker))).toBe(false);
  });

  it('sees a read-only workspace read-only', async () => {
    const workspace = makeTempDir('os-ro');
    fs.writeFileSync(path.join(workspace, 'a.txt'), 'hello');
    const run = await sh('cat a.txt; echo x > b.txt && echo wrote', { workspace: { mode: 'read-only', root: workspace } });
    expect(run.stdout).toBe('hello');
    expect(fs.readdirSync(workspace)).toEqual(['a.txt']);
  });

  it('writes to the workspace land in the overlay, never in the workspace', async () => {
    const workspace = makeTempDir('os-ws');
    const overlayDir = path.join(makeTempDir('os-overlay'), 'task');
    fs.writeFileSync(path.join(workspace, 'keep.txt'), 'original');
    fs.writeFileSync(path.join(workspace, 'gone.txt'), 'to delete');
    fs.mkdirSync(path.join(workspace, 'src'));
    fs.writeFileSync(path.join(workspace, 'src', 'x.js'), 'x');
    const spec = { workspace: { mode: 'overlay' as const, root: workspace, overlayDir } };
    const first = await sh('echo changed > keep.txt; echo new > new.txt; rm gone.txt; mkdir -p out && echo built > out/a; pwd', spec);
    expect(first.exitCode).toBe(0);
    expect(first.stdout.trim()).toBe('/workspace');
    // The real workspace is untouched.
    expect(fs.readFileSync(path.join(workspace, 'keep.txt'), 'utf8')).toBe('original');
    expect(fs.existsSync(path.join(workspace, 'gone.txt'))).toBe(true);
    expect(fs.existsSync(path.join(workspace, 'new.txt'))).toBe(false);
    // The upper layer holds the changes, the deletion as a whiteout.
    const upper = path.join(overlayDir, 'upper');
    expect(fs.readFileSync(path.join(upper, 'keep.txt'), 'utf8')).toBe('changed\n');
    expect(fs.readFileSync(path.join(upper, 'out', 'a'), 'utf8')).toBe('built\n');
    const whiteout = fs.lstatSync(path.join(upper, 'gone.txt'));
    expect(whiteout.isCharacterDevice() && whiteout.rdev === 0).toBe(true);
    // A later run of the same task sees the task's earlier writes; the work folder is gone.
    const second = await sh('cat keep.txt new.txt; ls', { ...spec, cwd: '.' });
    expect(second.stdout).toBe('changed\nnew\nkeep.txt\nnew.txt\nout\nsrc\n');
    expect(fs.readdirSync(overlayDir)).toEqual(['upper']);
  });

  it('refuses a working folder outside the workspace', async () => {
    const workspace = makeTempDir('os-cwd');
    await expect(sh('pwd', { workspace: { mode: 'read-only', root: workspace }, cwd: '../..' })).rejects.toThrow(/outside the workspace/);
  });
});

describe('network', () => {
  let server: LoopbackServer;
  beforeAll(async () => {
    server = await startLoopbackServer((_req, res) => res.end('reached'));
  });
  afterAll(() => server.close());

  /** A Node program that GETs `url`, through the sandbox's proxy variable when `viaProxy`. */
  const fetchSource = (url: string, viaProxy: boolean) => `
    const http = require('http');
    const target = ${JSON.stringify(url)};
    const proxy = process.env.HTTP_PROXY ? new URL(process.env.HTTP_PROXY) : undefined;
    const options = ${viaProxy} && proxy ? { host: proxy.hostname, port: proxy.port, path: target } : target;
    const req = http.get(options, (res) => { let b = ''; res.on('data', (c) => b += c); res.on('end', () => console.log(res.statusCode, b.trim())); });
    req.on('error', (e) => console.log('error', e.code));
    req.setTimeout(5000, () => { console.log('error timeout'); req.destroy(); });`;

  it('has no network without granted hosts: a host loopback server is unreachable', async () => {
    const run = await nodeProgram(fetchSource(`http://127.0.0.1:${server.port}/direct`, false));
    expect(run.stdout.trim()).toBe('error ECONNREFUSED');
    expect(server.hits).not.toContain('GET /direct');
  });

  it('reaches a granted host only through the egress proxy, and is refused the rest', async () => {
    const allowedHosts = [`127.0.0.1:${server.port}`];
    const granted = await nodeProgram(fetchSource(`http://127.0.0.1:${server.port}/granted`, true), { allowedHosts });
    expect(granted.stdout.trim()).toBe('200 reached');
    expect(server.hits).toContain('GET /granted');
    // With the host contacted and the bytes sent, for the monitor (monitoring/egress-watch.ts).
    expect(granted.exit.egress).toEqual([{ method: 'GET', target: `http://127.0.0.1:${server.port}/granted`, allowed: true, host: `127.0.0.1:${server.port}`, bytesOut: 0, requests: 1 }]);

    const direct = await nodeProgram(fetchSource(`http://127.0.0.1:${server.port}/direct`, false), { allowedHosts });
    expect(direct.stdout.trim()).toBe('error ECONNREFUSED');

    const other = await nodeProgram(fetchSource('http://127.0.0.2:9/x', true), { allowedHosts });
    expect(other.stdout).toMatch(/^403 warden egress: ERR_NETWORK_DENIED: host 127\.0\.0\.2:9 is not granted/);
    expect(other.exit.egress[0]).toMatchObject({ allowed: false, error: { code: 'ERR_NETWORK_DENIED' } });
  });

  it('refuses an HTTPS tunnel to a host that is not granted', async () => {
    const source = `
      const http = require('http');
      const proxy = new URL(process.env.HTTPS_PROXY);
      const req = http.request({ host: proxy.hostname, port: proxy.port, method: 'CONNECT', path: 'example.com:443' });
      req.on('connect', (res) => { console.log(res.statusCode); process.exit(0); });
      req.on('response', (res) => console.log(res.statusCode));
      req.on('error', (e) => console.log('error', e.code));
      req.end();`;
    const run = await nodeProgram(source, { allowedHosts: [`127.0.0.1:${server.port}`] });
    expect(run.stdout.trim()).toBe('403');
    expect(run.exit.egress[0]).toMatchObject({ method: 'CONNECT', target: 'example.com:443', allowed: false });
  });
});

describe('limits and the end of a run', () => {
  it('contains a fork bomb under the process limit and leaves no process behind', async () => {
    const run = await sh('bomb() { bomb | bomb & }; bomb; sleep 2', { limits: { ...LIMITS, maxProcesses: 32 } });
    expect(run.exit.enforcement.processes).toBe('cgroup');
    expect(run.stderr).toMatch(/Cannot fork|Resource temporarily unavailable/);
    expect(countHostProcesses('bomb')).toBe(0);
  });

  it('kills the whole tree at the end, including detached background processes', async () => {
    const marker = `${Date.now()}${process.pid}`;
    const run = await sh(`setsid sleep 3${marker.slice(-4)} </dev/null >/dev/null 2>&1 & echo started`);
    expect(run.stdout.trim()).toBe('started');
    expect(countHostProcesses(`sleep 3${marker.slice(-4)}`)).toBe(0);
  });

  it('stops a program at its wall-time limit', async () => {
    const run = await sh('sleep 30', { limits: { ...LIMITS, wallTimeMs: 500 } });
    expect(run.reason).toBe('wall-time');
    expect(run.exitCode).toBeNull();
  });

  it('stops a program that exceeds its memory limit', async () => {
    const run = await nodeProgram('const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1));', { limits: { ...LIMITS, memoryMb: 96 } });
    expect(run.reason).toBe('memory');
  });

  it('bounds the output it keeps', async () => {
    const run = await runSandboxed({ command: 'sh', args: ['-c', 'yes warden | head -c 200000'], limits: LIMITS }, { maxOutputBytes: 1000 });
    expect(run.exitCode).toBe(0);
    expect(run.stdout.length).toBe(1000);
    expect(run.truncated).toEqual({ stdout: true, stderr: false });
  });

  it('passes stdin to the program', async () => {
    const run = await runSandboxed({ command: 'sh', args: ['-c', 'tr a-z A-Z'], limits: LIMITS }, { stdin: 'shout' });
    expect(run.stdout).toBe('SHOUT');
  });

  it('reports a missing program as the program exit, not a sandbox failure', async () => {
    const run = await runSandboxed({ command: 'warden-no-such-program', limits: LIMITS });
    expect(run.reason).toBe('exited');
    expect(run.exitCode).not.toBe(0);
    expect(run.stderr).toMatch(/warden-no-such-program/);
  });
});

describe('availability', () => {
  it('names bubblewrap and how to install it when bwrap is missing', () => {
    const empty = makeTempDir('no-bwrap');
    expect(osSandboxProblem({ PATH: empty })).toMatch(/bubblewrap is not installed.*apt-get install -y bubblewrap/);
  });

  it('is available on this machine (CI installs bubblewrap)', () => {
    expect(osSandboxProblem()).toBeUndefined();
  });
});

/** Processes on the host whose command line contains `needle` (other than this check itself). */
function countHostProcesses(needle: string): number {
  const ps = spawnSync('ps', ['-eo', 'args'], { encoding: 'utf8' });
  return ps.stdout.split('\n').filter((line) => line.includes(needle) && !line.includes('ps -eo')).length;
}

// The loopback server above is the host's; keep the type import used.
void http;
