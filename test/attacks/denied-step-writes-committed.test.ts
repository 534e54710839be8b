/**
 * Attack (issues 12/17, the commit proof), now a regression test: a tool call that did not
 * complete used to leave what it wrote before it stopped in the task tree's overlay, and the
 * commit put it in the workspace. The finding's example: the sandbox host's gate stops a call
 * part-way (its second write is inside a denied path); the step was recorded `decision: deny,
 * executed: false`, yet its first write (20 KB `a.txt`) was committed, and on the data flow the
 * commit proof counted it as written (`writesOfFailure`).
 *
 * The kind: every call that does not complete (stopped by the gate, denied or held and never
 * approved; thrown; past its time; out of memory; its sandbox host killed) has its overlay writes
 * taken back out by the worker before the workflow goes on (activities/run-tool.ts, with the
 * fs capability's undo records), the step record names them (`undone`), and the data flow's
 * commit proof never counts a stopped or failed call's writes. Each kind runs on both paths; a
 * call that completes keeps its writes (the control), and a failed call that overwrote an earlier
 * step's file gives that file back its earlier content.
 */
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { followAgentTask } from '../../client/start-agent-task';
import { parseTask } from '../../task/load-task-file';
import { overlayPathsOf, overlayUndoDirOf, taskKeyOf } from '../../recovery/recovery-paths';
import { openOverlay } from '../../recovery/workspace-overlay';
import { callKeyOf } from '../../recovery/call-key';
import { WARDEN_ATTR } from '../../custody/attributes';
import { LedgerReader } from '../../custody/ledger-reader';
import { activityTypeOfSpan } from '../../custody/span-roles';
import { REPO_ROOT, TEST_STATE_DIR, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

const FIXTURES = join(__dirname, 'fixtures');
let env: WardenTestEnv;
beforeAll(async () => {
  env = await startWardenTestEnv(process.env, { mcpPackagesDir: REPO_ROOT, sandboxReadOnlyPaths: [FIXTURES] });
});
afterAll(async () => env?.close());

const BIG = "'y'.repeat(20000)";

interface Kind {
  name: string;
  /** The user tool's source: it writes, then fails in its own way. */
  source: string;
  policies?: string[];
  tool?: { timeout?: string; memoryMb?: number };
  /** A built-in fs.write of b.txt ('kept') runs first. */
  earlierWrite?: boolean;
  /** Kill the sandbox host once the call's first write is in the overlay. */
  killHost?: boolean;
  /** Before the task starts: the overlay holds `stale.txt` and the undo record an attempt of the writer's call left when its worker died mid-call. */
  diedMidCall?: boolean;
  expected: { files: Record<string, string>; step: [string, string, boolean, string | undefined]; undone: string[] | undefined };
  /** Paths the custody record of the call names as undone (default: `undone`). */
  custody?: string[];
}

const kinds: Kind[] = [
  {
    name: 'stopped part-way by the gate: its second write is denied (the finding)',
    source: `warden.fs.write('a.txt', ${BIG}); warden.fs.write('secret/c.txt', 'z'); return 'ok';`,
    policies: ['never write inside /workspace/secret'],
    expected: { files: {}, step: ['writer', 'deny', false, 'ERR_POLICY_DENIED'], undone: ['a.txt'] },
  },
  {
    name: 'held part-way for approval that never comes',
    source: `warden.fs.write('a.txt', ${BIG}); warden.fs.write('secret/c.txt', 'z'); return 'ok';`,
    policies: ['never write inside /workspace/secret without approval'],
    expected: { files: {}, step: ['writer', 'deny', false, 'ERR_APPROVAL_TIMEOUT'], undone: ['a.txt'] },
  },
  {
    name: 'throws after writing',
    source: `warden.fs.write('a.txt', ${BIG}); warden.fs.write('d/e.txt', 'e'); throw new Error('boom');`,
    expected: { files: {}, step: ['writer', 'allow', true, 'ERR_TOOL_THREW'], undone: ['a.txt', 'd/e.txt'] },
  },
  {
    name: 'runs past its time after writing',
    source: `warden.fs.write('a.txt', ${BIG}); for (;;) {}`,
    tool: { timeout: '1s' },
    expected: { files: {}, step: ['writer', 'allow', true, 'ERR_SANDBOX_TIMEOUT'], undone: ['a.txt'] },
  },
  {
    name: 'runs out of memory after writing',
    source: `warden.fs.write('a.txt', ${BIG}); const keep = []; for (;;) keep.push(new Array(1e6).fill(keep.length));`,
    tool: { memoryMb: 32 },
    expected: { files: {}, step: ['writer', 'allow', true, 'ERR_SANDBOX_MEMORY'], undone: ['a.txt'] },
  },
  {
    name: "overwrites an earlier step's file, then throws: the earlier content comes back",
    source: `warden.fs.write('b.txt', 'changed'); warden.fs.write('a.txt', ${BIG}); throw new Error('boom');`,
    earlierWrite: true,
    expected: { files: { 'b.txt': 'kept' }, step: ['writer', 'allow', true, 'ERR_TOOL_THREW'], undone: ['a.txt', 'b.txt'] },
  },
  {
    name: 'left half-done by an attempt whose worker died: the retry starts from before the call',
    source: `warden.fs.write('a.txt', 'done'); return 'ok';`,
    diedMidCall: true,
    expected: { files: { 'a.txt': 'done' }, step: ['writer', 'allow', true, undefined], undone: undefined },
    custody: ['stale.txt'],
  },
  {
    name: 'completes (control): its writes are committed',
    source: `warden.fs.write('a.txt', 'done'); return 'ok';`,
    expected: { files: { 'a.txt': 'done' }, step: ['writer', 'allow', true, undefined], undone: undefined },
  },
];

function taskOf(kind: Kind, dataFlow: boolean, workspace: string) {
  const script = [...(kind.earlierWrite === true ? [{ tool: 'fs.write', args: { path: 'b.txt', content: 'kept' } }] : []), { tool: 'writer', args: {} }, { final: 'done' }];
  return parseTask(
    {
      user: 'dana@example.com',
      intent: 'write',
      agent: { name: 'writer-agent', model: { driver: 'scripted', script } },
      tools: { builtin: ['fs.write'], custom: [{ name: 'writer', description: 'writes', capabilities: ['fs.write'], input: { type: 'object' }, source: kind.source, ...kind.tool }] },
      grants: { tools: ['writer', 'fs.write'] },
      policies: kind.policies ?? [],
      limits: { toolTimeout: '60s', maxSteps: 50, deadline: '3m', approvalTimeout: '2s', onDeny: 'continue' },
      resources: { workspace },
      dataFlow,
    },
    'denied-writes.yaml',
    REPO_ROOT,
  );
}

/** Every file in `folder` (relative path → content), and every folder (`path/` → ''). */
async function filesOf(folder: string, prefix = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const entry of await readdir(join(folder, prefix), { withFileTypes: true })) {
    const relative = prefix === '' ? entry.name : `${prefix}/${entry.name}`;
    if (entry.isDirectory()) Object.assign(out, { [`${relative}/`]: '' }, await filesOf(folder, relative));
    else out[relative] = await readFile(join(folder, relative), 'utf8');
  }
  return out;
}

