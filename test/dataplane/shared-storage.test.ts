/**
 * What a worker checks about shared storage: at start (the shared folder exists, is a folder, is
 * writable, is not inside its own state folder) and at a task's start (its workspace and database
 * folders exist here and, with a shared folder, are not in this worker's private state folder).
 */
import { chmod, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { checkSharedStorage, checkTaskResources, dataPlaneQueueOf, sharedDirOf, workerIdOf } from '../../dataplane/shared-storage';

const asRoot = process.getuid?.() === 0;

describe('checkSharedStorage', () => {
  it('registers the worker and one deployment id that every worker of the folder sees', async () => {
    const shared = await mkdtemp(join(tmpdir(), 'warden-shared-'));
    const a = await checkSharedStorage({ sharedDir: shared, explicit: true, workerId: 'a', stateDir: join(tmpdir(), 'state-a') });
    const b = await checkSharedStorage({ sharedDir: shared, explicit: true, workerId: 'b', stateDir: join(tmpdir(), 'state-b') });
    expect(a.deploymentId).toBe(b.deploymentId);
    expect(JSON.parse(await readFile(join(shared, 'workers', 'b.json'), 'utf8'))).toMatchObject({ workerId: 'b' });
  });

  const cases: [string, (d: string) => Promise<string>, RegExp][] = [
    ['a folder that does not exist (a volume that is not mounted is never created)', async (d: string) => join(d, 'not-mounted'), /does not exist/],
    ['a file', async (d: string) => {
      await writeFile(join(d, 'file'), '');
      return join(d, 'file');
    }, /is not a folder/],
  ];
  // root writes anywhere: the unwritable case only means something for other users.
  if (!asRoot) {
    cases.push(['a folder it cannot write', async (d: string) => {
      await mkdir(join(d, 'ro'));
      await chmod(join(d, 'ro'), 0o500);
      return join(d, 'ro');
    }, /is not writable/]);
  }
  it.each(cases)('refuses %s', async (_what, make, message) => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-shared-'));
    const sharedDir = await make(dir);
    await expect(checkSharedStorage({ sharedDir, explicit: true, workerId: 'w', stateDir: join(dir, 'state') })).rejects.toMatchObject({ code: 'ERR_SHARED_STORAGE', message: expect.stringMatching(message) });
  });

  it("refuses a shared folder inside the worker's own state folder", async () => {
    const state = await mkdtemp(join(tmpdir(), 'warden-state-'));
    await mkdir(join(state, 'shared'));
    await expect(checkSharedStorage({ sharedDir: join(state, 'shared'), explicit: true, workerId: 'w', stateDir: state })).rejects.toMatchObject({ code: 'ERR_SHARED_STORAGE' });
  });

  it('creates the default shared folder (the state folder) on a single machine', async () => {
    const state = join(await mkdtemp(join(tmpdir(), 'warden-state-')), 'fresh');
    await expect(checkSharedStorage({ sharedDir: state, explicit: false, workerId: 'w', stateDir: state })).resolves.toMatchObject({ sharedDir: state });
  });
});

describe('checkTaskResources', () => {
  it('accepts a workspace and database folders that exist outside the state folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-res-'));
    await mkdir(join(dir, 'ws'));
    await expect(checkTaskResources({ workspace: join(dir, 'ws'), databases: { db: join(dir, 'x.db') }, stateDir: join(dir, 'state'), explicitShared: true })).resolves.toBeUndefined();
  });

  it.each([
    ['a missing workspace', (d: string) => ({ workspace: join(d, 'nope'), databases: {} }), /workspace .* does not exist on this worker/],
    ['a missing database folder', (d: string) => ({ workspace: undefined, databases: { inv: join(d, 'gone', 'inv.db') } }), /database "inv" folder/],
    ['a workspace inside the private state folder', (d: string) => ({ workspace: join(d, 'state', 'ws'), databases: {} }), /private state folder/],
  ])('refuses %s', async (_what, resources, message) => {
    const dir = await mkdtemp(join(tmpdir(), 'warden-res-'));
    await mkdir(join(dir, 'state', 'ws'), { recursive: true });
    await expect(checkTaskResources({ ...resources(dir), stateDir: join(dir, 'state'), explicitShared: true })).rejects.toMatchObject({ code: 'ERR_SHARED_STORAGE', message: expect.stringMatching(message) });
  });
});

describe('names', () => {
  it('derives a stable worker id from the state folder unless WARDEN_WORKER_ID names one', () => {
    expect(workerIdOf('/var/lib/warden', {})).toBe(workerIdOf('/var/lib/warden', {}));
    expect(workerIdOf('/var/lib/warden', {})).not.toBe(workerIdOf('/var/lib/other', {}));
    expect(workerIdOf('/x', { WARDEN_WORKER_ID: 'pod-7' })).toBe('pod-7');
    expect(dataPlaneQueueOf('warden-agent-tasks', 'pod-7')).toBe('warden-agent-tasks@pod-7');
    expect(sharedDirOf({ WARDEN_SHARED_DIR: 'mnt/shared' }, '/state', '/srv')).toBe('/srv/mnt/shared');
    expect(sharedDirOf({}, '/state')).toBe('/state');
  });
});
