/**
 * `WARDEN_WORKFLOW_STACK_TRACES` (worker/workflow-stack-traces.ts): with `on` a Warden worker's
 * workflows answer the Temporal UI's stack-trace queries with source-mapped workflow frames; by
 * default (`off`) the queries still answer (no frames, no promise tracked) and the task runs on; the setting is validated, and
 * only the contexts created inside `withWorkflowStackTraces` lose their stacks.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runInContext, createContext, runInNewContext } from 'node:vm';
import { Worker as ThreadWorker } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { Worker, type WorkerOptions } from '@temporalio/worker';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { WardenError } from '../../errors';
import { parseTask } from '../../task/load-task-file';
import type { TaskState } from '../../task/task-run';
import { taskStateQuery } from '../../workflows/definitions';
import { WORKFLOW_STACK_TRACES_ENV, withWorkflowStackTraces, workflowStackTracesOf } from '../../worker/workflow-stack-traces';
import { REPO_ROOT, startWardenTestEnv, type WardenTestEnv } from '../support/warden-test-env';

describe('the setting', () => {
  it.each([
    [undefined, 'off'],
    ['', 'off'],
    ['on', 'on'],
    ['off', 'off'],
    [' OFF ', 'off'],
  ])('%j reads as %s', (value, expected) => {
    expect(workflowStackTracesOf(value === undefined ? {} : { [WORKFLOW_STACK_TRACES_ENV]: value })).toBe(expected);
  });

  it.each(['0', 'false', 'no', 'of'])('%j is refused, naming the variable', (value) => {
    let caught: unknown;
    try {
      workflowStackTracesOf({ [WORKFLOW_STACK_TRACES_ENV]: value });
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(WardenError);
    expect(caught).toMatchObject({ code: 'ERR_CONFIG_INVALID' });
    expect((caught as Error).message).toContain(WORKFLOW_STACK_TRACES_ENV);
    expect((caught as Error).message).toContain(JSON.stringify(value));
  });
});

/** Error.stackTraceLimit of a new thread's main realm and of a vm context made in it. */
function threadLimits(): Promise<[number, number]> {
  const thread = new ThreadWorker(
    "const vm = require('node:vm'); require('node:worker_threads').parentPort.postMessage([Error.stackTraceLimit, vm.runInContext('Error.stackTraceLimit', vm.createContext({}))]);",
    { eval: true },
  );
  return new Promise((resolve, reject) => {
    thread.once('message', (limits: [number, number]) => {
      resolve(limits);
      void thread.terminate();
    });
    thread.once('error', reject);
  });
}

/** What a context created now gets (V8's flag), whatever this realm's own limit is. */
const freshLimit = () => runInNewContext('Error.stackTraceLimit') as number;

describe('withWorkflowStackTraces', () => {
  it('off: threads and contexts created inside get no stack frames; after it, new ones get the usual limit again', async () => {
    const usual = freshLimit();
    expect(usual).toBeGreaterThan(0);
    const own = Error.stackTraceLimit;
    expect(await withWorkflowStackTraces('off', threadLimits)).toEqual([0, 0]);
    expect(await withWorkflowStackTraces('off', async () => runInContext('Error.stackTraceLimit', createContext({})) as number)).toBe(0);
    expect(await threadLimits()).toEqual([usual, usual]);
    expect(runInContext('Error.stackTraceLimit', createContext({}))).toBe(usual);
    expect(Error.stackTraceLimit).toBe(own);
  });

  it('restores the flag, not this realm\'s own limit, when the two differ', async () => {
    const usual = freshLimit();
    const own = Error.stackTraceLimit;
    Error.stackTraceLimit = usual + 7;
    try {
      await withWorkflowStackTraces('off', async () => undefined);
      expect(freshLimit()).toBe(usual);
    } finally {
      Error.stackTraceLimit = own;
    }
  });

  it('overlapping off creations: contexts stay limitless until the last ends, which restores the limit from before the first', async () => {
    const usual = freshLimit();
    let endFirst!: () => void;
    const first = withWorkflowStackTraces('off', () => new Promise<void>((resolve) => (endFirst = resolve)));
    await withWorkflowStackTraces('off', async () => {
      endFirst();
      await first;
      expect(freshLimit()).toBe(0);
    });
    expect(freshLimit()).toBe(usual);
  });

  it('on changes nothing; a failed creation still restores the limit', async () => {
    const usual = freshLimit();
    expect(await withWorkflowStackTraces('on', threadLimits)).toEqual([usual, usual]);
    await expect(withWorkflowStackTraces('off', async () => Promise.reject(new Error('no worker')))).rejects.toThrow('no worker');
    expect(await threadLimits()).toEqual([usual, usual]);
  });
});