async function runKind(kind: Kind, dataFlow: boolean) {
  const workspace = await mkdtemp(join(tmpdir(), 'warden-denied-writes-'));
  const workflowId = `denied-writes-${dataFlow}-${Date.now()}-${Math.random().toString(36).slice(2)}`;
  // A died attempt is set up before the workflow's first task: it starts a little later.
  const handle = await env.client.workflow.start('agentTask', { taskQueue: env.taskQueue, workflowId, args: [{ task: taskOf(kind, dataFlow, workspace) }], ...(kind.diedMidCall === true ? { startDelay: '3s' } : {}) });
  env.workflowIds.push(workflowId);
  if (kind.diedMidCall === true) await leaveDiedAttempt(workspace, workflowId, handle.firstExecutionRunId);
  let done = false;
  const killer = kind.killHost === true ? killHostAfterFirstWrite(overlayPathsOf(TEST_STATE_DIR, taskKeyOf(workflowId, handle.firstExecutionRunId)).upper, () => done) : undefined;
  const r = await followAgentTask(handle).finally(() => (done = true));
  await killer;
  const step = r.steps.find((s) => s.tool === 'writer')!;
  return { status: r.status, files: await filesOf(workspace), step: [step.tool, step.decision, step.executed, step.error?.code], undone: step.undone, custody: await custodyUndone(workflowId, kind) };
}

/** What the writer's call (step 0) wrote before its worker died: `stale.txt`, with the fs capability's undo record of it. */
async function leaveDiedAttempt(workspace: string, workflowId: string, runId: string): Promise<void> {
  const taskKey = taskKeyOf(workflowId, runId);
  const { upper } = await openOverlay({ stateDir: TEST_STATE_DIR, taskKey, workspace });
  await writeFile(join(upper, 'stale.txt'), 'half-done');
  const undoDir = overlayUndoDirOf(TEST_STATE_DIR, taskKey, callKeyOf({ workflowId, runId, stepIndex: 0, tool: 'writer', args: {} }));
  await mkdir(undoDir, { recursive: true });
  await writeFile(join(undoDir, `${createHash('sha256').update('stale.txt').digest('hex').slice(0, 32)}.json`), JSON.stringify({ path: 'stale.txt', existed: false }));
}

