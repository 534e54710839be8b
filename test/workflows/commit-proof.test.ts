/**
 * A commit that cannot lie, on the ordinary loop (issue 12 item 3; the data flow's own proof is in
 * data-flow.test.ts): every call reports the files it left in the overlay, a completed sub-agent
 * hands its own up, and the root's commit proves the overlay holds exactly those. A task whose
 * overlay vanished, lost a file, changed or gained a file nobody wrote is not `completed`: it
 * fails with ERR_OVERLAY_MISSING / ERR_COMMIT_MISMATCH, commits nothing, rolls back, and the
 * failed commit is in custody. Before the proof, each of these ended `completed` (an empty or
 * tampered commit).
 */
import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { WARDEN_ATTR } from '../../custody/attributes';
import { LedgerReader } from '../../custody/ledger-reader';
import { activityTypeOfSpan } from '../../custody/span-roles';
import { overlayPathsOf, taskKeyOf } from '../../recovery/recovery-paths';
import { parseTask } from '../../task/load-task-file';
import { replayAllRuns } from '../support/replay-runs';
import { makeNotesWorkspace, waitForTaskState } from '../support/task-kit';
import { REPO_ROOT, startWardenTestEnv, TEST_STATE_DIR, type WardenTestEnv } from '../support/warden-test-env';

let env: WardenTestEnv;

beforeAll(async () => {
  env = await startWardenTestEnv();
});
afterAll(async () => env?.close());

const fixture = () => makeNotesWorkspace('warden-commit-proof-');

const scripted = (name: string, script: unknown[]) => ({ name, model: { driver: 'scripted', script } });

/** A task on the ordinary loop (no `dataFlow`), with a sub-agent `kid` that writes kid.txt. */
function task(workspace: string, dbFile: string, script: unknown[], extra: Record<string, unknown> = {}) {
  return parseTask(
    {
      user: 'dana@example.com',
      intent: 'write a report, with a helper',
      agent: scripted('writer', script),
      tools: {
        builtin: ['fs.read', 'fs.write', 'sql.exec'],
        custom: [
          // Waits (busy, inside its isolate) until the test puts go.txt in the workspace.
          { name: 'wait-for-go', description: 'waits for go.txt', capabilities: ['fs.read'], source: "for (;;) { try { return warden.fs.read('go.txt'); } catch (e) {} }" },
          { name: 'half-done', description: 'writes, then fails', capabilities: ['fs.write'], source: "warden.fs.write('partial.txt', 'partial'); throw new Error('gave up');" },
        ],
      },
      grants: { tools: ['fs.read', 'fs.write', 'sql.exec', 'wait-for-go', 'half-done'], databases: ['app'], subagents: ['kid', 'quitter'] },
      limits: { toolTimeout: '60s', deadline: '15m', onDeny: 'continue' },
      resources: { workspace, databases: { app: dbFile } },
      subagents: {
        kid: { intent: 'write kid.txt', agent: scripted('kid', [{ tool: 'fs.write', args: { path: 'kid.txt', content: 'from the kid' } }, { final: 'kid done' }]), tools: { builtin: ['fs.write'] }, grants: { tools: ['fs.write'] } },
        // Writes, then is denied a tool it was not granted: its write is undone, and is no part of what the root commits.
        quitter: {
          intent: 'write and give up',
          agent: scripted('quitter', [{ tool: 'fs.write', args: { path: 'quitter.txt', content: 'q' } }, { tool: 'sql.exec', args: { database: 'app', sql: 'DELETE FROM notes' } }, { final: 'never' }]),
          tools: { builtin: ['fs.write', 'fs.read'] },
          grants: { tools: ['fs.write', 'fs.read'] },
          limits: { onDeny: 'stop' },
        },
      },
      ...extra,
    },
    'commit-proof-task.yaml',
    REPO_ROOT,
  );
}

/** The custody records of the task's commit activity: name, status, attributes. */
async function commitSpans(workflowId: string): Promise<{ status?: { code?: string; message?: string }; attributes?: Record<string, unknown> }[]> {
  await env.telemetry!.forceFlush();
  const reader = LedgerReader.open({ stateDir: TEST_STATE_DIR });
  try {
    return reader
      .records(workflowId)
      .map((r) => r.body as { name?: string; status?: { code?: string; message?: string }; attributes?: Record<string, unknown> })
      .filter((b) => activityTypeOfSpan(b.name ?? '', b.attributes ?? {}) === 'commitTask');
  } finally {
    reader.close();
  }
}

