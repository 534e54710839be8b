/**
 * Two attempts of one tool call at once (the fault seen under load in test/sandbox: a `runTool`
 * attempt overran its start-to-close timeout, Temporal started attempt 2 one second later, while
 * attempt 1 still ran in its worker and learnt of the timeout only at its next heartbeat). Before
 * the call lease, attempt 2 undid "an attempt whose worker died" while attempt 1 was still
 * writing, then attempt 1, stopped, undid the call's records: attempt 2's writes. Attempt 2
 * completed, yet its file was gone (lost), and a sub-agent's undo records restored attempt 1's
 * bytes (resurrected) instead of the state before the call.
 *
 * The class: a later attempt of the same call (task key + call id) acts on the call's per-call
 * state while an earlier attempt still runs. Table-driven over the executors that keep per-call
 * undo state: an isolate tool's fs.write (overlay undo records), a sub-agent's program (kernel
 * overlay, upper folder measured). The guarantee checked: the call's effect in the overlay is
 * exactly that of the attempt Temporal takes (attempt 2), and undoing the call (its compensation)
 * gives back the overlay as it was before the call.
 *
 * Real parts: the real `runTool` activity (createActivities) run twice at once through
 * @temporalio/testing's MockActivityEnvironment (attempt 1 and 2, the attempt 1's environment
 * cancelled as the server's timeout reaches it at its heartbeat), a real sandbox host process, the
 * real OS sandbox (bubblewrap) for the program, real files. Attempt 1 really overruns: its tool
 * keeps running (an isolate spinning, a program sleeping) after attempt 2 started.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn } from 'node:child_process';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createActivities } from '../../activities';
import { protectedSetForCall, type RunToolInput } from '../../activities/run-tool';
import { McpConnectionPool } from '../../executors/mcp-connection-pool';
import { openTaskServers } from '../../executors/mcp-executor';
import type { ActivityDeps } from '../../activities/index';
import { openCredentialStores, type LocalCredentialStores } from '../../identity/credential-stores';
import { openKeystore, type Keystore } from '../../identity/keystore';
import { acquireCallLease } from '../../recovery/call-lease';
import { callLeaseStemOf, overlayPathsOf, overlayUndoDirOf, taskKeyOf } from '../../recovery/recovery-paths';
import { undoOverlayCall } from '../../recovery/overlay-undo';
import { SandboxClient } from '../../sandbox/sandbox-client';
import { parseTask } from '../../task/load-task-file';
import type { Task } from '../../task/task-schema';
import { FIXTURES as MCP_FIXTURES, REPO_ROOT } from '../mcp/mcp-test-kit';
import { saveTaskGrant, waitUntil as until } from '../support/attempt-overlap-kit';

const grantFor = (workflowId: string, task: Task) => saveTaskGrant({ keystore, stores }, workflowId, task);

let stateDir: string;
let keystore: Keystore;
let stores: LocalCredentialStores;
let sandbox: SandboxClient;
let pool: McpConnectionPool;

beforeAll(async () => {
  pool = new McpConnectionPool();
  stateDir = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-attempt-fence-'));
  keystore = await openKeystore({ stateDir });
  stores = openCredentialStores({ stateDir });
  sandbox = await SandboxClient.start({ identityStateDir: stateDir });
}, 120_000);

afterAll(async () => {
  await pool?.close();
  await sandbox?.close();
  stores?.close();
});

const deps = (): ActivityDeps => ({ sandbox, stateDir, identity: { keystore, stores }, mcp: { pool, packagesDir: REPO_ROOT, extraReadOnlyPaths: [MCP_FIXTURES] } }) as ActivityDeps;

interface Kind {
  name: string;
  tool: string;
  args: Record<string, unknown>;
  /** A sub-agent's call (its undo records are kept after it completes). */
  subagent: boolean;
  task: (workspace: string, root: { rootWorkflowId: string; rootRunId: string }) => Task | Promise<Task>;
}

