/**
 * Path tricks against the copy-on-write overlay: every way out of the workspace (or out of the
 * upper folder) must be refused, and nothing may be created outside either.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createFsCapability, type FsCapability } from '../../sandbox/capabilities/fs-capability';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { overlayPathsOf } from '../../recovery/recovery-paths';
import { commitOverlay, openOverlay } from '../../recovery/workspace-overlay';
import { builtinTools } from '../../tools/builtin-tools';
import { codeOf as responseCode, outputOf, toolCall } from '../sandbox/sandbox-test-kit';
import { codeOf, codeThrownBy, makeTempDir, read, writeTree } from './recovery-test-kit';

let stateDir: string;
let workspace: string;
let outside: string;
let upper: string;
let fsCap: FsCapability;
const taskKey = 'escape-test';

beforeAll(async () => {
  stateDir = makeTempDir('esc-state');
  workspace = makeTempDir('esc-ws');
  outside = makeTempDir('esc-outside');
  writeTree(workspace, { 'hello.txt': 'hello', 'a/inner.txt': 'inner' });
  writeTree(outside, { 'secret.txt': 'outside secret' });
  fs.symlinkSync(outside, path.join(workspace, 'out-dir-link'));
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(workspace, 'secret-link.txt'));
  fs.symlinkSync(path.join(outside, 'not-yet.txt'), path.join(workspace, 'dangling-out.txt'));
  fs.symlinkSync('/etc', path.join(workspace, 'etc-link'));
  upper = (await openOverlay({ stateDir, taskKey, workspace })).upper;
  // Links Warden never creates, planted in the upper folder by hand.
  fs.symlinkSync(path.join(outside, 'secret.txt'), path.join(upper, 'planted-file.txt'));
  fs.symlinkSync(outside, path.join(upper, 'planted-dir'));
  fs.mkdirSync(path.join(upper, 'sub'));
  fs.writeFileSync(path.join(upper, 'sub', 'real.txt'), 'in upper');
  fs.symlinkSync(path.join(upper, 'sub', 'real.txt'), path.join(upper, 'inner-upper-link.txt'));
  fsCap = createFsCapability({ root: workspace, read: true, write: true, list: true, overlay: upper });
});

afterAll(() => {
  for (const dir of [stateDir, workspace, outside]) fs.rmSync(dir, { recursive: true, force: true });
});

function outsideUntouched(): void {
  expect(fs.readdirSync(outside)).toEqual(['secret.txt']);
  expect(read(outside, 'secret.txt')).toBe('outside secret');
  expect(fs.existsSync(path.join(path.dirname(workspace), 'escape.txt'))).toBe(false);
  expect(fs.existsSync(path.join(os.tmpdir(), 'warden-escape.txt'))).toBe(false);
}

const ESCAPES: [string, string][] = [
  ['../escape.txt', 'a parent-relative path'],
  ['/etc/passwd', 'an absolute path'],
  [path.join(os.tmpdir(), 'warden-escape.txt'), 'an absolute path into the temp folder'],
  ['a/../../escape.txt', 'climbing out through a folder'],
  ['a/./../..', 'dots that end above the root'],
  ['a/./../../escape.txt', 'dots, then out'],
  ['./../escape.txt', 'a leading ./ then out'],
  ['a/b/c/../../../../escape.txt', 'deep climb'],
  ['../'.repeat(64) + 'etc/passwd', 'a very long climb'],
  ['x/'.repeat(200) + '../'.repeat(201) + 'escape.txt', 'a long descent, then one more climb than descent'],
  ['out-dir-link/secret.txt', 'a workspace symlink to a folder outside'],
  ['secret-link.txt', 'a workspace symlink to a file outside'],
  ['dangling-out.txt', 'a dangling workspace symlink pointing outside'],
  ['etc-link/passwd', 'a workspace symlink to /etc'],
  ['planted-file.txt', 'a symlink planted in the upper folder, to a file outside'],
  ['planted-dir/secret.txt', 'a symlink planted in the upper folder, to a folder outside'],
  ['inner-upper-link.txt', 'a symlink planted in the upper folder, even one pointing inside it'],
  ['hello.txt\u0000.png', 'a NUL byte after a real name'],
  ['\u0000', 'only a NUL byte'],
];

describe('overlay fs.read refuses path escapes', () => {
  it.each(ESCAPES)('read %j (%s) is ERR_PATH_OUTSIDE_WORKSPACE', (relative) => {
    expect(codeThrownBy(() => fsCap.read(relative))).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
  });
});

describe('overlay fs.write refuses path escapes and creates nothing outside', () => {
  it.each(ESCAPES)('write %j (%s) is ERR_PATH_OUTSIDE_WORKSPACE', (relative) => {
    expect(codeThrownBy(() => fsCap.write(relative, 'pwned'))).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
    outsideUntouched();
    expect(read(workspace, 'hello.txt')).toBe('hello');
  });
});

describe('overlay fs.list refuses path escapes', () => {
  it.each(['..', '/', 'a/./../..', 'out-dir-link', 'etc-link', 'planted-dir', '../..'])('list %j is ERR_PATH_OUTSIDE_WORKSPACE', (relative) => {
    expect(codeThrownBy(() => fsCap.list(relative))).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
  });

  it('a planted link shows as "other" in a listing, never followed', () => {
    const root = fsCap.list('.');
    expect(root.find((e) => e.name === 'planted-file.txt')).toEqual({ name: 'planted-file.txt', type: 'other', size: 0 });
  });
});

describe('very long paths fail cleanly', () => {
  it.each([
    ['a component longer than NAME_MAX', 'n'.repeat(300)],
    ['a path longer than PATH_MAX', 'd/'.repeat(3000) + 'f.txt'],
  ])('%s: a plain error, nothing written outside', (_what, relative) => {
    expect(['ERR_FS_FAILED', 'ERR_PATH_NOT_FOUND']).toContain(codeThrownBy(() => fsCap.read(relative)));
    expect(codeThrownBy(() => fsCap.write(relative, 'x'))).toBe('ERR_FS_FAILED');
    outsideUntouched();
  });
});

describe('paths that look odd but stay inside are fine', () => {
  it.each([
    ['a/../hello.txt', 'hello.txt'],
    ['./a/./inner.txt', 'a/inner.txt'],
    ['a//inner.txt', 'a/inner.txt'],
  ])('%j reads %j', (relative, canonical) => {
    expect(fsCap.read(relative)).toBe(read(workspace, canonical));
  });
});

describe('commit never follows links either', () => {
  it('leaves links planted in the upper folder out of the commit, never following or recreating them', async () => {
    // On a copy of the state folder: the links stay planted for the tests below.
    const copy = makeTempDir('esc-state-copy');
    fs.cpSync(stateDir, copy, { recursive: true, verbatimSymlinks: true });
    const copyCap = createFsCapability({ root: workspace, read: true, write: true, list: true, overlay: path.join(copy, 'overlays', taskKey, 'upper') });
    copyCap.write('fine.txt', 'fine');
    const commit = await commitOverlay({ stateDir: copy, taskKey, workspace });
    expect(commit.skipped).toEqual(['inner-upper-link.txt (symlink)', 'planted-dir (symlink)', 'planted-file.txt (symlink)']);
    expect(commit.replaced).toEqual(['fine.txt', 'sub/real.txt']);
    for (const name of ['inner-upper-link.txt', 'planted-dir', 'planted-file.txt']) expect(fs.existsSync(path.join(workspace, name))).toBe(false);
    fs.rmSync(path.join(workspace, 'fine.txt'));
    fs.rmSync(path.join(workspace, 'sub'), { recursive: true });
    outsideUntouched();
  });

  it('refuses a workspace folder swapped for a link to the outside after the write', async () => {
    const otherState = makeTempDir('esc-state2');
    const ws = makeTempDir('esc-ws2');
    try {
      fs.mkdirSync(path.join(ws, 'reports'));
      const overlay = await openOverlay({ stateDir: otherState, taskKey, workspace: ws });
      createFsCapability({ root: ws, read: true, write: true, list: true, overlay: overlay.upper }).write('reports/out.txt', 'report');
      fs.rmdirSync(path.join(ws, 'reports'));
      fs.symlinkSync(outside, path.join(ws, 'reports'));
      expect(await codeOf(() => commitOverlay({ stateDir: otherState, taskKey, workspace: ws }))).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
      outsideUntouched();
      expect(fs.existsSync(overlayPathsOf(otherState, taskKey).upper)).toBe(true);
    } finally {
      fs.rmSync(otherState, { recursive: true, force: true });
      fs.rmSync(ws, { recursive: true, force: true });
    }
  });
});

describe('the overlay through the sandbox', () => {
  let client: SandboxClient;
  beforeAll(async () => {
    client = await SandboxClient.start();
  });
  afterAll(async () => {
    await client.close();
  });

  it('fs.write goes to the overlay, fs.read sees it, the workspace does not; escapes keep their code', async () => {
    const grant = { fs: { root: workspace, read: true, write: true, list: true, overlay: upper } };
    const run = (name: 'fs.read' | 'fs.write' | 'fs.list', input: unknown) => client.run(toolCall(builtinTools()[name].source, input, grant));
    expect(outputOf(await run('fs.write', { path: 'sandboxed.txt', content: 'from the isolate' }))).toEqual({ path: 'sandboxed.txt', bytes: 16 });
    expect(outputOf(await run('fs.read', { path: 'sandboxed.txt' }))).toBe('from the isolate');
    expect(read(workspace, 'sandboxed.txt')).toBeUndefined();
    expect(read(upper, 'sandboxed.txt')).toBe('from the isolate');
    for (const trick of ['../escape.txt', 'planted-dir/x.txt', 'out-dir-link/x.txt', 'a/./../..']) {
      expect(responseCode(await run('fs.write', { path: trick, content: 'x' }))).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
    }
    outsideUntouched();
  });
});
