/**
 * Warden's own state, caches, keys and control plane are never handed to an agent: a task whose
 * workspace or database reaches them, or which grants a Temporal endpoint, is refused; `warden
 * run` says so with exit 2 naming the file and the field, before anything starts.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { wardenResourceIssues, type WardenResources } from '../../permissions/warden-resources';
import { parseTask } from '../../task/load-task-file';
import { temporalEndpointsOf } from '../../worker/warden-resources';
import { REPO_ROOT } from '../support/warden-test-env';

const resources: WardenResources = {
  folders: [
    { path: '/srv/app/.warden', what: "Warden's state folder" },
    { path: '/home/u/.cache/warden', what: "Warden's cache folder" },
  ],
  files: [{ path: '/etc/temporal/client.key', what: 'the Temporal client key (TEMPORAL_TLS_KEY)' }],
  endpoints: [
    { host: '127.0.0.1', port: 7233, what: 'the Temporal frontend' },
    { host: '127.0.0.1', port: 8233, what: 'the Temporal web UI' },
    { host: '127.0.0.1', port: 7243, what: "the Temporal frontend's HTTP API" },
    { host: 'temporal.internal', port: 443, what: 'a host listed in WARDEN_PROTECTED_HOSTS' },
  ],
};

function task(fields: { workspace?: string; databases?: Record<string, string>; hosts?: string[]; subHosts?: string[] }) {
  const hosts = [...(fields.hosts ?? []), ...(fields.subHosts ?? [])];
  return parseTask(
    {
      user: 'u',
      intent: 'i',
      agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'x' }] } },
      grants: { hosts: fields.hosts ?? [], ...(fields.subHosts === undefined ? {} : { subagents: ['kid'] }) },
      resources: { hosts, ...(fields.workspace === undefined ? {} : { workspace: fields.workspace }), databases: fields.databases ?? {} },
      ...(fields.subHosts === undefined ? {} : { subagents: { kid: { intent: 'k', agent: { name: 'kid', model: { driver: 'scripted', script: [{ final: 'k' }] } }, grants: { hosts: fields.subHosts } } } }),
    },
    'task.yaml',
    '/',
  );
}

const real = (t: ReturnType<typeof task>) => ({ ...(t.resources.workspace === undefined ? {} : { workspace: t.resources.workspace }), databases: t.resources.databases });

describe('tasks that would hand Warden its own resources', () => {
  it.each([
    ['a workspace containing the state folder', { workspace: '/srv/app' }, 'resources.workspace', /contains Warden's state folder/],
    ['the state folder itself as workspace', { workspace: '/srv/app/.warden' }, 'resources.workspace', /contains Warden's state folder/],
    ['a workspace inside the state folder', { workspace: '/srv/app/.warden/overlays' }, 'resources.workspace', /is inside Warden's state folder/],
    ['a workspace containing the cache folder', { workspace: '/home/u' }, 'resources.workspace', /contains Warden's cache folder/],
    ['the root folder', { workspace: '/' }, 'resources.workspace', /contains Warden's state folder/],
    ['a workspace containing the Temporal client key', { workspace: '/etc' }, 'resources.workspace', /contains the Temporal client key/],
    ['a database inside the state folder', { databases: { id: '/srv/app/.warden/identity.db' } }, 'resources.databases.id', /inside Warden's state folder/],
    ['the custody ledger as a database', { databases: { c: '/srv/app/.warden/custody.db' } }, 'resources.databases.c', /inside Warden's state folder/],
    ['the frontend by address', { hosts: ['127.0.0.1:7233'] }, 'grants.hosts.0', /the Temporal frontend \(127\.0\.0\.1:7233\)/],
    ['the frontend by name', { hosts: ['localhost:7233'] }, 'grants.hosts.0', /the Temporal frontend/],
    ['the frontend over IPv6 loopback', { hosts: ['[::1]:7233'] }, 'grants.hosts.0', /the Temporal frontend/],
    ['the frontend via 0.0.0.0', { hosts: ['0.0.0.0:7233'] }, 'grants.hosts.0', /the Temporal frontend/],
    ['the frontend via another loopback address', { hosts: ['127.0.0.2:7233'] }, 'grants.hosts.0', /the Temporal frontend/],
    ['the web UI', { hosts: ['127.0.0.1:8233'] }, 'grants.hosts.0', /the Temporal web UI/],
    ['the HTTP API', { hosts: ['localhost.:7243'] }, 'grants.hosts.0', /HTTP API/],
    ['a listed external UI by plain name (default https port)', { hosts: ['Temporal.Internal'] }, 'grants.hosts.0', /WARDEN_PROTECTED_HOSTS/],
    ['a sub-agent granted the UI', { subHosts: ['127.0.0.1:8233'] }, 'subagents.kid.grants.hosts.0', /the Temporal web UI/],
  ])('refuses %s', (_name, fields, path, message) => {
    const t = task(fields);
    const issues = wardenResourceIssues(t, real(t), resources);
    expect(issues.find((i) => i.path === path && message.test(i.message)), JSON.stringify(issues)).toBeDefined();
  });

  it.each([
    ['a workspace next to the state folder', { workspace: '/srv/app/workspace' }],
    ['a workspace whose name starts like the state folder', { workspace: '/srv/app/.warden-data' }],
    ['a database outside', { databases: { inv: '/srv/app/data/inv.db' } }],
    ['another local port', { hosts: ['127.0.0.1:8080'] }],
    ['a plain loopback host (ports 80 and 443)', { hosts: ['127.0.0.1'] }],
    ['another host on the frontend port', { hosts: ['api.example.com:7233'] }],
  ])('accepts %s', (_name, fields) => {
    const t = task(fields);
    expect(wardenResourceIssues(t, real(t), resources)).toEqual([]);
  });

  it('knows the embedded server endpoints, TEMPORAL_ADDRESS and WARDEN_PROTECTED_HOSTS', () => {
    expect(temporalEndpointsOf({ WARDEN_TEMPORAL_PORT: '7350', WARDEN_TEMPORAL_UI_PORT: '8350' }).map((e) => `${e.host}:${e.port}`)).toEqual([
      '127.0.0.1:7350',
      '127.0.0.1:8350',
      '127.0.0.1:7351',
    ]);
    expect(temporalEndpointsOf({}).map((e) => e.port)).toEqual([7233, 8233, 7243]);
    expect(temporalEndpointsOf({ TEMPORAL_ADDRESS: 'temporal.prod:7233', WARDEN_PROTECTED_HOSTS: 'ui.prod:443, api.prod:7243' }).map((e) => `${e.host}:${e.port}`)).toEqual([
      'temporal.prod:7233',
      'ui.prod:443',
      'api.prod:7243',
    ]);
  });
});

describe('warden run refuses them with exit 2', () => {
  const run = promisify(execFile);
  const cases = [
    { name: 'a workspace containing the state folder', setup: (dir: string) => ({ workspace: '.', stateDir: join(dir, '.warden') }), path: 'resources.workspace', message: /contains Warden's state folder/ },
    { name: 'a grant of the web UI', setup: (dir: string) => ({ hosts: ['127.0.0.1:8350'], stateDir: join(dir, 'state') }), path: 'grants.hosts.0', message: /the Temporal web UI/ },
  ];
  it.each(cases)('$name', async ({ setup, path, message }) => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-protected-'));
    const { stateDir, workspace, hosts } = setup(dir) as { stateDir: string; workspace?: string; hosts?: string[] };
    mkdirSync(join(dir, 'ws'));
    const file = join(dir, 'task.json');
    writeFileSync(
      file,
      JSON.stringify({
        user: 'u',
        intent: 'read the keys',
        agent: { name: 'a', model: { driver: 'scripted', script: [{ final: 'x' }] } },
        grants: { hosts: hosts ?? [] },
        resources: { hosts: hosts ?? [], ...(workspace === undefined ? {} : { workspace }) },
      }),
    );
    const result = await run(process.execPath, [join(REPO_ROOT, 'bin/warden.js'), 'run', file], {
      cwd: dir,
      env: { ...process.env, WARDEN_STATE_DIR: stateDir, WARDEN_TEMPORAL_PORT: '7350', WARDEN_TEMPORAL_UI_PORT: '8350' },
    }).then(
      () => ({ code: 0, stderr: '' }),
      (e: { code: number; stderr: string }) => e,
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain(`${file}: ${path}:`);
    expect(result.stderr).toMatch(message);
    // Nothing started: no state was created.
    expect(existsSync(stateDir)).toBe(false);
  });
});