/** Writes a.txt, keeps running about 3 s (past the moment attempt 2 starts and attempt 1 is stopped), writes b.txt. */
const SLOW_ISOLATE = "warden.fs.write('a.txt', 'written'); const until = Date.now() + 3000; while (Date.now() < until) {} warden.fs.write('b.txt', 'written'); return 'ok';";
const SLOW_PROGRAM = ['-c', 'echo written > a.txt; sleep 3; echo written > b.txt'];

const kinds: Kind[] = [
  {
    name: 'isolate fs.write (root call)',
    tool: 'slow-writer',
    args: {},
    subagent: false,
    task: (workspace) =>
      parseTask(
        {
          user: 'alice@example.com',
          intent: 'write slowly',
          agent: { name: 'writer', model: { driver: 'scripted', script: [{ final: 'done' }] } },
          tools: { builtin: ['fs.write'], custom: [{ name: 'slow-writer', description: 'writes slowly', capabilities: ['fs.write'], input: { type: 'object' }, source: SLOW_ISOLATE }] },
          grants: { tools: ['slow-writer', 'fs.write'] },
          limits: { toolTimeout: '30s' },
          resources: { workspace },
        },
        'attempt-fence-isolate.yaml',
        stateDir,
      ),
  },
  {
    name: "sub-agent's program (proc.run)",
    tool: 'proc.run',
    args: { command: 'sh', args: SLOW_PROGRAM },
    subagent: true,
    task: (workspace) =>
      parseTask(
        {
          user: 'alice@example.com',
          intent: 'write slowly',
          agent: { name: 'writer', model: { driver: 'scripted', script: [{ final: 'done' }] } },
          tools: { builtin: ['proc.run'] },
          grants: { tools: ['proc.run'], commands: ['sh', 'sleep'] },
          limits: { toolTimeout: '30s' },
          resources: { workspace },
        },
        'attempt-fence-program.yaml',
        stateDir,
      ),
  },
  {
    name: "root task's program (proc.run, overlay measured around the call)",
    tool: 'proc.run',
    args: { command: 'sh', args: SLOW_PROGRAM },
    subagent: false,
    task: (workspace) =>
      parseTask(
        {
          user: 'alice@example.com',
          intent: 'write slowly',
          agent: { name: 'writer', model: { driver: 'scripted', script: [{ final: 'done' }] } },
          tools: { builtin: ['proc.run'] },
          grants: { tools: ['proc.run'], commands: ['sh', 'sleep'] },
          limits: { toolTimeout: '30s' },
          resources: { workspace },
        },
        'attempt-fence-root-program.yaml',
        stateDir,
      ),
  },
  {
    name: 'stdio MCP server (overlay measured around the call)',
    tool: 'slow.write',
    args: {},
    subagent: false,
    task: async (workspace, root) => {
      const task = parseTask(
        {
          user: 'alice@example.com',
          intent: 'write slowly',
          agent: { name: 'writer', model: { driver: 'scripted', script: [{ final: 'done' }] } },
          tools: { mcp: { slow: { command: 'node', args: [path.join(MCP_FIXTURES, 'slow-writer-server.mjs')] } } },
          grants: { tools: ['slow.write'] },
          limits: { toolTimeout: '30s' },
          resources: { workspace },
        },
        'attempt-fence-mcp.yaml',
        stateDir,
      );
      // The task starts: its server's tools are listed and pinned, as `openToolSources` does.
      const mcpDeps = { pool, packagesDir: REPO_ROOT, extraReadOnlyPaths: [MCP_FIXTURES], env: process.env, stateDir, protectedSetOf: (t: Task) => protectedSetForCall(deps(), t) };
      const listings = await openTaskServers(mcpDeps, task, root.rootWorkflowId, Date.now() + 10 * 60_000, root.rootRunId);
      return { ...task, tools: { ...task.tools, mcpPinned: listings } };
    },
  },
];


