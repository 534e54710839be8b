/**
 * Regression for newcomer-15's high finding: `${file:...}` in `resources.secrets` read any file
 * the worker could read, Warden's private signing key included, and sent it to the task's host.
 *
 * The kind: a secret file reference goes through the same protected-resource check tool calls
 * get (worker/warden-resources.ts, sandbox/capabilities/protected-guard.ts). Every kind of
 * Warden's own file or folder, named directly, through a symbolic link or as a hard link, is
 * refused when the task enters (naming `resources.secrets.<host>.<header>`) and again when a
 * call reads it (on the file actually opened). Ordinary files still work. Real files, real links.
 */
import { linkSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { KEY_DIR as CUSTODY_KEY_DIR_FOR_TEST } from '../../custody/ledger';
import { IDENTITY_DB_FILE as IDENTITY_DB_FILE_FOR_TEST } from '../../identity/credential-stores';
import { KEYS_DIR as KEYS_DIR_FOR_TEST } from '../../identity/keystore';
import { resolveOutboundSecrets } from '../../secrets/resolve-outbound-secrets';
import { parseTask } from '../../task/load-task-file';
import { protectedSetOf, taskResourceIssues, wardenKeyFiles, wardenResourcesOf } from '../../worker/warden-resources';

let root: string;
let env: NodeJS.ProcessEnv;
let stateDir: string;
const HOST = 'api.example.com';

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'warden-secret-files-'));
  stateDir = join(root, 'state');
  for (const dir of [KEYS_DIR_FOR_TEST, CUSTODY_KEY_DIR_FOR_TEST]) mkdirSync(join(stateDir, dir), { recursive: true });
  writeFileSync(join(stateDir, KEYS_DIR_FOR_TEST, 'k1.jwk.json'), '{"d":"private-signing-key"}');
  writeFileSync(join(stateDir, CUSTODY_KEY_DIR_FOR_TEST, 'c1.jwk.json'), '{"d":"private-custody-key"}');
  writeFileSync(join(stateDir, IDENTITY_DB_FILE_FOR_TEST), 'grant tokens');
  writeFileSync(join(stateDir, 'other-state.json'), 'state');
  mkdirSync(join(root, 'approvers'));
  writeFileSync(join(root, 'approvers', 'ann.pub.jwk'), '{"x":"approver"}');
  mkdirSync(join(root, 'cache'));
  writeFileSync(join(root, 'cache', 'bundle.js'), 'bundle');
  for (const name of ['tls.key', 'fleet.key', 'trusted.json', 'witness.json']) writeFileSync(join(root, name), name);
  writeFileSync(join(root, 'api-token'), 'tok-ordinary-1234\n');
  symlinkSync(join(stateDir, KEYS_DIR_FOR_TEST, 'k1.jwk.json'), join(root, 'link-to-key'));
  symlinkSync(stateDir, join(root, 'link-to-state'));
  linkSync(join(root, 'fleet.key'), join(root, 'hard-link-to-fleet-key'));
  env = {
    HOME: root,
    WARDEN_CACHE_DIR: join(root, 'cache'),
    WARDEN_APPROVER_DIR: join(root, 'approvers'),
    TEMPORAL_TLS_KEY: join(root, 'tls.key'),
    WARDEN_SIGNING_KEY_FILE: join(root, 'fleet.key'),
    WARDEN_CUSTODY_TRUSTED_KEYS: join(root, 'trusted.json'),
    WARDEN_CUSTODY_WITNESS: join(root, 'witness.json'),
  };
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Each kind of Warden's own file, as a path a task file could name. */
const PROTECTED: [string, () => string][] = [
  ['a credential-authority signing key', () => join(stateDir, KEYS_DIR_FOR_TEST, 'k1.jwk.json')],
  ['a custody signing key', () => join(stateDir, CUSTODY_KEY_DIR_FOR_TEST, 'c1.jwk.json')],
  ['the identity store', () => join(stateDir, IDENTITY_DB_FILE_FOR_TEST)],
  ['any other file in the state folder', () => join(stateDir, 'other-state.json')],
  ['a file in the state folder through .. segments', () => join(stateDir, 'keys', '..', 'other-state.json')],
  ['a file in the cache folder', () => join(root, 'cache', 'bundle.js')],
  ["an approver's key", () => join(root, 'approvers', 'ann.pub.jwk')],
  ['the Temporal client key (TEMPORAL_TLS_KEY)', () => join(root, 'tls.key')],
  ['the fleet signing key (WARDEN_SIGNING_KEY_FILE)', () => join(root, 'fleet.key')],
  ['the pinned custody keys (WARDEN_CUSTODY_TRUSTED_KEYS)', () => join(root, 'trusted.json')],
  ['the custody witness (WARDEN_CUSTODY_WITNESS)', () => join(root, 'witness.json')],
  ['a symbolic link to a signing key', () => join(root, 'link-to-key')],
  ['a path through a symbolic link to the state folder', () => join(root, 'link-to-state', 'keys', 'k1.jwk.json')],
  ['a hard link to the fleet signing key', () => join(root, 'hard-link-to-fleet-key')],
  ["the worker's environment (/proc/self/environ)", () => '/proc/self/environ'],
];

