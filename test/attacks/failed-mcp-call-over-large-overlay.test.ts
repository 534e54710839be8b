/**
 * Regression (guarantee 1: a tool call that does not complete leaves no file effects; it was an open
 * finding): the undo of a failed stdio MCP call was measured only while the overlay's upper folder
 * held at most MAX_UPPER_CAPTURE_BYTES (64 MiB, by file size); past it the worker silently skipped
 * the measurement, the failed call's writes stayed and the commit proof then refused the whole
 * overlay (the task failed, the completed call's file lost).
 *
 * Now (activities/run-tool.ts `beginOutsideUndo`, recovery/overlay-undo.ts `captureUpper`) the
 * worker keeps the bytes of the upper files up to the bound (by lstat size, smallest first; nothing
 * is read to size them, a sparse file costs nothing) and of the larger ones only a stamp (inode,
 * size, mtime, ctime). A completed call makes big.bin, a sparse file of 64 MiB + 1 byte; the next
 * call writes m.txt and fails: m.txt is undone, the task completes with big.bin. When the failed
 * call also deletes big.bin (whose bytes were not kept), the undo cannot be complete: the step
 * fails ERR_UNDO_FAILED naming big.bin (m.txt is still undone) and the task fails closed, nothing
 * committed; never a silent partial undo.
 */
import { mkdtemp, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

const FIXTURES = join(__dirname, 'fixtures');
let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { mcpPackagesDir: REPO_ROOT, sandboxReadOnlyPaths: [FIXTURES] });
});
afterAll(async () => env?.close());

describe('a failed stdio MCP call over a large overlay', () => {
  it.each([
    { drop: false, status: 'completed', error: 'ERR_MCP_TOOL_FAILED', undone: ['m.txt'], files: { 'big.bin': 64 * 1024 * 1024 + 1 } },
    // big.bin's bytes were not kept (it is over the bound): named, fail closed, nothing committed.
    { drop: true, status: 'failed', error: 'ERR_UNDO_FAILED', undone: ['m.txt'], files: {} },
  ])('is undone, or fails closed naming what it cannot undo (it also deletes big.bin: $drop)', async ({ drop, status, error, undone, files: expected }) => {
    const workspace = await mkdtemp(join(tmpdir(), 'warden-failed-mcp-large-'));
    const r = await env.runTask({
      user: 'dana@example.com',
      intent: 'write',
      agent: {
        name: 'scribe-agent',
        model: { driver: 'scripted', script: [{ tool: 'scribe.scribble', args: { big: true } }, { tool: 'scribe.scribble', args: { fail: true, drop } }, { final: 'done' }] },
      },
      tools: { mcp: { scribe: { command: 'node', args: [join(FIXTURES, 'big-overlay-server.mjs')] } } },
      grants: { tools: ['scribe.scribble'] },
      // The foundation pack refuses an MCP tool that does not declare its effects; this one is a writer by design.
      policyPacks: [],
      limits: { toolTimeout: '60s', maxSteps: 50, deadline: '3m', onDeny: 'continue' },
      resources: { workspace },
    });
    const steps = r.steps.filter((s) => s.tool === 'scribe.scribble').map((s) => ({ error: s.error?.code, undone: s.undone }));
    const files: Record<string, number> = {};
    for (const name of await readdir(workspace)) files[name] = (await stat(join(workspace, name))).size;
    expect({ status: r.status, steps, files }, r.reason).toEqual({
      status,
      steps: [
        { error: undefined, undone: undefined },
        { error, undone },
      ],
      files: expected,
    });
    if (error === 'ERR_UNDO_FAILED') expect(r.steps.find((s) => s.error?.code === 'ERR_UNDO_FAILED')?.error?.message).toMatch(/could not all be undone: it changed "big\.bin"/);
  });
});