/** Files of the upper folder (relative path → content), Warden's whiteouts and folders left out. */
function upperFiles(upper: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!fs.existsSync(upper)) return out;
  for (const name of fs.readdirSync(upper)) {
    const file = path.join(upper, name);
    if (fs.lstatSync(file).isFile()) out[name] = fs.readFileSync(file, 'utf8').trim();
  }
  return out;
}


describe('two attempts of one call at once', () => {
  it.each(kinds)('$name: the overlay holds exactly attempt 2\'s effect, and undoing the call gives back the overlay before it', async (kind) => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-attempt-fence-ws-'));
    const rootWorkflowId = `fence-${kind.tool}-${Date.now()}`;
    const rootRunId = 'run-1';
    const task = await kind.task(workspace, { rootWorkflowId, rootRunId });
    const workflowId = kind.subagent ? `${rootWorkflowId}/helper` : rootWorkflowId;
    const grant = await grantFor(workflowId, task);
    const callId = `${workflowId}:${rootRunId}:0:digest`;
    const input: RunToolInput = { rootWorkflowId, rootRunId, workflowId, stepIndex: 0, callId, grantId: grant.id, maxCredentialTtlMs: 60_000, task, tool: kind.tool, args: kind.args };
    const taskKey = taskKeyOf(rootWorkflowId, rootRunId);
    const { upper } = overlayPathsOf(stateDir, taskKey);
    const activities = createActivities(deps());

    const first = new MockActivityEnvironment({ attempt: 1, heartbeatTimeoutMs: 20_000, startToCloseTimeoutMs: 40_000 } as never);
    const attempt1 = first.run(activities.runTool, input).then(
      (r) => ({ ok: true as const, output: (r as { output: unknown }).output }),
      (e: unknown) => ({ ok: false as const, type: (e as { type?: string }).type ?? (e as Error).name }),
    );
    // Attempt 1's tool has written a.txt and keeps running: Temporal now times it out and starts attempt 2.
    await until(() => fs.existsSync(path.join(upper, 'a.txt')), "attempt 1's first write");
    const second = new MockActivityEnvironment({ attempt: 2, heartbeatTimeoutMs: 20_000, startToCloseTimeoutMs: 40_000 } as never);
    const attempt2 = second.run(activities.runTool, input).then(
      (r) => ({ ok: true as const, output: (r as { output: unknown }).output }),
      (e: unknown) => ({ ok: false as const, type: (e as { type?: string }).type ?? (e as Error).name, message: (e as Error).message }),
    );
    // Attempt 1's next heartbeat tells it of the timeout: it is cancelled while attempt 2 runs.
    await new Promise((r) => setTimeout(r, 1000));
    first.cancel();
    const [one, two] = await Promise.all([attempt1, attempt2]);

    expect(one.ok).toBe(false);
    expect(two, JSON.stringify(two)).toMatchObject({ ok: true });
    // Exactly attempt 2's effect: both files, once.
    expect(upperFiles(upper)).toEqual({ 'a.txt': 'written', 'b.txt': 'written' });
    const records = overlayUndoDirOf(stateDir, taskKey, callId);
    if (kind.subagent) {
      // The sub-agent's call stays undoable: its records give back the overlay before the call (no file resurrected).
      await undoOverlayCall({ stateDir, taskKey, callId });
      expect(upperFiles(upper)).toEqual({});
    } else {
      // A root call's records are done with once it completed.
      expect(fs.existsSync(records)).toBe(false);
    }
  }, 120_000);
});

