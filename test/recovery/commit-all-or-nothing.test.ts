/**
 * Regression for attack 11 finding 6. A program replaces a workspace file by a folder, or a folder by a file (what build
 * tools do every day: `rm -r build; touch build`). The kernel overlay records that; Warden's
 * commit cannot apply it. With the file→folder case the commit activity fails with a retryable
 * error after it has already replaced the files before it, and is retried until its attempts run
 * out: the workspace stays half-committed and the task hangs in `commitTask`. With the
 * folder→file case the commit fails at once (ERR_COMMIT_CONFLICT, although nobody else touched
 * the workspace) and the workflow fails with no task result, leaving its overlay behind.
 *
 * The kind: every task ends with a result (committed, or `failed` with the reason, rolled back)
 * and the workspace is all-or-nothing: the commit applies changes of a path's kind (file <->
 * folder) in the right order, and any fault while applying undoes what it had applied
 * (ERR_COMMIT_FAILED, not retried).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { markOpaque } from '../../recovery/overlay-layer';
import { commitOverlay, openOverlay } from '../../recovery/workspace-overlay';
import { rollbackTask } from '../../recovery/workspace-rollback';
import { codeOf, treeOf, writeTree } from './recovery-test-kit';
import { commitManifestPathOf, overlayPathsOf, taskKeyOf } from '../../recovery/recovery-paths';
import { objectPathOf } from '../../recovery/snapshot-store';
import { startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';
import { makeTempDir } from '../sandbox/sandbox-test-kit';

let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

function listing(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => (e.isDirectory() ? [`${e.name}/`, ...listing(path.join(dir, e.name)).map((x) => `${e.name}/${x}`)] : [e.name]))
    .sort();
}

describe('program writes the commit cannot apply', () => {
  it.each([
    ['a file replaced by a folder', 'echo new > a.txt; rm notes.txt; mkdir notes.txt; echo x > notes.txt/inner'],
    ['a folder replaced by a file', 'echo new > a.txt; rm -r dir; echo f > dir'],
  ])('%s: the task ends with a result and the workspace is all-or-nothing', async (_label, script) => {
    const workspace = makeTempDir('uncommittable');
    fs.writeFileSync(path.join(workspace, 'notes.txt'), 'notes');
    fs.mkdirSync(path.join(workspace, 'dir'));
    fs.writeFileSync(path.join(workspace, 'dir', 'f'), 'f');
    const before = listing(workspace);
    const known = env.workflowIds.length;
    const run = env
      .runTask({
        user: 'sam@example.com',
        intent: 'rebuild the project',
        agent: { name: 'builder', model: { driver: 'scripted', script: [{ tool: 'proc.run', args: { command: 'sh', args: ['-c', script] } }, { final: 'done' }] } },
        tools: { builtin: ['proc.run'] },
        grants: { tools: ['proc.run'], commands: ['sh', 'rm', 'mkdir'] },
        resources: { workspace },
        limits: { toolTimeout: '30s' },
      })
      .then(
        (result) => ({ result, error: undefined as string | undefined }),
        (error: Error & { cause?: { message?: string } }) => ({ result: undefined, error: error.cause?.message ?? error.message }),
      );
    while (env.workflowIds.length === known) await new Promise((r) => setTimeout(r, 50));
    const workflowId = env.workflowIds.at(-1)!;
    const handle = env.client.workflow.getHandle(workflowId);
    // Wait for an event: the run ends, or its commit has failed and is being retried.
    let retrying: string | undefined;
    const ended = await Promise.race([
      run,
      (async () => {
        for (;;) {
          const pending = (await handle.describe()).raw.pendingActivities ?? [];
          const commit = pending.find((a) => a.activityType?.name === 'commitTask' && (a.attempt ?? 0) >= 2);
          if (commit !== undefined) {
            retrying = `commitTask attempt ${commit.attempt}: ${commit.lastFailure?.message}`;
            return undefined;
          }
          await new Promise((r) => setTimeout(r, 200));
        }
      })(),
    ]);
    const after = listing(workspace);
    if (retrying !== undefined) await handle.terminate('attack test cleanup');
    // (Only judged when the test did not terminate the workflow itself.)
    const overlayLeft = retrying === undefined && fs.existsSync(overlayPathsOf(TEST_STATE_DIR, taskKeyOf(workflowId)).dir);
    const allOrNothing = JSON.stringify(after) === JSON.stringify(before) || !after.includes('notes.txt') || (after.includes('a.txt') && !after.includes('dir/f'));
    if (ended?.result !== undefined && ended.result.status !== 'completed') expect(ended.result.reason).toMatch(/could not be committed/);
    if (ended?.result?.status === 'completed') expect(ended.result.recovery?.committed).toContain('a.txt');
    expect({ stuckRetrying: retrying, workflowError: ended?.error, status: ended?.result?.status ?? null, partial: !allOrNothing ? after : false, overlayLeft }).toEqual({
      stuckRetrying: undefined,
      workflowError: undefined,
      status: expect.any(String),
      partial: false,
      overlayLeft: false,
    });
  }, 120_000);
});

describe('a commit that cannot be applied', () => {
  it('ends the task failed with the reason, the workspace as before and the overlay gone', async () => {
    const workspace = makeTempDir('uncommittable-link');
    fs.mkdirSync(path.join(workspace, 'dir'));
    fs.writeFileSync(path.join(workspace, 'dir', 'f'), 'f');
    // A symbolic link is never deleted or followed by a commit: the folder cannot become a file.
    fs.symlinkSync('f', path.join(workspace, 'dir', 'link'));
    const before = listing(workspace);
    const result = await env.runTask({
      user: 'sam@example.com',
      intent: 'rebuild the project',
      agent: { name: 'builder', model: { driver: 'scripted', script: [{ tool: 'proc.run', args: { command: 'sh', args: ['-c', 'echo new > a.txt; rm -r dir; echo f > dir'] } }, { final: 'done' }] } },
      tools: { builtin: ['proc.run'] },
      grants: { tools: ['proc.run'], commands: ['sh', 'rm', 'mkdir'] },
      resources: { workspace },
      limits: { toolTimeout: '30s' },
    });
    expect(result.status).toBe('failed');
    expect(result.reason).toMatch(/could not be committed: ERR_COMMIT_FAILED: cannot commit "dir"/);
    expect(result.recovery?.rolledBack.map((r) => r.kind)).toContain('fs-overlay-discard');
    expect(listing(workspace)).toEqual(before);
    expect(fs.existsSync(overlayPathsOf(TEST_STATE_DIR, taskKeyOf(result.workflowId)).dir)).toBe(false);
  }, 120_000);
});

describe('commitOverlay, all or nothing (no Temporal)', () => {
  const taskKey = 'all-or-nothing';
  const start = { 'notes.txt': 'notes', 'dir/f': 'f', 'dir/sub/g': 'g', 'keep.txt': 'keep' };

  async function setUp(upper: (root: string) => void) {
    const stateDir = makeTempDir('aon-state');
    const workspace = makeTempDir('aon-ws');
    writeTree(workspace, start);
    const overlay = await openOverlay({ stateDir, taskKey, workspace });
    upper(overlay.upper);
    return { stateDir, workspace };
  }

  it.each([
    ['a file replaced by a folder', (u: string) => { writeTree(u, { 'a.txt': 'new', 'notes.txt/inner': 'x', 'notes.txt/deep/er': 'y' }); markOpaque(path.join(u, 'notes.txt')); }, { 'a.txt': 'new', 'notes.txt/inner': 'x', 'notes.txt/deep/er': 'y', 'dir/f': 'f', 'dir/sub/g': 'g', 'keep.txt': 'keep' }],
    ['a folder replaced by a file', (u: string) => writeTree(u, { 'a.txt': 'new', dir: 'now a file' }), { 'a.txt': 'new', 'notes.txt': 'notes', dir: 'now a file', 'keep.txt': 'keep' }],
    ['a file moved under a folder of its own name', (u: string) => { writeTree(u, { 'keep.txt/keep.txt': 'keep' }); markOpaque(path.join(u, 'keep.txt')); }, { 'notes.txt': 'notes', 'dir/f': 'f', 'dir/sub/g': 'g', 'keep.txt/keep.txt': 'keep' }],
  ])('%s: committed whole, and rolled back whole', async (_label, upper, expected) => {
    const { stateDir, workspace } = await setUp(upper);
    await commitOverlay({ stateDir, taskKey, workspace });
    expect(treeOf(workspace)).toEqual(expected);
    await rollbackTask({ stateDir, taskKey, workspace });
    expect(treeOf(workspace)).toEqual(start);
  });

  it.each([0, 1, 2, 3])('a fault after %i replaced file(s) leaves the workspace as before, and is not retried into "committed"', async (after) => {
    const { stateDir, workspace } = await setUp((u) => writeTree(u, { 'a.txt': 'a', 'b.txt': 'b', 'notes.txt': 'changed', 'dir/f': 'F' }));
    // The fault: the stored content of the next file to write is damaged after planning.
    const code = await codeOf(() =>
      commitOverlay({
        stateDir,
        taskKey,
        workspace,
        onProgress: (event) => {
          if (event.stage !== 'manifest-written') return;
          const manifest = JSON.parse(fs.readFileSync(commitManifestPathOf(stateDir, taskKey), 'utf8')) as { entries: { after: string | null }[] };
          const object = objectPathOf(stateDir, manifest.entries[after]!.after!);
          fs.chmodSync(object, 0o600);
          fs.writeFileSync(object, 'damaged');
        },
      }),
    );
    expect(code).toBe('ERR_COMMIT_FAILED');
    expect(treeOf(workspace)).toEqual(start);
    expect(await codeOf(() => commitOverlay({ stateDir, taskKey, workspace }))).toBe('ERR_COMMIT_FAILED');
    expect(treeOf(workspace)).toEqual(start);
  });
});
