/**
 * The fs capability never serves Warden's own state: not under the protected folders, whatever
 * path leads there, and not a protected file under another name (a hard link), for read, write
 * and list, direct and through an overlay.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CapabilityError } from '../../errors';
import { createFsCapability, type FsGrant } from '../../sandbox/capabilities/fs-capability';
import { makeTempDir } from './sandbox-test-kit';

let workspace: string;
let upper: string;
let state: string;
let keyFile: string;

beforeAll(() => {
  workspace = fs.realpathSync(makeTempDir('protected-ws'));
  upper = makeTempDir('protected-upper');
  // The state folder sits inside the workspace (a misconfiguration the task checks also refuse).
  state = path.join(workspace, '.warden');
  fs.mkdirSync(path.join(state, 'keys'), { recursive: true });
  keyFile = path.join(state, 'keys', 'k1.jwk.json');
  fs.writeFileSync(keyFile, '{"kty":"OKP","d":"PRIVATE"}');
  fs.writeFileSync(path.join(workspace, 'notes.txt'), 'notes');
  fs.mkdirSync(path.join(workspace, 'docs'));
  fs.symlinkSync(path.join(state, 'keys'), path.join(workspace, 'docs', 'keys-link'));
  fs.linkSync(keyFile, path.join(workspace, 'innocent.json'));
});

afterAll(() => {
  fs.rmSync(workspace, { recursive: true, force: true });
  fs.rmSync(upper, { recursive: true, force: true });
});

function grant(overlay: boolean): FsGrant {
  return { root: workspace, read: true, write: true, list: true, protectedPaths: [state], protectedFiles: [keyFile], ...(overlay ? { overlay: upper } : {}) };
}

function outcome(operation: () => unknown): string {
  try {
    return `returned ${JSON.stringify(operation())}`;
  } catch (error) {
    if (error instanceof CapabilityError) return error.code;
    throw error;
  }
}

describe.each([false, true])('overlay %s', (overlay) => {
  const cap = () => createFsCapability(grant(overlay));
  it.each([
    ['read the key by its path', (c: ReturnType<typeof cap>) => c.read('.warden/keys/k1.jwk.json')],
    ['read it through a link inside the workspace', (c: ReturnType<typeof cap>) => c.read('docs/keys-link/k1.jwk.json')],
    ['read it through ./ and ..', (c: ReturnType<typeof cap>) => c.read('docs/../.warden/./keys/k1.jwk.json')],
    ['read it under another name (hard link)', (c: ReturnType<typeof cap>) => c.read('innocent.json')],
    ['list the state folder', (c: ReturnType<typeof cap>) => c.list('.warden')],
    ['list the keys through a link', (c: ReturnType<typeof cap>) => c.list('docs/keys-link')],
    ['write into the state folder', (c: ReturnType<typeof cap>) => c.write('.warden/keys/k2.jwk.json', '{}')],
  ])('refuses to %s', (_name, operation) => {
    expect(outcome(() => operation(cap()))).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
  });

  it('hides the state folder from a listing of the workspace and serves everything else', () => {
    const c = cap();
    expect(c.list('.').map((e) => e.name)).not.toContain('.warden');
    expect(c.read('notes.txt')).toBe('notes');
  });
});

it('refuses to overwrite a key under another name, and leaves it as it was', () => {
  expect(outcome(() => createFsCapability(grant(false)).write('innocent.json', 'overwritten'))).toBe('ERR_PATH_OUTSIDE_WORKSPACE');
  expect(fs.readFileSync(keyFile, 'utf8')).toBe('{"kty":"OKP","d":"PRIVATE"}');
});