describe('two attempts of a program that changes a file in place', () => {
  // Not idempotent: run twice, the line is there twice. The file is the workspace's (copied up on
  // the first append) or already the overlay's (an earlier call wrote it), at root and in a sub-agent.
  it.each([
    { where: 'a workspace file, root task', subagent: false, inUpper: false },
    { where: "a file of the overlay, root task", subagent: false, inUpper: true },
    { where: 'a workspace file, sub-agent', subagent: true, inUpper: false },
    { where: "a file of the overlay, sub-agent", subagent: true, inUpper: true },
  ])('$where: the line is appended once', async ({ subagent, inUpper }) => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-attempt-fence-append-'));
    const rootWorkflowId = `fence-append-${subagent ? 'sub' : 'root'}-${inUpper ? 'upper' : 'lower'}-${Date.now()}`;
    const rootRunId = 'run-1';
    const task = parseTask(
      {
        user: 'alice@example.com',
        intent: 'append slowly',
        agent: { name: 'appender', model: { driver: 'scripted', script: [{ final: 'done' }] } },
        tools: { builtin: ['proc.run'] },
        grants: { tools: ['proc.run'], commands: ['sh', 'sleep'] },
        limits: { toolTimeout: '30s' },
        resources: { workspace },
      },
      'attempt-fence-append.yaml',
      stateDir,
    );
    const workflowId = subagent ? `${rootWorkflowId}/helper` : rootWorkflowId;
    const grant = await grantFor(workflowId, task);
    const { upper } = overlayPathsOf(stateDir, taskKeyOf(rootWorkflowId, rootRunId));
    const activities = createActivities(deps());
    const call = (callId: string, args: string[]): RunToolInput => ({ rootWorkflowId, rootRunId, workflowId, stepIndex: 0, callId, grantId: grant.id, maxCredentialTtlMs: 60_000, task, tool: 'proc.run', args: { command: 'sh', args } });
    if (inUpper) {
      // An earlier call of the task wrote the file: it is in the overlay's upper folder.
      await new MockActivityEnvironment({ attempt: 1 } as never).run(activities.runTool, call(`${workflowId}:${rootRunId}:0:seed`, ['-c', 'echo base > log.txt']));
    } else {
      fs.writeFileSync(path.join(workspace, 'log.txt'), 'base\n');
    }
    const input = call(`${workflowId}:${rootRunId}:1:digest`, ['-c', 'echo line >> log.txt; echo > started; sleep 3']);
    const first = new MockActivityEnvironment({ attempt: 1, heartbeatTimeoutMs: 20_000, startToCloseTimeoutMs: 40_000 } as never);
    const attempt1 = first.run(activities.runTool, input).then(() => 'completed', () => 'failed');
    await until(() => fs.existsSync(path.join(upper, 'started')), "attempt 1's append");
    const second = new MockActivityEnvironment({ attempt: 2, heartbeatTimeoutMs: 20_000, startToCloseTimeoutMs: 40_000 } as never);
    const attempt2 = second.run(activities.runTool, input).then(() => 'completed', (e: unknown) => `failed: ${(e as Error).message}`);
    await new Promise((r) => setTimeout(r, 1000));
    first.cancel();
    const [one, two] = await Promise.all([attempt1, attempt2]);
    expect(one).toBe('failed');
    expect(two).toBe('completed');
    expect(fs.readFileSync(path.join(upper, 'log.txt'), 'utf8')).toBe('base\nline\n');
  }, 120_000);
});