/** A task whose second step is held for approval (long enough to query it while it waits). */
function heldTask(dbFile: string) {
  return parseTask(
    {
      user: 'fay@example.com',
      intent: 'clean up the stale leads',
      agent: {
        name: 'janitor',
        model: {
          driver: 'scripted',
          script: [
            { tool: 'sql.query', args: { database: 'crm', sql: 'SELECT count(*) AS n FROM leads' } },
            { tool: 'sql.exec', args: { database: 'crm', sql: 'DELETE FROM leads WHERE stale = 1' } },
            { final: 'cleaned' },
          ],
        },
      },
      tools: { builtin: ['sql.query', 'sql.exec'] },
      grants: { tools: ['sql.query', 'sql.exec'], databases: ['crm'] },
      limits: { approvalTimeout: '10m' },
      resources: { databases: { crm: dbFile } },
    },
    'task.yaml',
    REPO_ROOT,
  );
}

interface EnhancedStackTrace {
  stacks: { locations: { file_path?: string }[] }[];
}

/** Starts the held task on `env`, waits until it holds the delete, returns both stack-trace query answers, then ends it. */
async function stackTracesOfHeldTask(env: WardenTestEnv): Promise<{ plain: string; enhanced: EnhancedStackTrace; state: TaskState }> {
  const dbFile = join(mkdtempSync(join(tmpdir(), 'warden-stack-traces-')), 'crm.db');
  const db = new Database(dbFile);
  db.exec('CREATE TABLE leads (id INTEGER PRIMARY KEY, stale INTEGER NOT NULL)');
  // 42 rows: a delete that large is held for approval (approval-authentication.test.ts).
  for (let i = 0; i < 50; i++) db.prepare('INSERT INTO leads (stale) VALUES (?)').run(i < 42 ? 1 : 0);
  db.close();
  const handle = await env.start(heldTask(dbFile));
  try {
    let state: TaskState | undefined;
    await vi.waitFor(
      async () => {
        state = await handle.query(taskStateQuery);
        // A task that ended without holding fails below at once rather than after the bound.
        if (state.status === 'running') expect(state.pendingApprovals).toHaveLength(1);
      },
      { timeout: 300_000, interval: 100 },
    );
    expect(state?.pendingApprovals).toHaveLength(1);
    const plain = await handle.query<string>('__stack_trace');
    const enhanced = await handle.query<EnhancedStackTrace>('__enhanced_stack_trace');
    return { plain, enhanced, state: state! };
  } finally {
    await handle.terminate('stack-trace test done').catch(() => undefined);
  }
}

const WORKFLOW_FRAME = /workflows\/[\w-]+\.ts/;

/**
 * The sources listed by the inline source map of the workflow bundle the spied `Worker.create`
 * got (worker/workflow-bundle.ts: empty with stack traces off, every source with them on).
 */
function bundleMapSources(create: { mock: { calls: unknown[][] } }): string[] {
  const bundles = create.mock.calls.map(([options]) => (options as WorkerOptions).workflowBundle).filter((b) => b !== undefined);
  expect(bundles).toHaveLength(1);
  const { code } = bundles[0] as { code: string };
  const at = code.lastIndexOf('//# sourceMappingURL=data:');
  return (JSON.parse(Buffer.from(code.slice(code.indexOf('base64,', at) + 7).trimEnd(), 'base64').toString('utf8')) as { sources: string[] }).sources;
}

describe('on a real worker (`on` first: the flag is process-wide while a worker is created)', () => {
  let env: WardenTestEnv | undefined;
  afterEach(async () => {
    vi.restoreAllMocks();
    await env?.close();
    env = undefined;
  });

  it('on: the stack-trace queries name the workflow source lines the task waits in', async () => {
    const create = vi.spyOn(Worker, 'create');
    env = await startWardenTestEnv(process.env, { configEnv: { ...process.env, [WORKFLOW_STACK_TRACES_ENV]: 'on' } });
    expect(bundleMapSources(create).some((f) => WORKFLOW_FRAME.test(f))).toBe(true);
    const { plain, enhanced } = await stackTracesOfHeldTask(env);
    expect(plain).toMatch(WORKFLOW_FRAME);
    const files = enhanced.stacks.flatMap((s) => s.locations.map((l) => l.file_path ?? ''));
    expect(files.some((f) => WORKFLOW_FRAME.test(f))).toBe(true);
  }, 600_000);

  it('off (the default): the task runs and holds the same way, the queries answer with no frames', async () => {
    const { [WORKFLOW_STACK_TRACES_ENV]: _unset, ...withoutSetting } = process.env;
    const create = vi.spyOn(Worker, 'create');
    env = await startWardenTestEnv(process.env, { configEnv: withoutSetting });
    // The bundle without its source map: nothing on these threads would read it.
    expect(bundleMapSources(create)).toEqual([]);
    const { plain, enhanced, state } = await stackTracesOfHeldTask(env);
    expect(state.steps[0]).toMatchObject({ tool: 'sql.query', executed: true });
    expect(plain).not.toMatch(WORKFLOW_FRAME);
    expect(enhanced.stacks.every((s) => s.locations.length === 0)).toBe(true);
    // Not even an empty stack per pending promise: the SDK's promise hook, which would record one
    // for every promise the workflow makes, is not installed on these threads.
    expect(enhanced.stacks).toEqual([]);
    expect(plain).toBe('');
    // The main thread (activities) keeps its stacks.
    expect(Error.stackTraceLimit).toBeGreaterThan(0);
  }, 600_000);
});