function taskNaming(path: string) {
  return parseTask(
    {
      user: 'mallory@example.com',
      intent: 'call the API',
      agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'done' }] } },
      resources: { hosts: [HOST], secrets: { [HOST]: { 'x-key': `\${file:${path}}` } } },
    },
    join(root, 'task.yaml'),
    root,
  );
}

describe('a ${file:} secret reference to one of Warden\'s own files', () => {
  it.each(PROTECTED)('%s is refused when the task enters, naming the field', async (_what, pathOf) => {
    const resources = wardenResourcesOf({ stateDir, env });
    const issues = await taskResourceIssues(taskNaming(pathOf()), resources, wardenKeyFiles(stateDir, env));
    const issue = issues.find((i) => i.path === `resources.secrets.${HOST}.x-key`);
    expect(issue?.message, JSON.stringify(issues)).toMatch(/a secret reference may not read Warden's own files/);
  });

  it.each(PROTECTED)('%s is refused when a call reads it (ERR_RESOURCE_PROTECTED, nothing resolved)', async (_what, pathOf) => {
    const resources = wardenResourcesOf({ stateDir, env });
    const set = protectedSetOf(resources, wardenKeyFiles(stateDir, env));
    const config = { [HOST]: { 'x-key': `\${file:${pathOf()}}` } };
    await expect(resolveOutboundSecrets(config, { env: {}, credential: 'jwt', allowedHosts: [HOST], protected: { ...set, folders: [stateDir, ...set.folders] } })).rejects.toMatchObject({
      code: 'ERR_RESOURCE_PROTECTED',
      message: expect.stringContaining(`resources.secrets.${HOST}.x-key`),
    });
  });
});

describe('an ordinary secret file', () => {
  it('is accepted when the task enters and read when a call needs it', async () => {
    const resources = wardenResourcesOf({ stateDir, env });
    const path = join(root, 'api-token');
    expect((await taskResourceIssues(taskNaming(path), resources, wardenKeyFiles(stateDir, env))).filter((i) => i.path.startsWith('resources.secrets'))).toEqual([]);
    const set = protectedSetOf(resources, wardenKeyFiles(stateDir, env));
    const resolved = await resolveOutboundSecrets({ [HOST]: { authorization: `Bearer \${file:${path}}` } }, { env: {}, credential: 'jwt', allowedHosts: [HOST], protected: set });
    expect(resolved.secrets).toEqual([{ host: HOST, headers: { authorization: 'Bearer tok-ordinary-1234' } }]);
  });

  it('outside the folders WARDEN_SECRET_FILE_DIRS allows is refused (by the real path opened); inside is read', async () => {
    mkdirSync(join(root, 'task-secrets'), { recursive: true });
    writeFileSync(join(root, 'task-secrets', 'tok'), 'tok-in-allowed-dir');
    symlinkSync(join(root, 'api-token'), join(root, 'task-secrets', 'link-out'));
    const workerEnv = { WARDEN_SECRET_FILE_DIRS: `/nonexistent:${join(root, 'task-secrets')}` };
    const resolve = (path: string) => resolveOutboundSecrets({ [HOST]: { 'x-key': `\${file:${path}}` } }, { env: workerEnv, credential: 'jwt', allowedHosts: [HOST] });
    expect((await resolve(join(root, 'task-secrets', 'tok'))).secrets[0]?.headers['x-key']).toBe('tok-in-allowed-dir');
    for (const path of [join(root, 'api-token'), join(root, 'task-secrets', 'link-out'), join(root, 'task-secrets', '..', 'api-token')]) {
      await expect(resolve(path)).rejects.toMatchObject({ code: 'ERR_RESOURCE_PROTECTED', message: expect.stringContaining('WARDEN_SECRET_FILE_DIRS') });
    }
  });

  it('that is not a regular file (a folder, /dev/zero) is refused without reading it', async () => {
    for (const path of [root, '/dev/zero']) {
      await expect(resolveOutboundSecrets({ [HOST]: { 'x-key': `\${file:${path}}` } }, { env: {}, credential: 'jwt', allowedHosts: [HOST] })).rejects.toMatchObject({ code: 'ERR_SECRET_UNAVAILABLE' });
    }
  });
});