describe("a call's compensation while an attempt of it still runs", () => {
  it("a sub-agent's isolate call: the compensation stops the attempt and waits for it; nothing of the call stays", async () => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-attempt-fence-ws-'));
    const rootWorkflowId = `fence-compensate-${Date.now()}`;
    const rootRunId = 'run-1';
    const workflowId = `${rootWorkflowId}/helper`;
    const task = await kinds[0]!.task(workspace, { rootWorkflowId, rootRunId });
    const grant = await grantFor(workflowId, task);
    const callId = `${workflowId}:${rootRunId}:0:digest`;
    const taskKey = taskKeyOf(rootWorkflowId, rootRunId);
    const { upper } = overlayPathsOf(stateDir, taskKey);
    const activities = createActivities(deps());
    const info = { heartbeatTimeoutMs: 20_000, startToCloseTimeoutMs: 40_000 };
    // Temporal timed the attempt out; its worker hears of it only at its next heartbeat, after the tool completed.
    const attempt = new MockActivityEnvironment({ attempt: 3, ...info } as never).run(activities.runTool, { rootWorkflowId, rootRunId, workflowId, stepIndex: 0, callId, grantId: grant.id, maxCredentialTtlMs: 60_000, task, tool: 'slow-writer', args: {} }).then(
      () => 'completed',
      (e: unknown) => (e as { type?: string }).type ?? 'failed',
    );
    await until(() => fs.existsSync(path.join(upper, 'a.txt')), "the attempt's first write");
    // Meanwhile the workflow's saga undoes the sub-agent's call.
    const outcome = await new MockActivityEnvironment({ attempt: 1, ...info } as never).run(activities.compensate, { rootWorkflowId, rootRunId, task, compensation: { kind: 'fs-overlay-undo' as const, callId, forTool: 'slow-writer' } });
    expect({ attempt: await attempt, files: upperFiles(upper), outcome: (outcome as { status: string }).status }).toEqual({ attempt: expect.not.stringMatching(/^completed$/), files: {}, outcome: 'nothing-to-do' });
  }, 120_000);
});

describe('the call lease', () => {
  const taskKey = 'lease-task';

  it('a newer attempt in this process stops the older one, waits for it to end, and fences it', async () => {
    const older = await acquireCallLease({ stateDir, taskKey, callId: 'c1', attempt: 1 });
    let olderEnded = false;
    older.signal.addEventListener('abort', () => {
      // The older attempt takes a moment to stop its tool, then ends.
      setTimeout(() => {
        olderEnded = true;
        void older.release();
      }, 300);
    });
    const newer = await acquireCallLease({ stateDir, taskKey, callId: 'c1', attempt: 2 });
    expect(olderEnded).toBe(true);
    expect(older.signal.reason).toMatchObject({ code: 'ERR_CALL_SUPERSEDED', details: { callId: 'c1', attempt: 1, newerAttempt: 2 } });
    await expect(older.assertCurrent()).rejects.toMatchObject({ code: 'ERR_CALL_SUPERSEDED' });
    await expect(newer.assertCurrent()).resolves.toBeUndefined();
    await newer.release();
  });

  it("a compensation stops an attempt and waits for it, but does not fence it: the attempt still undoes its own writes", async () => {
    const attempt = await acquireCallLease({ stateDir, taskKey, callId: 'c2', attempt: 1 });
    attempt.signal.addEventListener('abort', () => setTimeout(() => void attempt.release(), 200));
    const compensation = await acquireCallLease({ stateDir, taskKey, callId: 'c2', attempt: 1, kind: 'compensation' });
    expect(attempt.signal.aborted).toBe(true);
    await expect(attempt.assertCurrent()).resolves.toBeUndefined();
    await compensation.release();
  });

  it.each([
    { name: 'stopped (SIGSTOP): never ends', stop: 'SIGSTOP' as const, expected: 'ERR_CALL_ATTEMPT_STUCK' },
    { name: 'killed (SIGKILL): its worker died', stop: 'SIGKILL' as const, expected: undefined },
    { name: 'live: sees the takeover, stops and ends', stop: undefined, expected: undefined },
  ])('an older attempt in another worker process that is $name', async ({ stop, expected }) => {
    const callId = `c-${stop ?? 'live'}`;
    // A real worker process holding attempt 1 of the call: it ends when it sees itself superseded.
    const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', `
      const { acquireCallLease } = (await import(${JSON.stringify(path.resolve(__dirname, '../../recovery/call-lease.ts'))})).default;
      const lease = await acquireCallLease({ stateDir: ${JSON.stringify(stateDir)}, taskKey: ${JSON.stringify(taskKey)}, callId: ${JSON.stringify(callId)}, attempt: 1 });
      process.stdout.write('held\\n');
      lease.signal.addEventListener('abort', async () => { await lease.release(); process.exit(0); });
      setInterval(() => undefined, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      await new Promise<void>((resolve, reject) => {
        holder.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
        holder.on('exit', (code) => reject(new Error(`holder exited ${code}`)));
      });
      if (stop !== undefined) holder.kill(stop);
      // A stopped holder is waited for 3 s only (the test's own time); one that can end gets the default 30 s, however loaded the machine.
      const outcome = await acquireCallLease({ stateDir, taskKey, callId, attempt: 2, ...(expected === undefined ? {} : { waitMs: 3000 }) }).then(
        async (lease) => {
          await lease.release();
          return undefined;
        },
        (e: { code?: string; message?: string }) => e,
      );
      expect(outcome?.code).toBe(expected);
      if (expected !== undefined) expect(outcome?.message).toMatch(new RegExp(`call ${callId}.*earlier attempt 1 \\(pid ${holder.pid}.*after 3000 ms`));
      // Taken within `waitMs` (else ERR_CALL_ATTEMPT_STUCK above): a live holder saw the takeover and
      // ended; a dead one was not waited for. How soon is not timed here: a loaded machine is slow.
    } finally {
      holder.kill('SIGKILL');
    }
  }, 60_000);
});

