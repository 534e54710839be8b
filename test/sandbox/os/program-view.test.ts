/**
 * A run that names its programs (`OsSandboxSpec.programs`, what `grants.commands` resolves to)
 * can execute those and nothing else: the program folders hold only them (and the interpreters
 * their `#!` lines name), other executables of the system are masked, and every place the run can
 * write, and the workspace, is mounted noexec. Real bubblewrap runs, real host programs.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { interpretersOf } from '../../../sandbox/os/program-view';
import { runSandboxed } from '../../../sandbox/os/run-sandboxed';
import type { OsSandboxSpecInput } from '../../../sandbox/os/os-sandbox-spec';
import { makeTempDir, startLoopbackServer, type LoopbackServer } from '../sandbox-test-kit';

const LIMITS = { wallTimeMs: 30_000, cpuTimeMs: 20_000, memoryMb: 256, maxProcesses: 64 };
const PYTHON = fs.realpathSync('/usr/bin/python3');

function python(source: string, extra: Partial<OsSandboxSpecInput> = {}) {
  return runSandboxed({ command: 'python3', args: ['-c', source], limits: LIMITS, programs: ['/usr/bin/python3'], ...extra });
}

describe('the program folders', () => {
  it('hold only the granted programs and what they need to start', async () => {
    const run = await python("import os; print(' '.join(sorted(os.listdir('/usr/bin'))))", { programs: ['/usr/bin/python3', '/usr/bin/git'] });
    expect(run.stdout.trim().split(' ')).toEqual(['git', 'python3', path.basename(PYTHON)].sort());
  });

  it('show every program without a list (stdio MCP servers)', async () => {
    const run = await runSandboxed({ command: 'sh', args: ['-c', 'ls /usr/bin | wc -l'], limits: LIMITS });
    expect(Number(run.stdout.trim())).toBeGreaterThan(100);
  });
});

describe('a granted interpreter', () => {
  const workspace = makeTempDir('program-view');
  const overlayDir = makeTempDir('program-view-overlay');
  // Copies itself into each writable place and tries to run the copy, directly and through the dynamic loader.
  const escape = (folder: string) => `
import os, shutil, subprocess
target = os.path.join(${JSON.stringify(folder)}, 'copy-of-python')
shutil.copy(${JSON.stringify(PYTHON)}, target)
os.chmod(target, 0o755)
for argv in ([target, '-V'], ['/lib64/ld-linux-x86-64.so.2', target, '-V']):
    try:
        print(subprocess.run(argv, capture_output=True, text=True).stdout.strip() or 'no output')
    except OSError as error:
        print(type(error).__name__)
`;
  it.each(['/tmp', '/home/sandbox', '/dev/shm', '/workspace'])('cannot execute a program it wrote to %s', async (folder) => {
    const run = await python(escape(folder), { workspace: { mode: 'overlay', root: workspace, overlayDir } });
    expect(run.stderr).toBe('');
    expect(run.stdout).not.toContain('Python 3');
    expect(run.stdout.trim().split('\n')).toEqual(['PermissionError', 'no output']);
  });

  it('cannot execute a program of a read-only workspace', async () => {
    const readOnly = makeTempDir('program-view-ro');
    fs.copyFileSync(PYTHON, path.join(readOnly, 'tool'));
    fs.chmodSync(path.join(readOnly, 'tool'), 0o755);
    const run = await python("import subprocess\ntry:\n  subprocess.run(['/workspace/tool', '-V'])\nexcept OSError as e:\n  print(type(e).__name__)", { workspace: { mode: 'read-only', root: readOnly } });
    expect(run.stdout.trim()).toBe('PermissionError');
  });

  it('cannot run a masked program of a library folder', async () => {
    const run = await python("import subprocess\ntry:\n  print(subprocess.run(['/usr/lib/apt/methods/http'], capture_output=True, text=True, input='').stdout or 'no output')\nexcept OSError as e:\n  print(type(e).__name__)");
    // Masked by an empty file, or its whole folder of programs by an empty folder.
    expect(run.stdout.trim()).toMatch(/^(PermissionError|FileNotFoundError)$/);
    expect(fs.statSync('/usr/lib/apt/methods/http').size).toBeGreaterThan(0);
  });
});

describe('what the sandbox still does for a named program', () => {
  let server: LoopbackServer;
  beforeAll(async () => {
    server = await startLoopbackServer((_req, res) => res.end('reached'));
  });
  afterAll(async () => server?.close());

  it('reaches a granted host through the egress proxy (the forwarder runs outside the sandbox)', async () => {
    const run = await python(
      `import urllib.request\nprint(urllib.request.urlopen('http://127.0.0.1:${server.port}/hello').status)`,
      { allowedHosts: [`127.0.0.1:${server.port}`] },
    );
    expect(run.stdout.trim(), run.stderr).toBe('200');
    expect(server.hits).toContain('GET /hello');
    const inside = await python("import os; print(os.path.exists('/run/warden'), sorted(os.listdir('/usr/bin')))", { allowedHosts: [`127.0.0.1:${server.port}`] });
    expect(inside.stdout.trim()).toBe(`False ['python3', '${path.basename(PYTHON)}']`);
  });

  it('sets its limits before the program starts', async () => {
    const run = await python('import resource; print(resource.getrlimit(resource.RLIMIT_NOFILE)[0], resource.getrlimit(resource.RLIMIT_CORE)[0])');
    expect(run.stdout.trim()).toBe('1024 0');
  });

  it('reports a missing working folder as a setup failure', async () => {
    const run = await python('print(1)', { cwd: 'missing', workspace: { mode: 'overlay', root: makeTempDir('program-view'), overlayDir: makeTempDir('program-view-overlay') } });
    expect(run.reason).toBe('setup-failed');
    expect(run.stderr).toMatch(/^bwrap: Can't chdir to \/workspace\/missing/m);
  });
});

describe('interpretersOf', () => {
  const folder = makeTempDir('shebang');
  it.each([
    ['#!/bin/sh\necho', ['/bin/sh']],
    ['#!/usr/bin/env node\n', ['/usr/bin/env', '/usr/bin/node']],
    ['#!/usr/bin/env -S node --no-warnings\n', ['/usr/bin/env', '/usr/bin/node']],
    ['#!/usr/bin/env no-such-program-here\n', ['/usr/bin/env']],
    ['#! /usr/bin/python3 -u\n', ['/usr/bin/python3']],
    ['#!relative/sh\n', []],
    ['\u007fELF...', []],
    ['', []],
  ])('%j needs %j', (head, expected) => {
    const file = path.join(folder, `script-${Math.random().toString(36).slice(2)}`);
    fs.writeFileSync(file, head);
    expect(interpretersOf(file)).toEqual(expected);
  });
});
