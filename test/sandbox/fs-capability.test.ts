import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapabilityError } from '../../errors';
import { createFsCapability, MAX_FILE_BYTES, type FsCapability } from '../../sandbox/capabilities/fs-capability';
import { SandboxClient } from '../../sandbox/sandbox-client';
import type { CapabilityGrant } from '../../sandbox/sandbox-messages';
import { builtinTools } from '../../tools/builtin-tools';
import { codeOf, makeTempDir, outputOf, toolCall } from './sandbox-test-kit';

let workspace: string;
let outsideDir: string;
let capability: FsCapability;

function codeThrownBy(operation: () => unknown): string {
  try {
    operation();
  } catch (error) {
    if (error instanceof CapabilityError) return error.code;
    throw error;
  }
  return 'no error';
}

beforeAll(() => {
  workspace = makeTempDir('fs-ws');
  outsideDir = makeTempDir('fs-outside');
  fs.writeFileSync(path.join(outsideDir, 'secret.txt'), 'outside secret');
  fs.mkdirSync(path.join(workspace, 'a'));
  fs.writeFileSync(path.join(workspace, 'a', 'inner.txt'), 'inner');
  fs.writeFileSync(path.join(workspace, 'hello.txt'), 'hello world');
  fs.symlinkSync('/etc', path.join(workspace, 'etc-link'));
  fs.symlinkSync(outsideDir, path.join(workspace, 'outside-dir-link'));
  fs.symlinkSync(path.join(outsideDir, 'secret.txt'), path.join(workspace, 'secret-link.txt'));
  fs.symlinkSync(path.join(outsideDir, 'not-yet.txt'), path.join(workspace, 'dangling-out.txt'));
  fs.symlinkSync(path.join(workspace, 'hello.txt'), path.join(workspace, 'inside-link.txt'));
  capability = createFsCapability({ root: workspace, read: true, write: true, list: true });
});

afterAll(() => {
  fs.rmSync(workspace, { recursive: true, force: true });
  fs.rmSync(outsideDir, { recursive: true, force: true });
});

describe('fs paths are confined to the workspace', () => {
  it.each([
    ['../x', 'a parent-relative path'],
    ['/etc/passwd', 'an absolute path'],
    ['a/../../x', 'a path climbing out through a folder'],
    ['etc-link/passwd', 'a symlinked folder pointing to /etc'],
    ['secret-link.txt', 'a symlinked file pointing outside'],
    ['outside-dir-link/secret.txt', 'a symlinked folder pointing to another temp folder'],
    ['dangling-out.txt', 'a dangling symlink pointing outside'],
    ['a\u0000b', 'a NUL byte'],
    ['hello.txt\u0000.png', 'a NUL byte after a real name'],
  ])('read %j (%s) is ERR_PATH_OUTSIDE_WORKSPACE', (relative) => {
    expect(codeThrownBy(() => capability.read(relative))).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
  });

  it.each(['../escape.txt', 'etc-link/evil', 'outside-dir-link/planted.txt', 'dangling-out.txt', '/tmp/evil.txt'])(
    'write %j is ERR_PATH_OUTSIDE_WORKSPACE and creates nothing outside',
    (relative) => {
      expect(codeThrownBy(() => capability.write(relative, 'pwned'))).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
      expect(fs.existsSync(path.join(outsideDir, 'planted.txt'))).toBe(false);
      expect(fs.existsSync(path.join(outsideDir, 'not-yet.txt'))).toBe(false);
      expect(fs.existsSync(path.join(path.dirname(workspace), 'escape.txt'))).toBe(false);
    },
  );

  it.each(['..', 'etc-link', 'outside-dir-link', '/'])('list %j is ERR_PATH_OUTSIDE_WORKSPACE', (relative) => {
    expect(codeThrownBy(() => capability.list(relative))).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
  });

  it('a path that climbs and comes back inside is fine', () => {
    expect(capability.read('a/../hello.txt')).toBe('hello world');
  });

  it('a symlink that stays inside is followed', () => {
    expect(capability.read('inside-link.txt')).toBe('hello world');
  });
});