/** A quick isolate tool over the workspace: `source` its body, `capabilities` what it declares. */
function quickTask(workspace: string | undefined, tool: { name: string; capabilities: string[]; source: string }): Task {
  // A database for the sql capabilities: its journal is a per-call record.
  const sql = tool.capabilities.some((c) => c.startsWith('sql.'));
  const databases = sql ? { main: path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'warden-attempt-fence-db-')), 'main.sqlite') } : undefined;
  return parseTask(
    {
      user: 'alice@example.com',
      intent: 'one quick call',
      agent: { name: 'quick', model: { driver: 'scripted', script: [{ final: 'done' }] } },
      tools: { builtin: tool.capabilities, custom: [{ name: tool.name, description: 'quick', capabilities: tool.capabilities, input: { type: 'object' }, source: tool.source }] },
      grants: { tools: [tool.name, ...tool.capabilities], ...(sql ? { databases: ['main'] } : {}) },
      limits: { toolTimeout: '30s' },
      resources: { ...(workspace === undefined ? {} : { workspace }), ...(databases === undefined ? {} : { databases }) },
    },
    'attempt-fence-quick.yaml',
    stateDir,
  );
}

/** Runs one call of `tool` (attempt 1) through the real runTool activity; returns its call id and task key. */
async function runQuickCall(task: Task, tool: string, rootWorkflowId: string): Promise<{ callId: string; taskKey: string }> {
  const rootRunId = 'run-1';
  const grant = await grantFor(rootWorkflowId, task);
  const callId = `${rootWorkflowId}:${rootRunId}:0:digest`;
  const input: RunToolInput = { rootWorkflowId, rootRunId, workflowId: rootWorkflowId, stepIndex: 0, callId, grantId: grant.id, maxCredentialTtlMs: 60_000, task, tool, args: {} };
  await new MockActivityEnvironment({ attempt: 1, heartbeatTimeoutMs: 20_000, startToCloseTimeoutMs: 40_000 } as never).run(createActivities(deps()).runTool, input);
  return { callId, taskKey: taskKeyOf(rootWorkflowId, rootRunId) };
}