/** The paths the custody ledger's tool-call spans of `workflowId` name as undone (`warden.overlay.undone`). */
async function custodyUndone(workflowId: string, kind: Kind): Promise<string[]> {
  if (env.telemetry === undefined) return kind.custody ?? kind.expected.undone ?? [];
  await env.telemetry.forceFlush();
  const reader = LedgerReader.open({ stateDir: TEST_STATE_DIR });
  try {
    return reader
      .records(workflowId)
      .map((r) => r.body as { name?: string; attributes?: Record<string, unknown> })
      .filter((b) => activityTypeOfSpan(b.name ?? '', b.attributes ?? {}) === 'runTool')
      .flatMap((b) => (b.attributes?.[WARDEN_ATTR.overlayUndone] as string[] | undefined) ?? [])
      .sort();
  } finally {
    reader.close();
  }
}

/** Kills the sandbox host each time the call's write shows in the overlay (an event, not a guess of time), until the task ends. */
async function killHostAfterFirstWrite(upper: string, ended: () => boolean): Promise<void> {
  while (!ended()) {
    const pid = env.worker.sandbox.pid;
    if (pid !== undefined && existsSync(join(upper, 'a.txt'))) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('a tool call that does not complete leaves no file behind', () => {
  it.each(kinds)('$name, on both paths', async (kind) => {
    const [original, flow] = await Promise.all([runKind(kind, false), runKind(kind, true)]);
    const expected = { status: 'completed', ...kind.expected, custody: kind.custody ?? kind.expected.undone ?? [] };
    expect({ original, flow }).toEqual({ original: expected, flow: expected });
  });

  // MCP tool sources run on the original loop only (task/task-schema.ts `dataFlow`).
  it.each([
    { fail: true, expected: { status: 'completed', files: {}, step: ['scribe.scribble', 'allow', true, 'ERR_MCP_TOOL_FAILED'], undone: ['m.txt'], custody: ['m.txt'] } },
    { fail: false, expected: { status: 'completed', files: { 'm.txt': 20000 }, step: ['scribe.scribble', 'allow', true, undefined], undone: undefined, custody: [] } },
  ])('a stdio MCP server that writes, then fails: $fail', async ({ fail, expected }) => {
    const workspace = await mkdtemp(join(tmpdir(), 'warden-denied-writes-mcp-'));
    const r = await env.runTask({
      user: 'dana@example.com',
      intent: 'write',
      agent: { name: 'scribe-agent', model: { driver: 'scripted', script: [{ tool: 'scribe.scribble', args: { fail } }, { final: 'done' }] } },
      tools: { mcp: { scribe: { command: 'node', args: [join(FIXTURES, 'write-then-fail-server.mjs')] } } },
      grants: { tools: ['scribe.scribble'] },
      // The foundation pack refuses an MCP tool that does not declare its effects; this one is a writer by design.
      policyPacks: [],
      limits: { toolTimeout: '60s', maxSteps: 50, deadline: '3m', onDeny: 'continue' },
      resources: { workspace },
    });
    const step = r.steps.find((s) => s.tool === 'scribe.scribble')!;
    const workflowId = env.workflowIds[env.workflowIds.length - 1]!;
    const files = Object.fromEntries(Object.entries(await filesOf(workspace)).map(([path, content]) => [path, content.length]));
    const seen = { status: r.status, files, step: [step.tool, step.decision, step.executed, step.error?.code], undone: step.undone, custody: await custodyUndone(workflowId, { expected: { undone: expected.custody } } as unknown as Kind) };
    expect(seen, JSON.stringify(step.error)).toEqual(expected);
  });

  it('its sandbox host killed after the first write, on both paths', async () => {
    const kind: Kind = {
      name: 'host killed',
      source: `warden.fs.write('a.txt', ${BIG}); for (;;) {}`,
      killHost: true,
      expected: { files: {}, step: ['writer', 'allow', true, 'ERR_SANDBOX_CRASHED'], undone: ['a.txt'] },
    };
    // One after the other: the host is the worker's, a kill ends every call it runs.
    const original = await runKind(kind, false);
    const flow = await runKind(kind, true);
    const expected = { status: 'completed', ...kind.expected, custody: ['a.txt'] };
    expect({ original, flow }).toEqual({ original: expected, flow: expected });
  });
});