describe('a commit that cannot lie, on the ordinary loop', () => {
  const damages: [string, (upper: string, overlayDir: string) => Promise<void>, string][] = [
    // The busy tool may be creating files in it meanwhile: rm retries on ENOTEMPTY.
    ['the overlay vanished (the example)', (_upper, dir) => rm(dir, { recursive: true, force: true, maxRetries: 20, retryDelay: 50 }), 'ERR_OVERLAY_MISSING'],
    ["a sub-agent's file is gone from the overlay", (upper) => rm(join(upper, 'kid.txt')), 'ERR_OVERLAY_MISSING'],
    ['a written file changed behind the task', (upper) => writeFile(join(upper, 'report.txt'), 'tampered'), 'ERR_COMMIT_MISMATCH'],
    ['a file no step wrote appeared', (upper) => writeFile(join(upper, 'smuggled.txt'), 'x'), 'ERR_COMMIT_MISMATCH'],
  ];

  it.each(damages)('when %s, the task fails with the typed error, commits nothing, rolls back and says so in custody', async (_what, damage, code) => {
    const { workspace, dbFile, rows } = await fixture();
    const workflowId = `commit-proof-lie-${code}-${Date.now()}`;
    const handle = await env.start(
      task(workspace, dbFile, [
        { tool: 'fs.write', args: { path: 'report.txt', content: 'the report' } },
        { tool: 'sql.exec', args: { database: 'app', sql: "INSERT INTO notes (body) VALUES ('written')" } },
        { spawn: 'kid' },
        { tool: 'wait-for-go', args: {} },
        { final: 'done' },
      ]),
      workflowId,
    );
    await waitForTaskState(handle, (s) => s.steps.length >= 4 && s.steps[2]!.executed);
    expect(rows()).toBe(1);
    const overlay = overlayPathsOf(TEST_STATE_DIR, taskKeyOf(workflowId, handle.firstExecutionRunId));
    expect(await readFile(join(overlay.upper, 'kid.txt'), 'utf8')).toBe('from the kid');
    await damage(overlay.upper, overlay.dir);
    await writeFile(join(workspace, 'go.txt'), 'go');
    const result = await followAgentTask(handle);
    expect(result.status).toBe('failed');
    expect(result.reason).toContain(`the task's files could not be committed: ${code}`);
    expect(result.recovery?.committed).toBeUndefined();
    // The kid's write is undone first (newest first), then the SQL, then the overlay is discarded.
    expect(result.recovery?.rolledBack.map((r) => [r.kind, r.status])).toEqual([
      ['fs-overlay-undo', expect.stringMatching(/done|nothing-to-do/)],
      ['sql-undo', 'done'],
      ['fs-overlay-discard', expect.stringMatching(/done|nothing-to-do/)],
    ]);
    for (const file of ['report.txt', 'kid.txt', 'smuggled.txt']) await expect(readFile(join(workspace, file))).rejects.toThrow();
    expect(rows()).toBe(0);
    if (env.telemetry !== undefined) {
      const spans = await commitSpans(workflowId);
      expect(spans.length).toBeGreaterThan(0);
      expect(spans.map((s) => [s.status?.code, s.attributes?.[WARDEN_ATTR.outcome]])).toContainEqual(['ERROR', code]);
    }
  });

  it("commits exactly what the steps wrote: a sub-agent's files, not a failed call's (undone), not a failed sub-agent's", async () => {
    const { workspace, dbFile } = await fixture();
    const result = await followAgentTask(
      await env.start(
        task(workspace, dbFile, [
          { tool: 'fs.write', args: { path: 'a.txt', content: 'first' } },
          { tool: 'fs.write', args: { path: 'a.txt', content: 'second' } },
          { tool: 'half-done', args: {} },
          { spawn: 'kid' },
          { spawn: 'quitter' },
          { final: 'done' },
        ]),
      ),
    );
    expect(result.status).toBe('completed');
    expect(result.steps[2]?.error?.code).toBe('ERR_TOOL_THREW');
    expect(result.children.map((c) => c.status)).toEqual(['completed', 'denied']);
    expect(result.steps[2]?.undone).toEqual(['partial.txt']);
    expect([...(result.recovery?.committed ?? [])].sort()).toEqual(['a.txt', 'kid.txt']);
    await expect(readFile(join(workspace, 'partial.txt'))).rejects.toThrow();
    expect(await readFile(join(workspace, 'a.txt'), 'utf8')).toBe('second');
    expect(await readFile(join(workspace, 'kid.txt'), 'utf8')).toBe('from the kid');
    await expect(readFile(join(workspace, 'quitter.txt'))).rejects.toThrow();
  });

  it('replays every run of every history of this file', async () => {
    const { failures, workflows } = await replayAllRuns(env.client, env.taskQueue);
    expect(failures).toEqual([]);
    expect(workflows.size).toBeGreaterThanOrEqual(5);
  }, 300_000);
});