describe('which calls take the lease', () => {
  // Only a call with per-call records (undo records, capture, overlay copy, SQL journal, start record) pays for a lease.
  it.each([
    { name: 'a pure isolate tool (no capability)', capabilities: [], source: 'return 1 + 1;', leased: false },
    { name: 'an isolate tool reading the workspace (fs.read)', capabilities: ['fs.read'], source: "try { warden.fs.read('none.txt'); } catch {} return 'ok';", leased: false },
    { name: 'an isolate tool writing the workspace (fs.write)', capabilities: ['fs.write'], source: "warden.fs.write('x.txt', 'x'); return 'ok';", leased: true },
    { name: 'an isolate tool with SQL (its journal)', capabilities: ['sql.query'], source: "return 'ok';", leased: true },
  ])('$name: leased $leased', async ({ capabilities, source, leased }) => {
    const workspace = fs.mkdtempSync(path.join(os.tmpdir(), 'warden-attempt-fence-ws-'));
    const { callId, taskKey } = await runQuickCall(quickTask(workspace, { name: 'quick', capabilities, source }), 'quick', `lease-which-${capabilities.join('-') || 'pure'}-${Date.now()}`);
    const folder = path.join(stateDir, 'call-leases', taskKey);
    // A leased call took generation 1 (and marked it ended); another left no lease file at all.
    expect(fs.existsSync(folder) ? fs.readdirSync(folder).sort() : []).toEqual(leased ? [`${callLeaseStemOf(callId)}.1`] : []);
    if (leased) expect(fs.statSync(path.join(folder, `${callLeaseStemOf(callId)}.1`)).mode & 0o777).toBe(0o400);
  }, 60_000);
});

describe("the task's call leases when it ends", () => {
  const writer = { name: 'quick', capabilities: ['fs.write'], source: "warden.fs.write('x.txt', 'x'); return 'ok';" };
  const pure = { name: 'quick', capabilities: [], source: 'return 1;' };
  it.each([
    { name: 'committed', workspace: true, end: 'commit' as const },
    { name: 'discarded (its failure rolled back)', workspace: true, end: 'discard' as const },
    { name: 'committed, without a workspace', workspace: false, end: 'commit' as const },
  ])('$name: the lease folder goes, and an attempt still running is fenced', async ({ workspace, end }) => {
    const rootWorkflowId = `lease-end-${end}-${workspace}-${Date.now()}`;
    const task = workspace ? quickTask(fs.mkdtempSync(path.join(os.tmpdir(), 'warden-attempt-fence-ws-')), writer) : quickTask(undefined, pure);
    const taskKey = taskKeyOf(rootWorkflowId, 'run-1');
    // A call that completed (its generation ended), where the task has a workspace to write to.
    if (workspace) await runQuickCall(task, 'quick', rootWorkflowId);
    // An attempt Temporal gave up on still runs on this worker (its tool has not stopped yet).
    const stale = await acquireCallLease({ stateDir, taskKey, callId: `${rootWorkflowId}:run-1:1:digest`, attempt: 1 });
    const check = () => Promise.resolve().then(() => stale.assertCurrent());
    await expect(check()).resolves.toBeUndefined();
    const activities = createActivities(deps());
    const env = new MockActivityEnvironment({ attempt: 1 } as never);
    if (end === 'commit') await env.run(activities.commitTask, { rootWorkflowId, rootRunId: 'run-1', task });
    else await env.run(activities.compensate, { rootWorkflowId, rootRunId: 'run-1', task, compensation: { kind: 'fs-overlay-discard' as const, taskKey } });
    expect(fs.existsSync(path.join(stateDir, 'call-leases', taskKey))).toBe(false);
    // The ended task's records are not the stale attempt's to touch: it is fenced, and told to stop within its watch.
    await expect(check()).rejects.toMatchObject({ code: 'ERR_CALL_SUPERSEDED', details: { leaseGone: true } });
    await until(() => stale.signal.aborted, 'the stale attempt told to stop', 2000);
    await stale.release();
    // Its end does not bring the folder back.
    expect(fs.existsSync(path.join(stateDir, 'call-leases', taskKey))).toBe(false);
  }, 60_000);
});
