/**
 * Attack (guarantee 1: a tool call that does not complete leaves no file effects): the undo of a
 * failed stdio MCP call is measured only while the overlay's upper folder holds at most
 * MAX_UPPER_CAPTURE_BYTES (64 MiB, by file size); past it the worker skips the measurement and the
 * failed call's effects stay (activities/run-tool.ts `beginOutsideUndo`). Nothing in README.md,
 * sandbox/README.md or recovery/README.md says so: they promise "a stdio MCP server's call that
 * failed" leaves no file behind.
 *
 * The input: a first, completed call of the server makes big.bin, a sparse file of 64 MiB + 1 byte
 * (no disk cost, lstat size is what counts). The second call writes m.txt (and, in one row, deletes
 * big.bin), then fails (`isError`). Seen before main's ordinary-loop commit proof (224eee0): the
 * task completed with m.txt committed and big.bin gone. Seen now: the failed call is not undone
 * (no `undone` on the step), the commit proof then refuses the whole overlay (ERR_COMMIT_MISMATCH
 * "written by no step: m.txt", or ERR_OVERLAY_MISSING "lacks big.bin"), the task fails and the
 * completed call's big.bin is lost: fail-closed, but one failed call past 64 MiB sinks the task.
 * Secure: the failed call's effects are undone (or, when they cannot be measured, the call is
 * refused `ERR_UNDO_FAILED` before it runs, as a sub-agent's program call is), the task completes
 * and the workspace holds big.bin and no m.txt.
 */
import { mkdtemp, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../../support/warden-test-env';

const FIXTURES = join(__dirname, 'fixtures');
let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { mcpPackagesDir: REPO_ROOT, sandboxReadOnlyPaths: [FIXTURES] });
});
afterAll(async () => env?.close());

describe('a failed stdio MCP call over a large overlay', () => {
  it.each([
    { drop: false, undone: ['m.txt'] },
    { drop: true, undone: ['big.bin', 'm.txt'] },
  ])('leaves no file effects (it also deletes big.bin: $drop): its write is not committed, the completed call\'s file is kept', async ({ drop, undone }) => {
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
      status: 'completed',
      steps: [
        { error: undefined, undone: undefined },
        { error: 'ERR_MCP_TOOL_FAILED', undone },
      ],
      files: { 'big.bin': 64 * 1024 * 1024 + 1 },
    });
  });
});