describe('fs operations', () => {
  it('reading a missing file is ERR_PATH_NOT_FOUND', () => {
    expect(codeThrownBy(() => capability.read('nope.txt'))).toBe('ERR_PATH_NOT_FOUND');
    expect(codeThrownBy(() => capability.read('no-folder/nope.txt'))).toBe('ERR_PATH_NOT_FOUND');
  });

  it('reading a folder is ERR_FS_FAILED', () => {
    expect(codeThrownBy(() => capability.read('a'))).toBe('ERR_FS_FAILED');
  });

  it('a non-string path is ERR_FS_FAILED', () => {
    expect(codeThrownBy(() => capability.read(42))).toBe('ERR_FS_FAILED');
  });

  it('write creates parent folders, then read returns the content', () => {
    expect(capability.write('new/deeper/note.md', 'héllo')).toEqual({ path: 'new/deeper/note.md', bytes: 6 });
    expect(capability.read('new/deeper/note.md')).toBe('héllo');
    expect(fs.readFileSync(path.join(workspace, 'new', 'deeper', 'note.md'), 'utf8')).toBe('héllo');
  });

  it('write replaces an existing file', () => {
    capability.write('replace.txt', 'first version, long');
    capability.write('replace.txt', 'second');
    expect(capability.read('replace.txt')).toBe('second');
  });

  it('write refuses content that is not a string or too large', () => {
    expect(codeThrownBy(() => capability.write('x.txt', { not: 'text' }))).toBe('ERR_FS_FAILED');
    expect(codeThrownBy(() => capability.write('x.txt', 'x'.repeat(MAX_FILE_BYTES + 1)))).toBe('ERR_FS_FAILED');
  });

  it('read refuses files over the size cap', () => {
    fs.writeFileSync(path.join(workspace, 'huge.bin'), Buffer.alloc(MAX_FILE_BYTES + 1));
    try {
      expect(codeThrownBy(() => capability.read('huge.bin'))).toBe('ERR_FS_FAILED');
    } finally {
      fs.rmSync(path.join(workspace, 'huge.bin'));
    }
  });

  it('list reports names, types and sizes, sorted', () => {
    const listing = capability.list('a');
    expect(listing).toEqual([{ name: 'inner.txt', type: 'file', size: 5 }]);
    const root = capability.list();
    expect(root.find((e) => e.name === 'a')).toEqual({ name: 'a', type: 'dir', size: 0 });
    expect(root.find((e) => e.name === 'etc-link')).toEqual({ name: 'etc-link', type: 'other', size: 0 });
    expect(root.map((e) => e.name)).toEqual([...root.map((e) => e.name)].sort());
  });

  it('a missing workspace is ERR_PATH_NOT_FOUND', () => {
    const gone = createFsCapability({ root: path.join(workspace, 'no-such-workspace'), read: true, write: true, list: true });
    expect(codeThrownBy(() => gone.read('x'))).toBe('ERR_PATH_NOT_FOUND');
  });
});

describe('fs tools through the sandbox', () => {
  let client: SandboxClient;
  let grant: CapabilityGrant;

  beforeAll(async () => {
    client = await SandboxClient.start();
    grant = { fs: { root: workspace, read: true, write: true, list: true } };
  });

  afterAll(async () => {
    await client.close();
  });

  const runTool = (name: 'fs.read' | 'fs.write' | 'fs.list', input: unknown) => client.run(toolCall(builtinTools()[name].source, input, grant));

  it('write then read then list', async () => {
    expect(outputOf(await runTool('fs.write', { path: 'out/report.txt', content: 'all good' }))).toEqual({ path: 'out/report.txt', bytes: 8 });
    expect(outputOf(await runTool('fs.read', { path: 'out/report.txt' }))).toBe('all good');
    expect(outputOf(await runTool('fs.list', { path: 'out' }))).toEqual([{ name: 'report.txt', type: 'file', size: 8 }]);
    expect(outputOf(await runTool('fs.list', {}))).toEqual(expect.arrayContaining([{ name: 'out', type: 'dir', size: 0 }]));
  });

  it.each(['../x', '/etc/passwd', 'a/../../x', 'etc-link/passwd', 'a\u0000b'])('fs.read %j is ERR_PATH_OUTSIDE_WORKSPACE', async (relative) => {
    expect(codeOf(await runTool('fs.read', { path: relative }))).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
  });

  it('a missing file is ERR_PATH_NOT_FOUND', async () => {
    expect(codeOf(await runTool('fs.read', { path: 'missing.txt' }))).toBe('ERR_PATH_NOT_FOUND');
  });

  it('tool code sees the capability error as an Error whose message starts with the code', async () => {
    const source = 'try { warden.fs.read("../x"); return "no error"; } catch (e) { return [e instanceof Error, e.code, e.message.split(":")[0]]; }';
    expect(outputOf(await client.run(toolCall(source, null, grant)))).toEqual([true, 'ERR_PATH_OUTSIDE_WORKSPACE', 'ERR_PATH_OUTSIDE_WORKSPACE']);
  });

  it('a caught capability error does not fail the call', async () => {
    const source = 'try { warden.fs.read("missing.txt"); } catch (e) { return "fallback"; }';
    expect(outputOf(await client.run(toolCall(source, null, grant)))).toBe('fallback');
  });

  it('a capability error rethrown with context keeps its code', async () => {
    const source = 'try { warden.fs.read("/etc/passwd"); } catch (e) { throw new Error(e.message + " (while summarising)"); }';
    expect(codeOf(await client.run(toolCall(source, null, grant)))).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
  });

  it('replacing the capability error with another error is ERR_TOOL_THREW', async () => {
    const source = 'try { warden.fs.read("missing.txt"); } catch (e) { throw new Error("could not summarise"); }';
    expect(codeOf(await client.run(toolCall(source, null, grant)))).toBe('ERR_TOOL_THREW');
  });

  it('write is not available when only read is granted', async () => {
    const readOnly: CapabilityGrant = { fs: { root: workspace, read: true, write: false, list: false } };
    const response = await client.run(toolCall(builtinTools()['fs.write'].source, { path: 'x.txt', content: 'x' }, readOnly));
    expect(codeOf(response)).toBe('ERR_TOOL_THREW');
    expect(fs.existsSync(path.join(workspace, 'x.txt'))).toBe(false);
  });
});
